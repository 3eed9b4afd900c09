import { ClientErrorCode, DEFAULTS } from './constants.js';
import { ClientError } from './errors.js';

/** What the token refresh needs from the socket. */
export interface TokenRefreshHost {
  /** Whether the transport of `generation` is still the current one (a refresh belongs to one transport). */
  isCurrent(generation: number): boolean;
  isConnected(): boolean;
  /** Sends a command on the current connection (rejects when not connected). */
  request(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  /** The server took the new token: the session now expires then (undefined: never). */
  refreshed(expires: number | undefined): void;
  error(err: ClientError): void;
}

/** Longest delay setTimeout takes (about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The connection token: the one given, or `getToken()`'s (called when there is none yet, and
 * again once the server refused the last one as expired), refreshed on the live connection with
 * the `refresh` command shortly before it expires.
 */
export class ConnectionToken {
  private token: string | undefined;
  private stale = false;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    token: string | undefined,
    private readonly getToken: (() => Promise<string>) | undefined,
    private readonly timeoutMs: number,
    private readonly host: TokenRefreshHost,
  ) {
    this.token = token;
  }

  /** The server refused the token as expired: the next `current()` asks `getToken()` for a new one. */
  expired(): void {
    this.stale = true;
  }

  /** The token to connect with (undefined: none); TOKEN_UNAVAILABLE (temporary) when `getToken()` fails. */
  async current(): Promise<string | undefined> {
    const getToken = this.getToken;
    if (!getToken || (this.token !== undefined && !this.stale)) return this.token;
    let token: unknown;
    try {
      token = await getToken();
    } catch (err) {
      throw new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, `getToken() failed: ${(err as Error)?.message ?? String(err)}`, {
        temporary: true,
        cause: err,
      });
    }
    if (typeof token !== 'string' || token === '') {
      throw new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, 'getToken() must resolve to a non-empty string', { temporary: true });
    }
    this.token = token;
    this.stale = false;
    return token;
  }

  /** Refreshes the token shortly before `expires` (unix seconds) with a new one from getToken(). */
  scheduleRefresh(expires: number, generation: number): void {
    clearTimeout(this.refreshTimer);
    if (!this.getToken) return;
    const remaining = expires * 1000 - Date.now();
    const lead = Math.min(DEFAULTS.refreshMaxLeadMs, Math.max(0, remaining) * DEFAULTS.refreshShare);
    const delay = Math.max(0, remaining - lead);
    if (delay > MAX_TIMER_MS) {
      this.refreshTimer = setTimeout(() => this.scheduleRefresh(expires, generation), MAX_TIMER_MS);
      return;
    }
    this.refreshTimer = setTimeout(() => void this.refresh(expires, generation), delay);
  }

  /** The transport is gone: no refresh for it. */
  cancelRefresh(): void {
    clearTimeout(this.refreshTimer);
  }

  private async refresh(expires: number, generation: number): Promise<void> {
    const host = this.host;
    if (!host.isCurrent(generation) || !host.isConnected()) return;
    try {
      this.stale = true;
      const token = await this.current();
      if (!host.isCurrent(generation) || !host.isConnected()) return;
      const result = (await host.request('refresh', { token }, this.timeoutMs)) as { expires?: number };
      if (!host.isCurrent(generation)) return;
      host.refreshed(typeof result?.expires === 'number' ? result.expires : undefined);
      if (typeof result?.expires === 'number') this.scheduleRefresh(result.expires, generation);
    } catch (err) {
      if (!host.isCurrent(generation)) return;
      host.error(err instanceof ClientError ? err : new ClientError(ClientErrorCode.TOKEN_UNAVAILABLE, String(err)));
      // Try again while the old token lasts; once it expires the server closes with 4003 and
      // the reconnect gets a new token.
      const left = expires * 1000 - Date.now();
      if (left > 0) this.refreshTimer = setTimeout(() => void this.refresh(expires, generation), Math.min(1000, left / 2));
    }
  }
}
