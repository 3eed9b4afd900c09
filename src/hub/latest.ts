import type { Broker } from '../broker/broker.js';
import type { ResolvedChannel } from '../channels/channels.js';
import type { Publication } from '../stream/types.js';
import { givenPosition, type Recovery, type RecoveryLimits } from './recovery.js';

/** Whether the channel's namespace is a latest-value one (`delivery: "latest"`). */
export function isLatestValue(ch: ResolvedChannel): boolean {
  return ch.options.delivery === 'latest';
}

/** The conflation key of a publication: its publisher's `key`, or '' (one per channel). */
export function keyOf(pub: Publication): string {
  return pub.info?.key ?? '';
}

/** The newest publication of each key among `pubs` (oldest first), in offset order. */
export function latestPerKey(pubs: readonly Publication[]): Publication[] {
  const newest = new Map<string, Publication>();
  for (const pub of pubs) newest.set(keyOf(pub), pub);
  if (newest.size === pubs.length) return [...pubs];
  return [...newest.values()].sort((a, b) => a.offset - b.offset);
}

/**
 * A subscribe in a latest-value namespace (Centrifugo's cache mode): instead of a replay, the
 * latest publication of every key the history holds (it keeps the newest per key, however long
 * ago it came: history/), oldest change first, one page at a time. The first page comes with
 * the answer; when more keys are held, `position` is the last offset of that page and the caller
 * pages on up to `top` (hub/subscribe.ts), as for a paged recovery. `recovered` is true when the
 * client asked with `since`: it gets the current state, not what it missed.
 */
export async function recoverLatest(
  broker: Broker,
  ch: ResolvedChannel,
  asked: boolean,
  limits: RecoveryLimits,
  now: number = Date.now(),
): Promise<Recovery> {
  const recovered = asked ? true : undefined;
  if (ch.history.size === 0) {
    const none = { offset: 0, epoch: '' };
    return { position: none, top: none, publications: [], recovered };
  }
  const read = await broker.history(ch.name, { sinceOffset: 0, limit: limits.maxPublications, maxBytes: limits.pageBytes }, ch.history);
  const top = givenPosition(ch.name, read.position, now);
  if (top.offset === 0) return { position: top, top, publications: [], recovered };
  const publications = latestPerKey(read.publications);
  const last = publications.at(-1);
  // The top publication is held (the newest of its key) unless it expired: a page short of the
  // top has more after it, or the next page is empty and ends the paging.
  const position = last !== undefined && last.offset < top.offset ? { offset: last.offset, epoch: top.epoch } : top;
  return { position, top, publications, recovered };
}
