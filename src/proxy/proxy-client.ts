import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { PostFailed, signedPost } from '../backend-http/signed-post.js';
import type { ProxyEndpoint, ProxyOptions } from '../config/options.js';
import { APP_ERROR_CODE_MIN, HubError } from '../protocol/errors.js';

export type ProxyKind = 'connect' | 'refresh' | 'subscribe' | 'publish' | 'rpc';

/** What every proxy request body carries, plus the fields of its kind. */
export interface ProxyRequest {
  client: string;
  transport: 'websocket' | 'sse';
  headers: Record<string, string>;
  user?: string;
  channel?: string;
  data?: unknown;
  method?: string;
  name?: string;
  info?: unknown;
}

/**
 * Sends proxy requests to the backend: a signed JSON POST bounded by the endpoint's timeoutMs,
 * at most `maxInFlightPerConnection` at once per connection (more: 111) and `maxInFlight` per
 * node (more: 114). The answer maps to a result object or a HubError (docs/backend.md):
 * no answer in time, a network failure or HTTP 5xx → 114 (temporary); HTTP 4xx → 116; a 2xx
 * that is not `{"result": {…}}` or `{"error": {"code", "message"}}` → 117; an `error` with a code
 * ≥ 1000 → that error as it is, one below 1000 → 116 with its message.
 */
export class ProxyClient {
  private inFlight = 0;
  private readonly perClient = new Map<string, number>();

  constructor(
    private readonly options: ProxyOptions,
    private readonly logger: Logger,
  ) {}

  async call(kind: ProxyKind, endpoint: ProxyEndpoint, client: string, request: ProxyRequest): Promise<Record<string, unknown>> {
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= this.options.maxInFlightPerConnection) {
      throw new HubError(111, `too many ${kind} requests to the backend in flight on this connection (proxy.maxInFlightPerConnection)`);
    }
    if (this.inFlight >= this.options.maxInFlight) throw new HubError(114, 'too many requests to the backend in flight (proxy.maxInFlight)');
    this.perClient.set(client, mine + 1);
    this.inFlight += 1;
    try {
      return await this.post(kind, endpoint, request);
    } finally {
      this.inFlight -= 1;
      const left = (this.perClient.get(client) ?? 1) - 1;
      if (left === 0) this.perClient.delete(client);
      else this.perClient.set(client, left);
    }
  }

  /** The forwarded handshake headers: the endpoint's `forwardHeaders` the client sent. */
  static forwarded(endpoint: ProxyEndpoint, headers: IncomingHttpHeaders): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of endpoint.forwardHeaders) {
      const value = headers[name];
      if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    return out;
  }

  private async post(kind: ProxyKind, endpoint: ProxyEndpoint, request: ProxyRequest): Promise<Record<string, unknown>> {
    let answer;
    try {
      answer = await signedPost(endpoint.url, JSON.stringify(request), this.options.secret, endpoint.headers, endpoint.timeoutMs);
    } catch (err) {
      if (!(err instanceof PostFailed)) throw err;
      this.logger.warn({ kind, url: endpoint.url, reason: err.reason, detail: err.message }, 'proxy request failed');
      throw new HubError(114, err.reason === 'timeout' ? `backend ${kind} timed out` : `backend ${kind} unreachable`);
    }
    if (answer.status >= 500) {
      this.logger.warn({ kind, url: endpoint.url, status: answer.status }, 'proxy backend error');
      throw new HubError(114, `backend ${kind} failed (HTTP ${answer.status})`);
    }
    if (answer.status >= 400) throw new HubError(116, `backend refused ${kind} (HTTP ${answer.status})`);
    if (answer.status < 200 || answer.status >= 300) throw this.invalid(kind, `HTTP ${answer.status}`);
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw this.invalid(kind, 'not JSON');
    }
    if (!isObject(body)) throw this.invalid(kind, 'not an object');
    if (body.error !== undefined) throw backendError(kind, body.error, () => this.invalid(kind, 'bad error object'));
    const result = body.result ?? {};
    if (!isObject(result)) throw this.invalid(kind, 'result is not an object');
    return result;
  }

  private invalid(kind: ProxyKind, why: string): HubError {
    this.logger.warn({ kind, why }, 'proxy backend answered an invalid response');
    return new HubError(117, `backend ${kind} answered an invalid response: ${why}`);
  }
}

function backendError(kind: ProxyKind, error: unknown, invalid: () => HubError): HubError {
  if (!isObject(error) || !Number.isSafeInteger(error.code) || typeof error.message !== 'string') return invalid();
  const code = error.code as number;
  const message = error.message.slice(0, 200);
  if (code >= APP_ERROR_CODE_MIN) return new HubError(code, message, error.temporary === true);
  return new HubError(116, message === '' ? `backend refused ${kind}` : message);
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
