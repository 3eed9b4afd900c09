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
 * a position from an older epoch of the channel counts as "nothing read".
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
  close(): Promise<void>;
}
