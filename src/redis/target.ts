import type { SentinelTarget } from './connection.js';

/** Which Redis a hub runs on: one URL, a master found through Sentinel, or a cluster. */
export type RedisTarget = { kind: 'url'; url: string } | { kind: 'sentinel'; sentinel: SentinelTarget } | { kind: 'cluster'; seeds: readonly string[] };

/** The Redis the options name (they allow at most one of the three), or undefined: no Redis. */
export function redisTargetOf(o: {
  redisUrl: string | null;
  redisCluster: readonly string[] | null;
  redisSentinel: SentinelTarget | null;
}): RedisTarget | undefined {
  if (o.redisUrl !== null) return { kind: 'url', url: o.redisUrl };
  if (o.redisCluster !== null) return { kind: 'cluster', seeds: o.redisCluster };
  if (o.redisSentinel !== null) return { kind: 'sentinel', sentinel: o.redisSentinel };
  return undefined;
}
