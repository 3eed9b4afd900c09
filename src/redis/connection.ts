import { withTimeout } from '../limits/timeout.js';
import { Redis, type RedisOptions } from 'ioredis';
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
}

/** Connections created here that have been ready at least once. */
const everReady = new WeakSet<Redis>();

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
export function createRedisConnection(url: string, options: RedisConnectionOptions = {}): Redis {
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
  };
  const conn = new Redis(url, settings);
  const name = options.name ?? 'redis';
  conn.on('ready', () => everReady.add(conn));
  conn.on('error', (err: Error) => options.logger?.warn({ err: err.message, connection: name }, 'redis connection error'));
  return conn;
}

/**
 * Waits (at most `timeoutMs`) for a connection that has never been ready yet, so commands issued
 * at startup do not fail just because the first connect is still under way. A connection that
 * was ready once and is not now is not waited for: its commands fail at once.
 */
export async function firstReady(conn: Redis, timeoutMs: number): Promise<void> {
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
export async function runRedis<T>(conn: Redis, timeoutMs: number, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    await firstReady(conn, timeoutMs);
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
export async function closeRedis(conn: Redis, timeoutMs: number): Promise<void> {
  if (conn.status !== 'end') {
    await withTimeout(conn.quit(), timeoutMs, 'quit timed out').catch(() => undefined);
  }
  conn.disconnect();
}
