import type { PerServer, ThroughputResult } from '../results.js';
import { errorText, SERVER_LABEL, type RunContext } from './context.js';
import { measureWindows, openLoad } from './measure.js';
import { withServers } from './servers.js';

/**
 * Scenario 1, fan-out: `fanoutSubs` subscribers of one channel, 130-byte messages, the
 * publisher (a client of the same server) keeping each of `fanoutInFlight` messages in flight.
 * One server process and one set of connections serve every window (unless a busy subscriber
 * agent makes the load split, see measureWindows). Every server kind runs it, the history-on
 * Switchboards included.
 */
export async function runFanout(ctx: RunContext): Promise<Record<string, PerServer<ThroughputResult>>> {
  const out: Record<string, PerServer<ThroughputResult>> = {};
  for (const w of ctx.cfg.fanoutInFlight) out[w] = {};
  for (const kind of ctx.servers) {
    const label = SERVER_LABEL[kind];
    try {
      await withServers(ctx, kind, 1, false, async ([server]) => {
        const open = async (agents: number) => {
          ctx.progress.step(`fan-out · ${label} · opening ${ctx.cfg.fanoutSubs} subscribers${agents > 1 ? ` over ${agents} agents` : ''}`);
          await openLoad(
            ctx,
            { subNode: server!, pubNode: server!, count: ctx.cfg.fanoutSubs, channels: ['bench'], perConn: 1, userPrefix: 'f' },
            agents,
          );
          ctx.progress.step(`fan-out · ${label} · measuring`);
        };
        await measureWindows(ctx, [server!], ctx.cfg.fanoutInFlight, open, (w, r) => {
          out[w]![kind] = r;
        });
      });
    } catch (err) {
      ctx.notes.push(`fan-out ${label}: failed: ${errorText(err)}`);
      for (const w of ctx.cfg.fanoutInFlight) out[w]![kind] ??= null;
    }
  }
  return out;
}
