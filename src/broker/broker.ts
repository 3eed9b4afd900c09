/**
 * The Broker moves publications between nodes and keeps channel history.
 *
 * Contract (every implementation, memory or Redis, must hold it; test/broker-contract.test.ts
 * runs one suite against each):
 * - `publish` is atomic per channel: the offset increment, the history append and the
 *   delivery to interested nodes happen together or not at all. With history on, offsets
 *   increase by exactly 1 per publication, starting at 1 for a new epoch.
 * - The epoch names one history instance. When a stream is lost (expired, flushed, a restart
 *   without persistence) the next publish starts a new epoch, so a position from the old one
 *   can never be mistaken for a position in the new one.
 * - Delivery to `BrokerEventHandler` is at most once and in offset order per channel. A node
 *   that misses publications notices the gap through offsets and recovers from history.
 * - An idempotency key is scoped to its channel; within its window a publish with the same key
 *   returns the first result and does not publish again.
 * - Publication `data` is a JSON text, encoded once by whoever accepted the publication and
 *   never parsed again on the way to subscribers.
 */
export interface StreamPosition {
  /** Offset of the latest publication in the stream; 0 when the stream is empty. */
  offset: number;
  /** Names the history instance; '' when the channel keeps no history. */
  epoch: string;
}

/** Who published, when a client did. */
export interface ClientInfo {
  user: string;
  client: string;
}

export interface Publication {
  offset: number;
  /** JSON text of the payload. */
  data: string;
  info?: ClientInfo;
}

export interface HistoryOptions {
  /** How many publications the stream keeps; 0 keeps none (offsets are then 0). */
  size: number;
  /** How long a publication stays in the stream, in milliseconds. */
  ttlMs: number;
  /**
   * How long the stream position (offset and epoch) outlives the last publication, in
   * milliseconds. Must be at least `ttlMs`.
   */
  metaTtlMs: number;
}

export interface PublishOptions {
  history: HistoryOptions;
  info?: ClientInfo;
  idempotencyKey?: string;
  /** Window of the idempotency key, in milliseconds. */
  idempotencyTtlMs?: number;
}

export interface PublishResult extends StreamPosition {
  /** True when an earlier publish with the same idempotency key was returned instead. */
  duplicate: boolean;
}

export interface HistoryQuery {
  /** Return publications with offsets greater than this one. Omitted: only the position. */
  sinceOffset?: number;
  /** At most this many publications, oldest first. */
  limit: number;
}

export interface HistoryResult {
  position: StreamPosition;
  publications: Publication[];
  /**
   * The lowest offset still held (1 when nothing was trimmed yet, top + 1 for an empty
   * stream). A caller asking for `sinceOffset` < `earliest - 1` has lost publications.
   */
  earliest: number;
}

/**
 * An ephemeral channel event pushed to every node's subscribers of the channel and never
 * stored: presence joins and leaves, typing signals, read receipts.
 */
export type ChannelEvent =
  | { kind: 'join' | 'leave'; info: ClientInfo & { connInfo?: unknown } }
  | { kind: 'typing'; user: string; client: string; typing: boolean }
  | { kind: 'read'; user: string; offset: number };

/** How a Broker hands what it receives back to its node. Kept apart from the Broker itself. */
export interface BrokerEventHandler {
  onPublication(channel: string, pub: Publication, epoch: string): void;
  onEvent(channel: string, event: ChannelEvent): void;
  /** A cross-node command (disconnect a user, unsubscribe, …) from any node, this one included. */
  onControl(command: ControlCommand): void;
}

export type ControlCommand =
  { kind: 'disconnect'; user: string; code: number; reason: string } | { kind: 'unsubscribe'; user: string; channel: string };

export interface Broker {
  /** Registers the handler; called once by the node before anything else. */
  setHandler(handler: BrokerEventHandler): void;
  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult>;
  /** Sends an ephemeral event to every node's subscribers of the channel. Not stored. */
  publishEvent(channel: string, event: ChannelEvent): Promise<void>;
  /** Sends a control command to every node. */
  publishControl(command: ControlCommand): Promise<void>;
  /**
   * Declares this node's interest in a channel. The node calls it once per channel when the
   * first local subscriber arrives (it ref-counts itself), and `unsubscribe` when the last
   * one leaves. A Redis implementation maps this to one SUBSCRIBE on its one subscriber
   * connection.
   */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult>;
  close(): Promise<void>;
}

/**
 * Optional ability: a broker whose delivery can lose messages (Redis pub/sub). The node then
 * checks its subscribers' positions against the stream tops periodically, so a loss that no
 * later publication reveals is still found and recovered.
 */
export interface LossyDelivery {
  readonly lossyDelivery: true;
}

export function isLossy(broker: Broker): broker is Broker & LossyDelivery {
  return (broker as Partial<LossyDelivery>).lossyDelivery === true;
}

/** Optional ability: a broker that can say whether its backend is reachable. */
export interface HealthChecker {
  healthy(): Promise<boolean>;
}
