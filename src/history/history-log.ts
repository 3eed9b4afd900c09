import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, StreamPosition } from '../stream/types.js';

/**
 * Synchronous per-channel publication log used by the single-node MemoryBroker.
 * Implementations: MemoryHistoryLog (lost on restart) and SqliteHistoryLog (survives it).
 *
 * A stream is created (with a fresh epoch) on first use and forgotten once its position
 * outlives `metaTtlMs` without a publication; the next use then starts a new epoch.
 */
export interface HistoryLog {
  /** Appends one publication and returns its position. Requires `options.size > 0`. */
  append(channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): StreamPosition;
  read(channel: string, query: HistoryQuery, options: HistoryOptions, now: number): HistoryResult;
  /** Drops expired publications and streams. Called periodically. */
  sweep(now: number): void;
  close(): void;
}
