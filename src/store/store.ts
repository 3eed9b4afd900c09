import type { StreamPosition } from '../stream/types.js';

export type UserStatus = 'online' | 'away' | 'busy' | 'offline';

export interface StatusRecord {
  status: UserStatus;
  /** Unix milliseconds of the user's last activity (last connection closing, or now while online). */
  lastSeen: number;
}

/**
 * Durable per-user state: read positions (read receipts, unread counts) and user status.
 * SQLite on the embedded default; Redis when nodes share state. Positions are kept per epoch:
 * a position from an older epoch of the channel counts as "nothing read". Both are kept for a
 * retention (`storeRetentionSeconds`) after their last write, then deleted.
 */
export interface Store {
  /**
   * Moves the user's read position in a channel forward (never backwards within an epoch) and
   * returns the stored position.
   */
  markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition>;
  lastRead(user: string, channel: string): Promise<StreamPosition | undefined>;
  /** Every user's read position in a channel. */
  readers(channel: string): Promise<Record<string, StreamPosition>>;
  setStatus(user: string, record: StatusRecord): Promise<void>;
  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>>;
  /**
   * Deletes read positions and statuses not written for longer than the retention; resolves with
   * how many went (where the store can count them). Stores also prune on their own, periodically
   * or by key expiry; this runs a sweep now.
   */
  prune?(): Promise<number>;
  close(): Promise<void>;
}

/** Default retention of read positions and statuses (the `storeRetentionSeconds` option): 90 days. */
export const DEFAULT_STORE_RETENTION_MS = 90 * 86_400_000;

/** How a store forgets: what it was not told for `retentionMs` is deleted. */
export interface StoreRetentionOptions {
  /** Read positions and statuses not written for this long are deleted (default 90 days). */
  retentionMs?: number;
  /** Clock (tests); defaults to Date.now. */
  now?: () => number;
  /** How often a store that sweeps (SQLite, memory) does so; default min(retention / 4, 1 hour). */
  sweepIntervalMs?: number;
}

/** The sweep period of a store with this retention. */
export function sweepInterval(options: StoreRetentionOptions, retentionMs: number): number {
  return Math.max(1, options.sweepIntervalMs ?? Math.min(Math.ceil(retentionMs / 4), 3_600_000));
}
