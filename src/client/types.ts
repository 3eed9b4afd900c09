import type { ConnectionStateValue, SubscriptionStateValue } from './constants.js';
import type { ClientError } from './errors.js';

/** A place in a channel's stream: the offset of a publication, in one history instance (epoch). */
export interface StreamPosition {
  offset: number;
  epoch: string;
}

/** Who published, when a client did. */
export interface PublisherInfo {
  user: string;
  /** Absent in a publication of a namespace that shows only the user (`publicationInfo: "user"`). */
  client?: string;
  connInfo?: unknown;
}

/** A publication as the subscriber sees it. */
export interface Publication<T = unknown> {
  channel: string;
  /** Position in the channel's stream (0 on channels without history). */
  offset: number;
  data: T;
  info?: PublisherInfo;
  /** True when it came from the history of a resubscribe (it was missed while offline). */
  recovered: boolean;
  /** True when it is the latest value of its key given at subscribe (latest-value namespaces), not a live one. */
  latest?: boolean;
}

/** The result of a publish: where it went in the stream (`{offset: 0, epoch: ''}` without history). */
export type PublishResult = StreamPosition;

export interface PublishOptions {
  /**
   * Makes retries safe: the server applies one publish per key per channel within its
   * idempotency window (2 minutes). Generated when omitted.
   */
  idempotencyKey?: string;
  /**
   * Latest-value namespaces (`delivery: "latest"`): the conflation key. Only the newest
   * publication per key reaches a slow subscriber or a late joiner.
   */
  key?: string;
}

export interface EmitOptions {
  /** Only the newest event per sender and key reaches a slow receiver (default: one per channel). */
  key?: string;
}

/** An ephemeral client event of another connection (`onEvent`): no offset, at most once. */
export interface ClientEvent<T = unknown> {
  channel: string;
  data: T;
  info: PublisherInfo & { client: string; key?: string };
}

export interface HistoryOptions {
  /** At most this many publications (the server caps it; default: its maximum). */
  limit?: number;
  /** Only publications after this position (its epoch must be the stream's). */
  since?: StreamPosition;
}

export interface HistoryResult<T = unknown> {
  /** The stream top. */
  position: StreamPosition;
  publications: Array<{ offset: number; data: T; info?: PublisherInfo }>;
}

export interface PresenceEntry {
  user: string;
  client: string;
  connInfo?: unknown;
  /** Channel info the backend's subscribe proxy gave this connection (docs/backend.md). */
  chanInfo?: unknown;
}

/** The result of `presence()`: every connection, and every present user once. */
export interface PresenceResult {
  /** Every connection subscribed to the channel, by client id. */
  clients: Record<string, PresenceEntry>;
  /** Each present user once, however many connections (tabs, devices) they have. */
  users: string[];
}

/** A typing signal of another user (`onTyping`). */
export interface TypingEvent {
  user: string;
  /** True when the user started (or is still) typing; false when they stopped or the indicator expired. */
  typing: boolean;
}

/** A read receipt (`onRead`): `user` has read the channel up to `offset`. */
export interface ReadEvent {
  user: string;
  offset: number;
}

/** A user's read position in a channel (`markRead`, `readState`). */
export interface ReadState {
  /** The last offset the user has read (0: nothing), in the stream's current epoch. */
  lastRead: number;
  /** The channel's latest offset. */
  top: number;
  /** The stream's epoch. */
  epoch: string;
  /** `top − lastRead`. */
  unread: number;
}

/** A status a user can set. */
export type SettableStatus = 'online' | 'away' | 'busy';
/** A user's status: as set, or `offline` once their last connection went. */
export type UserStatus = SettableStatus | 'offline';

/** A user's status and when it last changed or they were last seen (unix ms; 0 = never seen). */
export interface StatusRecord {
  status: UserStatus;
  lastSeen: number;
}

/** A status change of a watched user (`watchStatus`). */
export interface StatusEvent extends StatusRecord {
  user: string;
}

/** One notification: its offset in the user's notification stream and its data. */
export interface NotificationItem<T = unknown> {
  offset: number;
  data: T;
}

/** A notification delivered live (`notifications.subscribe`). */
export interface NotificationEvent<T = unknown> extends NotificationItem<T> {
  /** True when it was missed while offline and came back with the resubscribe. */
  recovered: boolean;
}

export interface NotificationListOptions {
  /** Items per page (1 to 1000, and at most the server's `limits.historyMaxLimit`). Default 20. */
  limit?: number;
  /** Only notifications older than this offset: the `next` of the previous page. */
  before?: number;
}

/** A page of notifications, newest first. */
export interface NotificationPage<T = unknown> {
  items: Array<NotificationItem<T>>;
  /** Pass as `before` for the next (older) page; absent on the last page. */
  next?: number;
  /** The stream's epoch the offsets belong to. */
  epoch: string;
}

export interface StateChange {
  state: ConnectionStateValue;
  previous: ConnectionStateValue;
  /** Why, in words: "connect() called", "connection closed (1006)", "kicked (4501)", … */
  reason: string;
  /** The close code that caused it, when there was one. */
  code?: number;
}

export interface ConnectedInfo {
  /** The server's id for this connection. */
  client: string;
  user: string;
  /** The URL in use (one of those given). */
  url: string;
  /** When the token expires (unix seconds), if it does. */
  expires?: number;
  /** Whether this is a reconnect (subscriptions are being recovered). */
  reconnected: boolean;
}

export interface SubscribedContext {
  channel: string;
  /** The stream top when the subscription (re)started. */
  position: StreamPosition;
  /** Whether the namespace keeps history and allows recovery. */
  recoverable: boolean;
  /** Set on a resubscribe: whether every missed publication came back. */
  recovered?: boolean;
  /** True for a resubscribe (after a reconnect or a server request). */
  resubscribed: boolean;
  /** Latest-value namespaces: the publications that follow are the latest per key, not a replay. */
  latest?: boolean;
}

export interface RecoveryFailedContext {
  channel: string;
  /** The last position this client had seen. */
  since: StreamPosition;
  /** The stream's position now; publications continue from here. */
  position: StreamPosition;
}

export interface UnsubscribedContext {
  channel: string;
  /** 2000 when the server ended the subscription, 0 when `unsubscribe()` was called. */
  code: number;
  reason: string;
}

export interface SubscriptionHandlers<T = unknown> {
  onPublication?(pub: Publication<T>): void;
  onJoin?(info: PresenceEntry): void;
  onLeave?(info: PresenceEntry): void;
  /** Another user started or stopped typing (needs `typing: true` on the namespace). Never your own. */
  onTyping?(event: TypingEvent): void;
  /** A user marked the channel read up to an offset (needs `readReceipts: true` on the namespace). */
  onRead?(event: ReadEvent): void;
  /** A client event (`emit`) of another connection (needs `clientEvents: true` on the namespace). */
  onEvent?(event: ClientEvent<T>): void;
  /** Each time the subscription is (re)established. */
  onSubscribed?(ctx: SubscribedContext): void;
  /** A resubscribe could not recover what was missed: refetch the app's state. */
  onRecoveryFailed?(ctx: RecoveryFailedContext): void;
  /** The subscription ended for good (by the server, or `unsubscribe()`). */
  onUnsubscribed?(ctx: UnsubscribedContext): void;
  /** The subscribe was refused (permission, unknown channel, …); the subscription is over. */
  onError?(err: ClientError): void;
  onStateChange?(state: SubscriptionStateValue, previous: SubscriptionStateValue): void;
}

/** Constructor of a WebSocket: the browser's, `ws`'s, or any compatible one. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => unknown;
