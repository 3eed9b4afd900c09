/**
 * The one registry of reply error codes. Codes are stable: never renumber, only add.
 * Every entry's key equals its `code` (checked by test/protocol-errors.test.ts) and
 * every entry is listed in docs/protocol.md.
 */
export interface ErrorSpec {
  readonly code: number;
  readonly name: string;
  readonly message: string;
  /** A temporary error may succeed if the client retries the same command later. */
  readonly temporary: boolean;
  /** The HTTP status the HTTP API and SSE answer it with. */
  readonly httpStatus: number;
}

export const ERRORS = {
  100: { code: 100, name: 'INTERNAL', message: 'internal server error', temporary: true, httpStatus: 500 },
  101: { code: 101, name: 'UNAUTHORIZED', message: 'unauthorized', temporary: false, httpStatus: 401 },
  102: { code: 102, name: 'UNKNOWN_CHANNEL', message: 'unknown channel or namespace', temporary: false, httpStatus: 404 },
  103: { code: 103, name: 'PERMISSION_DENIED', message: 'permission denied', temporary: false, httpStatus: 403 },
  104: { code: 104, name: 'METHOD_NOT_FOUND', message: 'method not found', temporary: false, httpStatus: 404 },
  105: { code: 105, name: 'ALREADY_SUBSCRIBED', message: 'already subscribed', temporary: false, httpStatus: 409 },
  106: { code: 106, name: 'LIMIT_EXCEEDED', message: 'limit exceeded', temporary: false, httpStatus: 429 },
  107: { code: 107, name: 'BAD_REQUEST', message: 'bad request', temporary: false, httpStatus: 400 },
  108: { code: 108, name: 'NOT_AVAILABLE', message: 'not available', temporary: false, httpStatus: 409 },
  109: { code: 109, name: 'TOKEN_EXPIRED', message: 'token expired', temporary: false, httpStatus: 401 },
  110: { code: 110, name: 'NOT_CONNECTED', message: 'connect first', temporary: false, httpStatus: 400 },
  111: { code: 111, name: 'TOO_MANY_REQUESTS', message: 'too many requests', temporary: true, httpStatus: 429 },
  112: { code: 112, name: 'NOT_SUBSCRIBED', message: 'not subscribed', temporary: false, httpStatus: 409 },
  113: { code: 113, name: 'ALREADY_CONNECTED', message: 'already connected', temporary: false, httpStatus: 409 },
  114: { code: 114, name: 'UNAVAILABLE', message: 'service temporarily unavailable', temporary: true, httpStatus: 503 },
  115: { code: 115, name: 'TIMEOUT', message: 'timed out', temporary: true, httpStatus: 504 },
  116: { code: 116, name: 'BACKEND_REFUSED', message: 'refused by the backend', temporary: false, httpStatus: 403 },
  117: { code: 117, name: 'BACKEND_INVALID', message: 'the backend answered an invalid response', temporary: true, httpStatus: 502 },
  120: { code: 120, name: 'DOCUMENT_READ_ONLY', message: 'document is read-only', temporary: false, httpStatus: 403 },
  121: { code: 121, name: 'DOCUMENT_TOO_LARGE', message: 'update or document too large', temporary: false, httpStatus: 413 },
  122: { code: 122, name: 'TOO_MANY_DOCUMENTS', message: 'too many documents open', temporary: true, httpStatus: 503 },
  123: { code: 123, name: 'DOCUMENT_UNAVAILABLE', message: 'document could not be loaded or stored', temporary: true, httpStatus: 503 },
  124: { code: 124, name: 'NOT_A_DOCUMENT', message: 'not a document namespace', temporary: false, httpStatus: 404 },
  125: { code: 125, name: 'UNSUPPORTED_SUBPROTOCOL', message: 'unsupported WebSocket subprotocol', temporary: false, httpStatus: 400 },
  136: { code: 136, name: 'ADMIN_CSRF_REJECTED', message: 'cross-site request refused', temporary: false, httpStatus: 403 },
  137: { code: 137, name: 'ADMIN_LOGIN_THROTTLED', message: 'too many login attempts', temporary: true, httpStatus: 429 },
} as const satisfies Record<number, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Application errors raised by RPC handlers and hooks use codes from this value up. */
export const APP_ERROR_CODE_MIN = 1000;

/** The typed error every layer throws; it turns into a reply `error` object on the wire. */
export class HubError extends Error {
  readonly code: number;
  readonly temporary: boolean;

  constructor(code: ErrorCode, message?: string);
  constructor(code: number, message: string, temporary?: boolean);
  constructor(code: number, message?: string, temporary?: boolean) {
    const spec = (ERRORS as Record<number, ErrorSpec>)[code];
    super(message ?? spec?.message ?? 'error');
    this.name = 'HubError';
    this.code = code;
    this.temporary = temporary ?? spec?.temporary ?? false;
  }

  toWire(): WireError {
    return this.temporary ? { code: this.code, message: this.message, temporary: true } : { code: this.code, message: this.message };
  }
}

export interface WireError {
  code: number;
  message: string;
  temporary?: boolean;
}

/** The HTTP status for an error code: the registry's, or 400 / 503 for application codes. */
export function httpStatusOf(code: number, temporary: boolean): number {
  return (ERRORS as Record<number, ErrorSpec>)[code]?.httpStatus ?? (temporary ? 503 : 400);
}

/** Turns anything thrown into a wire error without leaking internals. */
export function toWireError(err: unknown): WireError {
  if (err instanceof HubError) return err.toWire();
  return { code: 100, message: ERRORS[100].message, temporary: true };
}
