import type { PerServer, ThroughputResult } from '../results.js';
import { errorText, SERVER_LABEL, type RunContext } from './context.js';
import { measureThroughput, openPublisher, openSubscribers } from './measure.js';
import { withServers } from './servers.js';

/**
 * Scenario 1, fan-out: `fanoutSubs` subscribers of one channel, 130-byte messages, the
 * publisher (a client of the same server) keeping each of `fanoutInFlight` messages in flight.
 * One server process and one set of connections serve every window.
 */
export async function runFanout(ctx: RunContext): Promise<Record<string, PerServer<ThroughputResult>>> {
  const out: Record<string, PerServer<ThroughputResult>> = {};
  for (const w of ctx.cfg.fanoutInFlight) out[w] = {};
  for (const kind of ctx.servers) {
    const label = SERVER_LABEL[kind];
    try {
      await withServers(ctx, kind, 1, false, async ([server]) => {
        ctx.progress.step(`fan-out · ${label} · opening ${ctx.cfg.fanoutSubs} subscribers`);
        await openSubscribers(ctx, {
          target: server!.target,
          count: ctx.cfg.fanoutSubs,
          channels: ['bench'],
          perConn: 1,
          userPrefix: 'f',
          sampleEvery: ctx.cfg.sampleEvery,
          concurrency: ctx.cfg.openConcurrency,
        });
        await openPublisher(ctx, server!, server!, ['bench']);
        for (const [i, w] of ctx.cfg.fanoutInFlight.entries()) {
          ctx.progress.step(`fan-out · ${label} · in-flight ${w} · measuring`);
          out[w]![kind] = await measureThroughput(ctx, [server!], w, { last: i === ctx.cfg.fanoutInFlight.length - 1 });
        }
      });
    } catch (err) {
      ctx.notes.push(`fan-out ${label}: failed: ${errorText(err)}`);
      for (const w of ctx.cfg.fanoutInFlight) out[w]![kind] ??= null;
    }
  }
  return out;
}
