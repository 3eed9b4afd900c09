import { withTimeout } from '../limits/timeout.js';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { HubError } from '../protocol/errors.js';

/** Default bound of every Redis command (the `redisCommandTimeoutMs` option). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;

export interface RedisConnectionOptions {
  /** Every command fails (with 114 where callers map it) after this long without a reply. */
  commandTimeoutMs?: number;
  logger?: Logger;
  /** Shown in logs. */
  name?: string;
  /** Credentials and TLS (a cluster's nodes: `redisCluster.password`, `.tls`). */
  security?: RedisSecurity | undefined;
  /**
   * ioredis auto-pipelining: the commands issued in one event-loop turn go out as one write
   * (one pipeline), in the order issued. For connections that carry many small commands.
   */
  autoPipelining?: boolean;
}

/** AUTH and TLS for connections to Redis nodes (a URL carries its own: `rediss://user:pass@…`). */
export interface RedisSecurity {
  username?: string;
  password?: string;
  tls?: ConnectionOptions;
}

/** A single Redis (or one reached through Sentinel) or a Redis Cluster: what commands run on. */
export type RedisClient = Redis | Cluster;

/** Redis through Sentinel (the `redisSentinel` option): ioredis asks the sentinels for the master. */
export interface SentinelTarget {
  /** Sentinels as `host:port`. */
  sentinels: readonly string[];
  /** The master group's name (`sentinel monitor NAME …`). */
  name: string;
  /** Password of the Redis master and replicas (AUTH), if any. */
  password?: string | undefined;
  /** Password of the sentinels themselves, if any. */
  sentinelPassword?: string | undefined;
}

/** Connections created here that have been ready at least once. */
const everReady = new WeakSet<RedisClient>();

/**
 * A Redis connection set up for a realtime system rather than a batch job:
 * - every command has a timeout (`commandTimeout`), so a stalled Redis (SIGSTOP, a dead network
 *   path) gives an error within a bounded time instead of a hang;
 * - no offline queue: while Redis is unreachable commands fail at once instead of piling up;
 * - commands in flight when the connection drops fail (`maxRetriesPerRequest: 0`) and are never
 *   sent again (`autoResendUnfulfilledCommands: false`): a PUBLISH or a script must never run
 *   twice because a reply was lost;
 * - no automatic resubscription: a subscriber re-establishes (and confirms) its subscriptions
 *   itself on 'ready' (see RedisBroker).
 */
export function createRedisConnection(url: string | SentinelTarget, options: RedisConnectionOptions = {}): Redis {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const settings: RedisOptions = {
    lazyConnect: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    autoResubscribe: false,
    enableOfflineQueue: false,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    ...options.security,
    ...(options.autoPipelining ? { enableAutoPipelining: true } : {}),
  };
  const conn = typeof url === 'string' ? new Redis(url, settings) : new Redis({ ...settings, ...sentinelSettings(url) });
  const name = options.name ?? 'redis';
  trackReady(conn);
  conn.on('error', (err: Error) => options.logger?.warn({ err: err.message, connection: name }, 'redis connection error'));
  return conn;
}

function sentinelSettings(target: SentinelTarget): RedisOptions {
  return {
    sentinels: target.sentinels.map(hostPort),
    name: target.name,
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
    // A failed-over master is found again by asking the sentinels on every reconnect.
    sentinelRetryStrategy: (times: number) => Math.min(100 * times, 2_000),
  };
}

/** `host:port` (validated by the options) as ioredis wants it. */
export function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(address.slice(at + 1)) };
}

/** Marks a client that became ready, for `firstReady`. */
export function trackReady(conn: RedisClient): void {
  conn.on('ready', () => everReady.add(conn));
}

/**
 * Waits (at most `timeoutMs`) for a connection that has never been ready yet, so commands issued
 * at startup do not fail just because the first connect is still under way. A connection that
 * was ready once and is not now is not waited for: its commands fail at once.
 */
export async function firstReady(conn: RedisClient, timeoutMs: number): Promise<void> {
  if (conn.status === 'ready') {
    everReady.add(conn);
    return;
  }
  if (everReady.has(conn)) return;
  if (conn.status === 'end') throw new Error('connection is closed');
  let onReady: (() => void) | undefined;
  try {
    await withTimeout(
      new Promise<void>((resolve) => {
        onReady = resolve;
        conn.once('ready', onReady);
      }),
      timeoutMs,
      'no connection to redis yet',
    );
  } finally {
    if (onReady) conn.off('ready', onReady);
  }
}

/** Runs a command on `conn`; any failure (unreachable, timeout, error reply) becomes HubError 114. */
export function runRedis<T>(conn: RedisClient, timeoutMs: number, what: string, fn: () => Promise<T>): Promise<T> {
  // Connected: the command is issued before this returns, so calls made one after another reach
  // Redis in that order (and auto-pipelining can put one turn's commands in one write).
  if (conn.status === 'ready') {
    everReady.add(conn);
    try {
      return withTimeout(fn(), timeoutMs + 100, 'command timed out').catch((err: unknown) => {
        throw toHubError(err, what);
      });
    } catch (err) {
      return Promise.reject(toHubError(err, what));
    }
  }
  return runWhenReady(conn, timeoutMs, what, fn);
}

async function runWhenReady<T>(conn: RedisClient, timeoutMs: number, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    await firstReady(conn, timeoutMs);
    // A cluster client queues commands while it is not ready (see createRedisCluster): fail at once instead.
    if (conn.isCluster && conn.status !== 'ready') throw new Error(`cluster is ${conn.status}`);
    return await withTimeout(fn(), timeoutMs + 100, 'command timed out');
  } catch (err) {
    throw toHubError(err, what);
  }
}

/** Maps anything ioredis throws to the temporary error clients retry on. */
export function toHubError(err: unknown, what: string): HubError {
  if (err instanceof HubError) return err;
  return new HubError(114, `${what} unavailable: ${err instanceof Error ? err.message : String(err)}`);
}

/** Closes a connection within `timeoutMs` whatever Redis does: QUIT, then a hard disconnect. */
export async function closeRedis(conn: RedisClient, timeoutMs: number): Promise<void> {
  if (conn.status !== 'end') {
    await withTimeout(conn.quit(), timeoutMs, 'quit timed out').catch(() => undefined);
  }
  conn.disconnect();
}
