import type { Broker } from '../broker/broker.js';
import type { ResolvedChannel } from '../channels/channels.js';
import { provisionalEpoch, provisionalEpochTime } from '../stream/epoch.js';
import type { HistoryResult, Publication, StreamPosition } from '../stream/types.js';

/** Clock skew between nodes tolerated when judging an epoch's age. */
const SKEW_MS = 60_000;

/** What a subscribe gets back from its first read. */
export interface Recovery {
  /** Where the client stands once it has applied `publications` (what the reply says). */
  position: StreamPosition;
  /** The stream top at the read: a recovery is complete once the client has reached it. */
  top: StreamPosition;
  /** The first page of what was missed (all of it when it fits one page). */
  publications: Publication[];
  /** undefined without `since`; otherwise whether the client gets exactly what it missed. */
  recovered: boolean | undefined;
}

export interface RecoveryLimits {
  /** Most publications one recovery may replay (limits.recoveryMaxPublications). */
  maxPublications: number;
  /** Byte budget of one page. */
  pageBytes: number;
}

export function isRecoverable(ch: ResolvedChannel): boolean {
  return ch.options.recover && ch.history.size > 0;
}

/**
 * The position a client is given for a stream read: the stream's own, or, for a channel with no
 * stream yet (nothing is stored for it), offset 0 of a provisional epoch that says when it was
 * given (stream/epoch.ts). Nothing is written, so reads of random names leave no state.
 */
export function givenPosition(channel: string, read: StreamPosition, now: number): StreamPosition {
  return read.epoch === '' ? { offset: 0, epoch: provisionalEpoch(channel, now) } : read;
}

/**
 * Whether a client at offset 0 of a provisional epoch of this channel has missed exactly what
 * the channel's current stream holds from its start: true while the epoch is younger than
 * metaTtl. A stream created after that position was given could only have been lost (and
 * replaced) by outliving its last publication by metaTtl, which cannot have happened yet.
 */
export function startsCurrentStream(channel: string, since: StreamPosition, now: number, metaTtlMs: number): boolean {
  if (since.offset !== 0) return false;
  const given = provisionalEpochTime(channel, since.epoch);
  return given !== undefined && given <= now + SKEW_MS && now - given < metaTtlMs - SKEW_MS;
}

/**
 * Reads what a subscriber missed since `since`: one history read, bounded in bytes, that also
 * returns the stream top. Recovery is refused — `recovered: false` and no publications, never
 * a partial replay — when the namespace does not recover, the offset is negative, the stream
 * is another one (another epoch, unless the client stood at 0 of a young provisional epoch:
 * see startsCurrentStream), the offset is beyond the top (a rollback) or before the earliest
 * kept publication, or more than `maxPublications` were missed. A recovery larger than one page
 * is continued by the caller (hub/subscribe.ts) from `position` up to `top`.
 */
export async function recover(
  broker: Broker,
  ch: ResolvedChannel,
  since: StreamPosition | undefined,
  limits: RecoveryLimits,
  now: number = Date.now(),
): Promise<Recovery> {
  if (ch.history.size === 0) {
    const none = { offset: 0, epoch: '' };
    return { position: none, top: none, publications: [], recovered: since ? false : undefined };
  }
  if (!since) {
    const { position } = await broker.history(ch.name, { limit: 0 }, ch.history);
    const given = givenPosition(ch.name, position, now);
    return { position: given, top: given, publications: [], recovered: undefined };
  }
  const sane = ch.options.recover && Number.isSafeInteger(since.offset) && since.offset >= 0;
  const read = await broker.history(
    ch.name,
    sane ? { sinceOffset: since.offset, limit: limits.maxPublications, maxBytes: limits.pageBytes } : { limit: 0 },
    ch.history,
  );
  const fresh = sane && startsCurrentStream(ch.name, since, now, ch.history.metaTtlMs);
  if (read.position.epoch === '') {
    // Nothing is stored for the channel: recovered when the client stood at the start of it.
    const top = fresh ? since : givenPosition(ch.name, read.position, now);
    return { position: top, top, publications: [], recovered: fresh };
  }
  const top = read.position;
  const sameStream = since.epoch === top.epoch || fresh;
  const recovered = sane && sameStream && exactFrom(read, since.offset, limits.maxPublications);
  if (!recovered) return { position: top, top, publications: [], recovered: false };
  const last = read.publications.at(-1);
  return {
    position: { offset: last ? last.offset : since.offset, epoch: top.epoch },
    top,
    publications: read.publications,
    recovered: true,
  };
}

/** Whether `read` (a read after `offset`) starts exactly after it and nothing was trimmed. */
export function exactFrom(read: HistoryResult, offset: number, max: number): boolean {
  const missed = read.position.offset - offset;
  if (missed < 0 || missed > max || offset < read.earliest - 1) return false;
  if (missed === 0) return true;
  return read.publications.length > 0 && read.publications[0]!.offset === offset + 1;
}
