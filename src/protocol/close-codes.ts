/**
 * WebSocket close codes. Stable; listed in docs/protocol.md.
 *
 * Ranges decide what a client does next:
 * - 1000–1999: standard codes (RFC 6455). 1000/1001 reconnect; 1007, 1008, 1009 do not.
 * - 4000–4499: reconnect (with backoff, and recovery of subscriptions).
 * - 4500–4999: terminal: do not reconnect without a change (new token, user action).
 */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
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

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export const CLOSE_REASONS: Record<CloseCodeValue, string> = {
  1000: 'normal',
  1001: 'going away',
  1007: 'invalid payload',
  1008: 'policy violation',
  1009: 'message too big',
  4000: 'server shutdown, reconnect elsewhere',
  4001: 'slow consumer',
  4002: 'no pong',
  4003: 'token expired',
  4004: 'connect timeout',
  4005: 'rate limited',
  4006: 'internal error',
  4007: 'connection limit',
  4008: 'missed publications: reconnect and recover',
  4500: 'unauthorized',
  4501: 'kicked',
  4502: 'protocol error',
};

/** Whether a client should reconnect after the server closed with `code`. */
export function shouldReconnect(code: number): boolean {
  if (code >= 4500 && code <= 4999) return false;
  if (code === 1007 || code === 1008 || code === 1009) return false;
  return true;
}

/** Codes of the `unsubscribe` push: why the server ended a subscription. */
export const UnsubscribeCode = {
  /** Unsubscribed by the server (HTTP API, application); do not resubscribe on your own. */
  SERVER: 2000,
  /** The server could not keep the stream exact (a gap); resubscribe at once with `since`. */
  INSUFFICIENT_STATE: 2001,
} as const;
