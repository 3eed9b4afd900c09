import { CROSS_SERVERS } from '../config.js';
import type { PerServer, ThroughputResult } from '../results.js';
import { errorText, SERVER_LABEL, type RunContext } from './context.js';
import { measureWindows, openLoad } from './measure.js';
import { withServers } from './servers.js';

/**
 * Scenario 5, cross-node: two processes of a kind joined through Redis; the subscribers (and
 * the sentinel) on node A, the publisher on node B, so every message crosses Redis.
 */
export async function runCrossNode(ctx: RunContext): Promise<Record<string, PerServer<ThroughputResult>>> {
  const out: Record<string, PerServer<ThroughputResult>> = {};
  for (const w of ctx.cfg.crossInFlight) out[w] = {};
  const kinds = CROSS_SERVERS.filter((k) => ctx.servers.includes(k));
  if (!ctx.redisUrl) {
    ctx.notes.push('cross-node: Redis not reachable at 127.0.0.1:6379; skipped');
    for (const w of ctx.cfg.crossInFlight) for (const k of kinds) out[w]![k] = null;
    return out;
  }
  for (const kind of kinds) {
    const label = SERVER_LABEL[kind];
    try {
      await withServers(ctx, kind, 2, true, async ([a, b]) => {
        const open = async (agents: number) => {
          ctx.progress.step(`cross-node · ${label} · opening ${ctx.cfg.crossSubs} subscribers on node A`);
          await openLoad(
            ctx,
            { subNode: a!, pubNode: b!, count: ctx.cfg.crossSubs, channels: ['bench'], perConn: 1, userPrefix: 'x' },
            agents,
          );
          ctx.progress.step(`cross-node · ${label} · measuring`);
        };
        await measureWindows(ctx, [a!, b!], ctx.cfg.crossInFlight, open, (w, r) => {
          out[w]![kind] = r;
        });
      });
    } catch (err) {
      const msg = errorText(err);
      if (kind.startsWith('switchboard') && /OptionsError|redisUrl/.test(msg)) {
        ctx.notes.push('cross-node Switchboard: Switchboard Redis broker not available yet');
      } else ctx.notes.push(`cross-node ${label}: failed: ${msg}`);
      for (const w of ctx.cfg.crossInFlight) out[w]![kind] ??= null;
    }
  }
  return out;
}
