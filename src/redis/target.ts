import { readFileSync } from 'node:fs';
import type { RedisSecurity, SentinelTarget } from './connection.js';

/** Which Redis a hub runs on: one URL, a master found through Sentinel, or a cluster. */
export type RedisTarget =
  | { kind: 'url'; url: string }
  | { kind: 'sentinel'; sentinel: SentinelTarget }
  | { kind: 'cluster'; seeds: readonly string[]; security?: RedisSecurity };

/** The `redisCluster` option as validated (src/config/redis-cluster-options.ts). */
export interface ClusterTargetOptions {
  seeds: readonly string[];
  username: string | null;
  password: string | null;
  tls: { caFile: string | null; serverName: string | null; rejectUnauthorized: boolean } | null;
}

/** The Redis the options name (they allow at most one of the three), or undefined: no Redis. */
export function redisTargetOf(o: {
  redisUrl: string | null;
  redisCluster: ClusterTargetOptions | null;
  redisSentinel: SentinelTarget | null;
}): RedisTarget | undefined {
  if (o.redisUrl !== null) return { kind: 'url', url: o.redisUrl };
  if (o.redisCluster !== null) {
    const security = clusterSecurity(o.redisCluster);
    return { kind: 'cluster', seeds: o.redisCluster.seeds, ...(security ? { security } : {}) };
  }
  if (o.redisSentinel !== null) return { kind: 'sentinel', sentinel: o.redisSentinel };
  return undefined;
}

/** Credentials and TLS for every node of a cluster (the CA file read when the target is made), or undefined: none. */
function clusterSecurity(c: ClusterTargetOptions): RedisSecurity | undefined {
  if (c.username === null && c.password === null && c.tls === null) return undefined;
  return {
    ...(c.username !== null ? { username: c.username } : {}),
    ...(c.password !== null ? { password: c.password } : {}),
    ...(c.tls !== null
      ? {
          tls: {
            ...(c.tls.caFile !== null ? { ca: readFileSync(c.tls.caFile) } : {}),
            ...(c.tls.serverName !== null ? { servername: c.tls.serverName } : {}),
            rejectUnauthorized: c.tls.rejectUnauthorized,
          },
        }
      : {}),
  };
}
