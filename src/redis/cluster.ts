import { Cluster } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, hostPort, trackReady, type RedisConnectionOptions } from './connection.js';

/** How often the client re-reads the slot map, so a promoted replica is found without a MOVED. */
export const CLUSTER_SLOTS_REFRESH_MS = 1_000;

/**
 * A Redis Cluster client set up like `createRedisConnection` (see there): every command bounded
 * in time, nothing queued while the cluster is unreachable, nothing sent twice. The one difference a cluster needs: a command
 * answered MOVED, ASK, TRYAGAIN or CLUSTERDOWN was not run, so the client follows the redirect;
 * a command whose connection closed (`retryDelayOnFailover: 0`) may have run and is never
 * re-sent — it fails, and the caller gets a temporary error (114).
 *
 * Every key a multi-key command or script touches carries the same hash tag (`{channel}`), so
 * each runs on the one shard that owns the tag.
 */
export function createRedisCluster(seeds: readonly string[], options: RedisConnectionOptions = {}): Cluster {
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
  const cluster = new Cluster(seeds.map(hostPort), {
    // Only so that a command may go to a node connection still connecting (ioredis refuses that
    // without it); `runRedis` never sends a command while the cluster itself is not ready, so
    // nothing waits in this queue.
    enableOfflineQueue: true,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshInterval: CLUSTER_SLOTS_REFRESH_MS,
    slotsRefreshTimeout: Math.max(500, Math.min(commandTimeoutMs, 2_000)),
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2_000),
    // With TLS a seed given by host name is connected to by that name, not first resolved to an
    // IP address, so that the name checked in the node's certificate is the one configured.
    ...(options.security?.tls ? { dnsLookup: (address: string, done: (err: null, address: string) => void) => done(null, address) } : {}),
    redisOptions: {
      ...options.security,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 1_000),
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
    },
  });
  const name = options.name ?? 'redis-cluster';
  trackReady(cluster);
  cluster.on('error', (err: Error & { lastNodeError?: Error }) =>
    // "Failed to refresh slots cache" says nothing; the last node's error says why (WRONGPASS, a certificate, a refused connection).
    options.logger?.warn({ err: err.message, cause: err.lastNodeError?.message, connection: name }, 'redis cluster error'),
  );
  return cluster;
}

/** The slot (0-16383) Redis Cluster puts a key or shard channel in. */
export function slotOf(key: string): number {
  return calculateSlot(key);
}

/** The `host:port` of the master serving a slot, as the client last learned it (undefined before). */
export function masterOf(cluster: Cluster, slot: number): string | undefined {
  return cluster.slots[slot]?.[0];
}
