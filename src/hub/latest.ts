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
 * latest publication of every key among the newest `limits.maxPublications` of the stream,
 * within one page of bytes (the newest kept when they do not all fit), with the position at the
 * top. `recovered` is true when the client asked with `since`: it has the current state.
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
  const head = await broker.history(ch.name, { limit: 0 }, ch.history);
  if (head.position.epoch === '' || head.position.offset === 0) {
    const given = givenPosition(ch.name, head.position, now);
    return { position: given, top: given, publications: [], recovered };
  }
  const window = Math.min(ch.history.size, limits.maxPublications);
  const read = await broker.history(
    ch.name,
    { sinceOffset: Math.max(0, head.position.offset - window), limit: window },
    ch.history,
  );
  const top = givenPosition(ch.name, read.position, now);
  return { position: top, top, publications: withinBytes(latestPerKey(read.publications), limits.pageBytes), recovered };
}

/** The newest of `pubs` whose data fits `maxBytes` (at least one), in offset order. */
function withinBytes(pubs: Publication[], maxBytes: number): Publication[] {
  let bytes = 0;
  let from = pubs.length;
  while (from > 0) {
    const size = Buffer.byteLength(pubs[from - 1]!.data) + 128;
    if (bytes + size > maxBytes && from < pubs.length) break;
    bytes += size;
    from -= 1;
  }
  return from === 0 ? pubs : pubs.slice(from);
}
