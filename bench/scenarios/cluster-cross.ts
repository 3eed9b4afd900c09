import { OwnRedisCluster } from '../../test/support/redis-cluster.js';
import type { PerServer, ThroughputResult } from '../results.js';
import { errorText, type RunContext } from './context.js';
import { measureThroughput, openPublisher, openSubscribers } from './measure.js';
import { withServers } from './servers.js';

/**
 * Cross-node through a Redis Cluster: the cross-node scenario (subscribers and sentinel on node
 * A, the publisher on node B) with the two Switchboard nodes on a cluster of 3 masters started
 * for the run (no replicas, no persistence), delivery by sharded pub/sub. Beside the single-Redis
 * figure of the same run; only Switchboard has a cluster mode here.
 */
export async function runClusterCross(ctx: RunContext): Promise<Record<string, PerServer<ThroughputResult>>> {
  const out: Record<string, PerServer<ThroughputResult>> = {};
  for (const w of ctx.cfg.crossInFlight) out[w] = {};
  if (!ctx.servers.includes('switchboard')) return out;
  let cluster: OwnRedisCluster | undefined;
  try {
    ctx.progress.step('cross-node · Redis Cluster · starting 3 masters');
    cluster = await OwnRedisCluster.start({ masters: 3, replicas: 0 });
    const seeds = cluster.seeds;
    await withServers(
      ctx,
      'switchboard',
      2,
      false,
      async ([a, b]) => {
        ctx.progress.step(`cross-node · Redis Cluster · opening ${ctx.cfg.crossSubs} subscribers on node A`);
        await openSubscribers(ctx, {
          target: a!.target,
          count: ctx.cfg.crossSubs,
          channels: ['bench'],
          perConn: 1,
          userPrefix: 'x',
          sampleEvery: ctx.cfg.sampleEvery,
          concurrency: ctx.cfg.openConcurrency,
        });
        await openPublisher(ctx, b!, a!, ['bench']);
        for (const [i, w] of ctx.cfg.crossInFlight.entries()) {
          ctx.progress.step(`cross-node · Redis Cluster · in-flight ${w} · measuring`);
          out[w]!.switchboard = await measureThroughput(ctx, [a!, b!], w, { last: i === ctx.cfg.crossInFlight.length - 1 });
        }
      },
      { redisCluster: seeds, redisPrefix: `bench-${ctx.runId}` },
    );
  } catch (err) {
    ctx.notes.push(`cross-node through Redis Cluster: failed: ${errorText(err)}`);
    for (const w of ctx.cfg.crossInFlight) out[w]!.switchboard ??= null;
  } finally {
    await cluster?.stop();
  }
  return out;
}
