import { ClientErrorCode, ERROR_NAMES, TEMPORARY_SERVER_CODES } from './constants.js';

/** The `error` object of a reply, as the server sends it. */
export interface WireError {
  code: number;
  message: string;
  temporary?: boolean;
}

/**
 * Every error the client rejects with or reports. `code` is the server's code (100–115, or
 * ≥ 1000 for application errors) when `fromServer` is true, else one of `ClientErrorCode`.
 * `temporary` says whether trying again later may succeed.
 */
export class ClientError extends Error {
  readonly code: number;
  readonly temporary: boolean;
  /** True when the server sent this error in a reply. */
  readonly fromServer: boolean;

  constructor(code: number, message: string, options: { temporary?: boolean; fromServer?: boolean; cause?: unknown } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ClientError';
    this.code = code;
    this.fromServer = options.fromServer ?? false;
    this.temporary = options.temporary ?? (this.fromServer ? TEMPORARY_SERVER_CODES.has(code) : false);
  }

  /** `PERMISSION_DENIED`, `TIMEOUT`, …; `APPLICATION` for codes ≥ 1000. */
  get codeName(): string {
    return ERROR_NAMES[this.code] ?? (this.code >= 1000 ? 'APPLICATION' : 'UNKNOWN');
  }

  /** An error from a reply's `error` object. */
  static fromWire(error: WireError, method?: string): ClientError {
    const code = typeof error?.code === 'number' ? error.code : 100;
    const message = typeof error?.message === 'string' ? error.message : 'error';
    return new ClientError(code, method ? `${method}: ${message} (${code})` : `${message} (${code})`, {
      fromServer: true,
      ...(typeof error?.temporary === 'boolean' ? { temporary: error.temporary } : {}),
    });
  }

  static disconnected(what: string): ClientError {
    return new ClientError(ClientErrorCode.DISCONNECTED, `${what}: the connection was lost before the reply`, { temporary: true });
  }

  static notConnected(what: string): ClientError {
    return new ClientError(ClientErrorCode.DISCONNECTED, `${what}: the client is disconnected (call connect())`, { temporary: true });
  }

  static timeout(what: string, ms: number): ClientError {
    return new ClientError(ClientErrorCode.TIMEOUT, `${what}: no reply within ${ms} ms`, { temporary: true });
  }

  static closed(what: string): ClientError {
    return new ClientError(ClientErrorCode.CLOSED, what);
  }
}
