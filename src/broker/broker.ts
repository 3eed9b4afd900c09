import type {
  ChannelEvent,
  ClientInfo,
  HistoryOptions,
  HistoryQuery,
  HistoryResult,
  Publication,
  StreamPosition,
} from '../stream/types.js';

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
  /**
   * A node saw the stream go back (a live publication at or below an offset it had already
   * delivered in `epoch`: a failover to a replica that missed writes). Starts a new epoch for
   * the stream if it is still on `epoch`, so every position in the old one — also those of
   * clients offline now — is refused (`recovered: false`) instead of recovering into offsets
   * that were reused.
   */
  restartEpoch(channel: string, epoch: string): Promise<void>;
}

export function isLossy(broker: Broker): broker is Broker & LossyDelivery {
  return (broker as Partial<LossyDelivery>).lossyDelivery === true;
}

/**
 * Optional ability: publishes made one after another without awaiting take effect in that
 * order (offsets per channel follow the order of the calls). The publish fast path starts a
 * connection's publishes in flight at once only on such a broker; on others each waits for the
 * one before it.
 */
export interface OrderedPublishes {
  readonly keepsCallOrder: true;
}

export function keepsCallOrder(broker: Broker): boolean {
  return (broker as Partial<OrderedPublishes>).keepsCallOrder === true;
}

/** Optional ability: a broker that can say whether its backend is reachable. */
export interface HealthChecker {
  healthy(): Promise<boolean>;
}
