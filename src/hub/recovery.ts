import type { Broker } from '../broker/broker.js';
import type { Publication, StreamPosition } from '../stream/types.js';
import type { ResolvedChannel } from '../channels/channels.js';

/** What a subscribe with `since` gets back: the position, and what was missed (or nothing). */
export interface Recovery {
  position: StreamPosition;
  publications: Publication[];
  /** undefined without `since`; otherwise whether `publications` is exactly what was missed. */
  recovered: boolean | undefined;
}

export function isRecoverable(ch: ResolvedChannel): boolean {
  return ch.options.recover && ch.history.size > 0;
}

/**
 * Reads what a subscriber missed since `since`, in one history read that also returns the
 * stream top. Recovery is refused — `recovered: false` and no publications, never a partial
 * replay — when the namespace does not recover, the epoch differs, the offset is negative,
 * beyond the top or before the earliest kept publication, or more than `max` were missed.
 */
export async function recover(broker: Broker, ch: ResolvedChannel, since: StreamPosition | undefined, max: number): Promise<Recovery> {
  if (ch.history.size === 0) {
    return { position: { offset: 0, epoch: '' }, publications: [], recovered: since ? false : undefined };
  }
  if (!since) {
    const { position } = await broker.history(ch.name, { limit: 0 }, ch.history);
    return { position, publications: [], recovered: undefined };
  }
  const sane = ch.options.recover && Number.isSafeInteger(since.offset) && since.offset >= 0;
  const { position, publications, earliest } = await broker.history(
    ch.name,
    sane ? { sinceOffset: since.offset, limit: max } : { limit: 0 },
    ch.history,
  );
  const missed = position.offset - since.offset;
  const recovered =
    sane &&
    since.epoch === position.epoch &&
    missed >= 0 &&
    missed <= max &&
    since.offset >= earliest - 1 &&
    publications.length === missed;
  return { position, publications: recovered ? publications : [], recovered };
}
