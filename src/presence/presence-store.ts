import type { ClientInfo } from '../broker/broker.js';

/** One connection present in a channel. */
export interface PresenceEntry extends ClientInfo {
  connInfo?: unknown;
}

/**
 * Who is subscribed to presence-enabled channels, kept apart from the Broker. A Redis
 * implementation shares it between nodes; entries of a crashed node then expire by TTL.
 */
export interface PresenceStore {
  add(channel: string, entry: PresenceEntry): Promise<void>;
  remove(channel: string, client: string): Promise<void>;
  /** Every entry of a channel, by client id. */
  get(channel: string): Promise<Record<string, PresenceEntry>>;
  close(): Promise<void>;
}
