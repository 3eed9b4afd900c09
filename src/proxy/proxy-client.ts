import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { PostFailed, signedPost } from '../backend-http/signed-post.js';
import type { ProxyEndpoint, ProxyOptions } from '../config/options.js';
import { APP_ERROR_CODE_MIN, HubError } from '../protocol/errors.js';
import { ProxyStats, type ProxyOutcome } from './proxy-stats.js';

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
  /** The client's idempotency key of a publish: the same on its retries, so the backend can store once. */
  idempotencyKey?: string;
}

/** A proxy failure mapped to the client's error, with the outcome it counts as. */
class ProxyFailure extends HubError {
  constructor(
    readonly outcome: ProxyOutcome,
    code: number,
    message: string,
    temporary?: boolean,
  ) {
    super(code, message, temporary);
  }
}

/**
 * Sends proxy requests to the backend: a signed JSON POST bounded by the endpoint's timeoutMs,
 * at most `maxInFlightPerConnection` at once per connection (more: 111) and `maxInFlight` per
 * node (more: 114). The answer maps to a result object or a HubError (docs/backend.md):
 * no answer in time, a network failure or HTTP 5xx → 114 (temporary); HTTP 4xx → 116; a 2xx
 * that is not `{"result": {…}}` or `{"error": {"code", "message"}}` → 117; an `error` with a code
 * ≥ 1000 → that error as it is, one below 1000 → 116 with its message. Every request is counted
 * in `stats` by kind and outcome.
 */
export class ProxyClient {
  private inFlight = 0;
  private readonly perClient = new Map<string, number>();
  readonly stats = new ProxyStats(() => this.inFlight);

  constructor(
    private readonly options: ProxyOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * One request; `parse` checks the result's shape for its kind (a HubError it throws counts as
   * an invalid answer) and gives what the call resolves with.
   */
  async call<T = Record<string, unknown>>(
    kind: ProxyKind,
    endpoint: ProxyEndpoint,
    client: string,
    request: ProxyRequest,
    parse: (result: Record<string, unknown>) => T = (result) => result as T,
  ): Promise<T> {
    const mine = this.perClient.get(client) ?? 0;
    if (mine >= this.options.maxInFlightPerConnection) {
      this.stats.record(kind, 'limited');
      throw new HubError(111, `too many ${kind} requests to the backend in flight on this connection (proxy.maxInFlightPerConnection)`);
    }
    if (this.inFlight >= this.options.maxInFlight) {
      this.stats.record(kind, 'limited');
      throw new HubError(114, 'too many requests to the backend in flight (proxy.maxInFlight)');
    }
    this.perClient.set(client, mine + 1);
    this.inFlight += 1;
    let outcome: ProxyOutcome = 'invalid';
    try {
      const result = parse(await this.post(kind, endpoint, request));
      outcome = 'ok';
      return result;
    } catch (err) {
      if (err instanceof ProxyFailure) outcome = err.outcome;
      throw err;
    } finally {
      this.stats.record(kind, outcome);
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
      if (err.reason === 'timeout') throw new ProxyFailure('timeout', 114, `backend ${kind} timed out`);
      throw new ProxyFailure('unavailable', 114, `backend ${kind} unreachable`);
    }
    if (answer.status >= 500) {
      this.logger.warn({ kind, url: endpoint.url, status: answer.status }, 'proxy backend error');
      throw new ProxyFailure('http_5xx', 114, `backend ${kind} failed (HTTP ${answer.status})`);
    }
    if (answer.status >= 400) throw new ProxyFailure('refused', 116, `backend refused ${kind} (HTTP ${answer.status})`);
    if (answer.status < 200 || answer.status >= 300) throw this.invalid(kind, `HTTP ${answer.status}`);
    let body: unknown;
    try {
      body = JSON.parse(answer.text);
    } catch {
      throw this.invalid(kind, 'not JSON');
    }
    if (!isObject(body)) throw this.invalid(kind, 'not an object');
    if (body.error !== undefined) {
      const refusal = backendError(kind, body.error, () => this.invalid(kind, 'bad error object'));
      // An error the backend chose is a refusal; a malformed one stays an invalid answer.
      throw refusal.code === 117 ? refusal : new ProxyFailure('refused', refusal.code, refusal.message, refusal.temporary);
    }
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
