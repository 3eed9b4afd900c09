import { validateBackoff, type BackoffOptions } from './backoff.js';
import { DEFAULTS } from './constants.js';
import type { RateOptions } from './rate-limiter.js';
import type { WebSocketConstructor } from './types.js';
import { badArgument } from './validation.js';

export interface ClientOptions {
  /** A connection token (JWT). With `getToken` too, this one is used first. */
  token?: string;
  /** Called for a token before connecting (when there is none yet), before it expires, and after the server refused it as expired. */
  getToken?: () => Promise<string>;
  /** A name for this client, shown in server logs. */
  name?: string;
  /** Reconnect delays: exponential with full jitter. Default `{minMs: 500, maxMs: 20000, factor: 2}`. */
  backoff?: Partial<BackoffOptions>;
  /** Publishes waiting to be sent, at most (default 1000). One more is refused with QUEUE_FULL. */
  offlineQueueSize?: number;
  /** Publishes sent and not yet acknowledged, at most (default 32). */
  maxInflightPublishes?: number;
  /**
   * The pace of commands this client keeps to, to stay under the server's `limits.commandRate`:
   * publishes wait for it. Default `{perSecond: 90, burst: 180}` (the server's default is 100/s,
   * burst 200); `null` turns pacing off.
   */
  commandRate?: RateOptions | null;
  /** Reply timeout of connect, rpc, history and presence, in ms (default 10000). */
  timeoutMs?: number;
  /** Largest command sent, in bytes: the server's `limits.maxMessageBytes` (default 65536). */
  maxMessageBytes?: number;
  /**
   * `Subscription.typing(true)` sends at most one signal per this many ms while typing stays on
   * (default 1000). Keep it below the server's `limits.typingExpireMs` (5000 by default), or
   * the indicator expires between two signals.
   */
  typingThrottleMs?: number;
  /** A WebSocket implementation; default: the global one (browsers), else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Random numbers in [0, 1) for backoff jitter (tests). */
  random?: () => number;
  /**
   * The wire codec: `json` (default) or `msgpack` (the `switchboard.v1.msgpack` subprotocol:
   * binary frames, smaller; `Uint8Array` values travel as bytes).
   */
  codec?: 'json' | 'msgpack';
  /**
   * The protocol version to ask for: 2 (default; compact publications, fewer bytes per
   * delivery) or 1. Either way the SDK's objects are the same, and a v2 client falls back to
   * v1 on a server that speaks only v1 (docs/protocol.md, Protocol v2).
   */
  protocolVersion?: 1 | 2;
}

const KNOWN_OPTIONS = new Set([
  'token',
  'getToken',
  'name',
  'backoff',
  'offlineQueueSize',
  'maxInflightPublishes',
  'commandRate',
  'timeoutMs',
  'maxMessageBytes',
  'typingThrottleMs',
  'WebSocket',
  'random',
  'codec',
  'protocolVersion',
]);

/** The options checked and with their defaults; the rest are read from `ClientOptions` as given. */
export interface ResolvedClientOptions {
  urls: readonly string[];
  backoff: BackoffOptions;
  timeoutMs: number;
  typingThrottleMs: number;
  maxInflight: number;
  maxMessageBytes: number;
}

/**
 * Checks the URLs and the options of `new SwitchboardClient` (BAD_ARGUMENT on the first wrong
 * one); `offlineQueueSize` and `commandRate` are checked by the queue and the rate limiter.
 */
export function resolveClientOptions(url: string | readonly string[], options: ClientOptions): ResolvedClientOptions {
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw badArgument(`unknown option: ${key}`);
  }
  const list = typeof url === 'string' ? [url] : [...url];
  if (list.length === 0) throw badArgument('url: give at least one URL');
  const urls = Object.freeze(list.map(normalizeUrl));
  if (options.token !== undefined && (typeof options.token !== 'string' || options.token === ''))
    throw badArgument('token: expected a non-empty string');
  if (options.getToken !== undefined && typeof options.getToken !== 'function') throw badArgument('getToken: expected a function');
  if (options.codec !== undefined && options.codec !== 'json' && options.codec !== 'msgpack') throw badArgument("codec: expected 'json' or 'msgpack'");
  if (options.protocolVersion !== undefined && options.protocolVersion !== 1 && options.protocolVersion !== 2)
    throw badArgument('protocolVersion: expected 1 or 2');
  const backoff: BackoffOptions = { ...DEFAULTS.backoff, ...options.backoff };
  validateBackoff(backoff);
  return {
    urls,
    backoff,
    timeoutMs: positive(options.timeoutMs, DEFAULTS.timeoutMs, 'timeoutMs'),
    typingThrottleMs: positive(options.typingThrottleMs, DEFAULTS.typingThrottleMs, 'typingThrottleMs'),
    maxInflight: positive(options.maxInflightPublishes, DEFAULTS.maxInflightPublishes, 'maxInflightPublishes'),
    maxMessageBytes: positive(options.maxMessageBytes, DEFAULTS.maxMessageBytes, 'maxMessageBytes'),
  };
}

/** A positive number option, or `fallback` when not given. */
function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw badArgument(`${name}: expected a positive number`);
  return value;
}

/**
 * ws:// and wss:// URLs as given; http(s):// turned into ws(s)://; in a browser a path such as
 * `/ws` is taken relative to the page.
 */
function normalizeUrl(url: string): string {
  if (typeof url !== 'string' || url === '') throw badArgument('url: expected a non-empty string');
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let parsed: URL;
  try {
    parsed = base ? new URL(url, base) : new URL(url);
  } catch {
    throw badArgument(`url: not a valid URL: ${url}`);
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
    throw badArgument(`url: expected ws://, wss://, http:// or https://: ${url}`);
  return parsed.toString();
}
