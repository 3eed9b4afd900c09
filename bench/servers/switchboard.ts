import type { RunningServer, ServerOptions } from './types.js';
import { importHub } from './built.js';

/** Where a Switchboard server of the bench keeps its history. */
export type HistoryMode = 'off' | 'memory' | 'sqlite' | 'redis';

/**
 * Switchboard as a user would configure it for a broadcast workload: client publishing allowed,
 * and the per-IP, per-user and per-connection command and publish byte limits opened up,
 * because the load generator is one IP and one publisher. History is off (`off`: offsets off,
 * the baseline) or the default (100 publications per channel, 600 s) kept in memory, in SQLite
 * under `dataDir` (what `switchboard serve` runs), or in Redis (`redisUrl`). Everything else is
 * the default, including the 1 MiB per-connection queue and write coalescing. A broadcast does
 * not show its receivers who published (`publicationInfo: "none"`), as the ws peers do not: the
 * load generator speaks protocol v2, so a delivery carries the channel, offset and data only.
 */
/** The limits opened up, history off: also what `serve --workers` runs in the workers scenario. */
export const BENCH_HUB_OPTIONS = {
  defaultNamespace: { history: { size: 0 }, clientPublish: 'any', publicationInfo: 'none' },
  limits: {
    maxConnections: 1_000_000,
    maxConnectionsPerUser: 1_000_000,
    maxChannelsPerConnection: 1000,
    connectionRatePerIp: { perSecond: 1_000_000, burst: 1_000_000 },
    commandRate: { perSecond: 1_000_000, burst: 1_000_000 },
    // One publisher carries the whole load: its byte rates are opened up like its command rate.
    publishBytesRate: { perSecond: 1e12, burst: 1e12 },
    channelPublishBytesRate: { perSecond: 1e12, burst: 1e12 },
  },
} as const;

export async function start(o: ServerOptions, history: HistoryMode): Promise<RunningServer> {
  const { createHub } = await importHub();
  if (history === 'sqlite' && !o.dataDir) throw new Error('switchboard-sqlite needs a dataDir');
  if (history === 'redis' && !o.redisUrl) throw new Error('switchboard-redis needs Redis');
  const hub = createHub({
    auth: { secret: o.secret },
    ...BENCH_HUB_OPTIONS,
    ...(history === 'off' ? {} : { defaultNamespace: { clientPublish: 'any' as const, publicationInfo: 'none' as const } }),
    ...(history === 'sqlite' ? { dataDir: o.dataDir } : {}),
    ...(o.redisUrl ? { redisUrl: o.redisUrl, redisPrefix: o.redisPrefix ?? 'bench' } : {}),
    ...(o.redisCluster ? { redisCluster: o.redisCluster, redisPrefix: o.redisPrefix ?? 'bench' } : {}),
  });
  const { port } = await hub.listen(0, '127.0.0.1');
  return { port };
}
