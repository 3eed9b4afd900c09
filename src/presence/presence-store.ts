import type { ClientInfo } from '../stream/types.js';

/** One connection present in a channel. */
export interface PresenceEntry extends ClientInfo {
  connInfo?: unknown;
  /** What the subscribe proxy answered as `info` for this connection in this channel (docs/backend.md). */
  chanInfo?: unknown;
}

/**
 * Who is where, kept apart from the Broker: per channel, the connections subscribed to
 * presence-enabled channels; per user, the connections online. Several connections of one
 * user count as one user: `userJoined`/`first` say when a user's first connection arrives,
 * `userLeft`/`last` when their last one goes, so join/leave and online/offline go out once.
 * A shared implementation (Redis) expires the entries of a node that died without removing
 * them, within its TTL.
 */
export interface PresenceStore {
  add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }>;
  remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }>;
  /** Every entry of a channel, by client id. */
  get(channel: string): Promise<Record<string, PresenceEntry>>;
  connectUser(user: string, client: string): Promise<{ first: boolean }>;
  disconnectUser(user: string, client: string): Promise<{ last: boolean }>;
  /** Which of these users have at least one live connection. */
  onlineUsers(users: readonly string[]): Promise<Set<string>>;
  /**
   * Removes channel presence entries whose expiry passed (their node stopped refreshing them: it
   * died), atomically per channel, so that when several nodes sweep each removal is reported to
   * exactly one of them. `userLeft` is true on the removal that took the user's last entry in the
   * channel: the caller publishes `leave` for those. Optional: stores without expiry have none.
   */
  sweepExpired?(): Promise<ExpiredPresence[]>;
  close(): Promise<void>;
}

/** One presence entry removed by `sweepExpired`. */
export interface ExpiredPresence {
  channel: string;
  info: PresenceEntry;
  /** The user has no entry left in the channel. */
  userLeft: boolean;
}

/** The users of a channel's presence, each once, sorted; anonymous clients are not users. */
export function presenceUsers(clients: Record<string, PresenceEntry>): string[] {
  // Anonymous clients (user '') are each their own client, not one user: they are not listed.
  return [...new Set(Object.values(clients).map((e) => e.user))].filter((u) => u !== '').sort();
}
