/**
 * Every state and code the client knows, in one module (like phoenix's constants.js).
 * Copied from the protocol spec (docs/protocol.md) on purpose: the client imports nothing from
 * the server.
 */

/** Wire protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** Connection states. `connecting` includes waiting between reconnect attempts. */
export const ConnectionState = {
  Disconnected: 'disconnected',
  Connecting: 'connecting',
  Connected: 'connected',
} as const;
export type ConnectionStateValue = (typeof ConnectionState)[keyof typeof ConnectionState];

/** Subscription states. `subscribing` includes waiting for the connection to come back. */
export const SubscriptionState = {
  Unsubscribed: 'unsubscribed',
  Subscribing: 'subscribing',
  Subscribed: 'subscribed',
} as const;
export type SubscriptionStateValue = (typeof SubscriptionState)[keyof typeof SubscriptionState];

/** WebSocket close codes the server uses (docs/protocol.md, "Close codes"). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  SHUTDOWN: 4000,
  SLOW_CONSUMER: 4001,
  NO_PONG: 4002,
  TOKEN_EXPIRED: 4003,
  CONNECT_TIMEOUT: 4004,
  RATE_LIMITED: 4005,
  INTERNAL: 4006,
  CONNECTION_LIMIT: 4007,
  INSUFFICIENT_STATE: 4008,
  UNAUTHORIZED: 4500,
  KICKED: 4501,
  PROTOCOL_ERROR: 4502,
} as const;

/** Short names of the close codes, for state-change reasons. */
export const CLOSE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1000: 'normal',
  1001: 'going away',
  1005: 'no status',
  1006: 'connection lost',
  1007: 'invalid payload',
  1008: 'policy violation',
  1009: 'message too big',
  4000: 'server shutdown',
  4001: 'slow consumer',
  4002: 'no pong',
  4003: 'token expired',
  4004: 'connect timeout',
  4005: 'rate limited',
  4006: 'internal error',
  4007: 'connection limit',
  4008: 'insufficient state',
  4500: 'unauthorized',
  4501: 'kicked',
  4502: 'protocol error',
});

/**
 * Whether to reconnect after the server closed with `code`: 4500–4999 and 1007/1008/1009 are
 * terminal; everything else (including 1006, a dropped connection) reconnects with backoff.
 * Same rule as the server's `shouldReconnect` (src/protocol/close-codes.ts).
 */
export function shouldReconnect(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  if (code === 1007 || code === 1008 || code === 1009) return false;
  return true;
}

/** Codes of the `unsubscribe` push. */
export const UnsubscribeCode = {
  /** Unsubscribed by the server; the client does not resubscribe on its own. */
  SERVER: 2000,
  /** The server lost track of the stream; the client resubscribes at once with `since`. */
  INSUFFICIENT_STATE: 2001,
} as const;

/** Reply error codes of the server (docs/protocol.md, "Reply error codes"). */
export const ServerErrorCode = {
  INTERNAL: 100,
  UNAUTHORIZED: 101,
  UNKNOWN_CHANNEL: 102,
  PERMISSION_DENIED: 103,
  METHOD_NOT_FOUND: 104,
  ALREADY_SUBSCRIBED: 105,
  LIMIT_EXCEEDED: 106,
  BAD_REQUEST: 107,
  NOT_AVAILABLE: 108,
  TOKEN_EXPIRED: 109,
  NOT_CONNECTED: 110,
  TOO_MANY_REQUESTS: 111,
  NOT_SUBSCRIBED: 112,
  ALREADY_CONNECTED: 113,
  UNAVAILABLE: 114,
  TIMEOUT: 115,
  BACKEND_REFUSED: 116,
  BACKEND_INVALID: 117,
  DOCUMENT_READ_ONLY: 120,
  DOCUMENT_TOO_LARGE: 121,
  TOO_MANY_DOCUMENTS: 122,
  DOCUMENT_UNAVAILABLE: 123,
  NOT_A_DOCUMENT: 124,
  UNSUPPORTED_SUBPROTOCOL: 125,
  /** HTTP only (the admin UI): a state-changing request without its CSRF token. */
  ADMIN_CSRF_REJECTED: 136,
  /** HTTP only (the admin UI): too many failed logins. */
  ADMIN_LOGIN_THROTTLED: 137,
} as const;

/**
 * Errors raised by the client itself (never sent by the server, which uses 100–137 and ≥ 1000).
 */
export const ClientErrorCode = {
  /** The connection dropped (or was never up) before the reply came. Temporary. */
  DISCONNECTED: 1,
  /** No reply within `timeoutMs`. Temporary. */
  TIMEOUT: 2,
  /** The offline queue holds `offlineQueueSize` publishes already. Temporary. */
  QUEUE_FULL: 3,
  /** The client was told to stop (`disconnect()`, `clearOfflineQueue()`), or the subscription ended. */
  CLOSED: 4,
  /** A command would exceed `maxMessageBytes`; the server would close the connection (1009). */
  MESSAGE_TOO_BIG: 5,
  /** A subscription to this channel already exists on this client. */
  ALREADY_SUBSCRIBED: 6,
  /** Bad arguments to a client method. */
  BAD_ARGUMENT: 7,
  /** `getToken()` threw or returned something other than a non-empty string. */
  TOKEN_UNAVAILABLE: 8,
  /** The server sent something this client cannot decode. */
  PROTOCOL: 9,
} as const;

/** Names of every code, server and client, for messages and `ClientError.codeName`. */
export const ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  ...Object.fromEntries(Object.entries(ServerErrorCode).map(([k, v]) => [v, k])),
  ...Object.fromEntries(Object.entries(ClientErrorCode).map(([k, v]) => [v, k])),
});

/** Server codes that are worth retrying (the server also flags them `temporary`). */
export const TEMPORARY_SERVER_CODES: ReadonlySet<number> = new Set([100, 111, 114, 115, 117, 122, 123, 137]);

/** Defaults of every option (docs/client.md lists them). */
export const DEFAULTS = {
  backoff: { minMs: 500, maxMs: 20_000, factor: 2 },
  offlineQueueSize: 1000,
  /** Publishes sent and not yet acknowledged, at most. */
  maxInflightPublishes: 32,
  /**
   * Pace of commands (publishes wait for it): a little under the server's default
   * `limits.commandRate` (100/s, burst 200), so that network jitter does not trip it.
   */
  commandRate: { perSecond: 90, burst: 180 },
  /** Reply timeout of connect, subscribe, history, presence and rpc. */
  timeoutMs: 10_000,
  /** Largest command the client sends (the server's `limits.maxMessageBytes`). */
  maxMessageBytes: 64 * 1024,
  /** Commands queued in one tick are sent in frames of at most this many bytes. */
  maxFrameBytes: 16 * 1024,
  /**
   * `Subscription.typing(true)` sends at most one signal per this many ms while typing stays
   * on (the server's `limits.typingThrottleMs` forwards at most one per second anyway). Must
   * stay below the server's `limits.typingExpireMs` (5 s).
   */
  typingThrottleMs: 1000,
  /** Page size of `notifications.list()` when none is given, and the largest allowed. */
  notificationsPageSize: 20,
  notificationsMaxPageSize: 1000,
  /** Most users one `statuses()` call may ask about (the server's limit). */
  maxStatusUsers: 100,
  /** A token is refreshed this share of its remaining lifetime before it expires… */
  refreshShare: 0.2,
  /** …but at most this long before. */
  refreshMaxLeadMs: 60_000,
} as const;
