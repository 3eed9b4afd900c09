import { C18K_SWITCHBOARDS } from '../config.js';
import type { PublisherStats } from '../loadgen/publisher.js';
import { machineTicks } from '../proc/cpu.js';
import { eluBetween, readElu } from '../proc/elu.js';
import type { C18kResult, PerServer } from '../results.js';
import type { ServerKind } from '../servers/types.js';
import { errorText, SERVER_LABEL, sleep, type RunContext } from './context.js';
import { settledStats } from './idle-memory.js';
import { openPublisher, openSubscribers, round } from './measure.js';
import { withServers, type ServerHandle } from './servers.js';

const CHANNEL = 'c18k';

/** Source address of agent i: 127.0.0.11, .12, … — each has the kernel's whole ephemeral port range to itself. */
export function sourceAddress(agent: number): string {
  return `127.0.0.${11 + agent}`;
}

/** The servers the scenario runs: one Switchboard (SQLite history unless --servers says otherwise) and the coalescing ws reference. */
export function c18kServers(selected: readonly ServerKind[]): ServerKind[] {
  const sb = C18K_SWITCHBOARDS.find((k) => selected.includes(k));
  return [...(sb ? [sb] : []), ...(selected.includes('ws-coalesce') ? (['ws-coalesce'] as const) : [])];
}

/**
 * Scenario 6, 18k connections: `c18kConns` subscribers of one channel on one server node,
 * opened by `c18kAgents` load-generator processes (the open-files limit is 20,000 per process),
 * each from its own 127.0.0.x source address; the publisher sends one broadcast every
 * `c18kIntervalMs`. Every connection samples latency. Reported: p50/p99/max publish-to-deliver
 * over all deliveries of the window, and the server's settled RSS growth per connection.
 */
export async function runC18k(ctx: RunContext): Promise<PerServer<C18kResult>> {
  const out: PerServer<C18kResult> = {};
  for (const kind of c18kServers(ctx.servers)) {
    const label = SERVER_LABEL[kind];
    try {
      await withServers(ctx, kind, 1, false, async ([server]) => {
        out[kind] = await measureC18k(ctx, server!, label);
      });
    } catch (err) {
      ctx.notes.push(`18k connections ${label}: failed: ${errorText(err)}`);
      out[kind] ??= null;
    }
  }
  return out;
}

/** Waits (at most `maxMs`) until the subscribers' delivery count stops growing for half a second. */
async function drained(ctx: RunContext, maxMs: number): Promise<void> {
  const until = Date.now() + maxMs;
  let last = -1;
  for (;;) {
    const deliveries = await ctx.subs.delivered();
    if (deliveries === last || Date.now() > until) return;
    last = deliveries;
    await sleep(500);
  }
}

async function measureC18k(ctx: RunContext, server: ServerHandle, label: string): Promise<C18kResult> {
  const { c18kConns: n, c18kAgents: agents, c18kIntervalMs: interval, c18kWarmup, c18kBroadcasts } = ctx.cfg;
  const before = await settledStats(server);
  ctx.progress.step(`18k connections · ${label} · opening ${n} subscribers from ${agents} agents`);
  const opened = await openSubscribers(
    ctx,
    {
      target: server.target,
      count: n,
      channels: [CHANNEL],
      perConn: 1,
      userPrefix: 'k',
      sampleEvery: 1,
      concurrency: ctx.cfg.openConcurrency,
    },
    300_000,
    { agents, localAddresses: (i) => [sourceAddress(i)] },
  );
  await openPublisher(ctx, server, server, [CHANNEL]);
  ctx.progress.step(`18k connections · ${label} · one broadcast every ${interval} ms · measuring`);
  await ctx.pub.call('pubPaced', { intervalMs: interval });
  try {
    // Start the window just after a broadcast's deliveries, so it holds whole broadcasts.
    await sleep(c18kWarmup * interval - interval / 2);
    const elu0P = Promise.all([readElu(server.child), ctx.subs.elus()]);
    const m0 = machineTicks();
    const cpu0 = server.child.cpuSeconds();
    const ours0 = ctx.subs.cpuSeconds() + ctx.pub.cpuSeconds();
    const pub0 = await ctx.pub.call<PublisherStats>('pubStats');
    await ctx.subs.reset();
    await sleep(c18kBroadcasts * interval);
    const repP = ctx.subs.report();
    const elu1P = Promise.all([readElu(server.child), ctx.subs.elus()]);
    const m1 = machineTicks();
    const cpuS = server.child.cpuSeconds() - cpu0;
    const oursS = ctx.subs.cpuSeconds() + ctx.pub.cpuSeconds() - ours0 + cpuS;
    const [rep, pub1, [srv0, subs0], [srv1, subs1]] = await Promise.all([repP, ctx.pub.call<PublisherStats>('pubStats'), elu0P, elu1P]);
    const windowS = rep.elapsedMs / 1000;
    const broadcasts = pub1.sent - pub0.sent;
    await ctx.pub.call('pubStop', { drainMs: 0 });
    // A server that fell behind still writes its backlog: let it finish before collecting garbage.
    await drained(ctx, 30_000);
    const after = await settledStats(server, 120_000);
    const allS = (m1.busy - m0.busy - (m1.softirq - m0.softirq)) / 100;
    const perBroadcast = (ms: number) => (broadcasts > 0 ? round(ms / broadcasts, 1) : 0);
    const serverBusy = perBroadcast(srv1.active - srv0.active);
    const subsBusy = perBroadcast(Math.max(...subs1.map((e, i) => e.active - subs0[i]!.active)));
    return {
      connections: opened.opened,
      agents,
      sourceAddresses: Array.from({ length: agents }, (_, i) => sourceAddress(i)),
      openS: round(opened.elapsedMs / 1000, 1),
      broadcasts,
      deliveredPct: broadcasts > 0 ? round((rep.deliveries / (broadcasts * opened.opened)) * 100, 1) : 0,
      p50Ms: rep.latency ? round(rep.latency.p50, 1) : null,
      p99Ms: rep.latency ? round(rep.latency.p99, 1) : null,
      maxMs: rep.latency ? round(rep.latency.max, 1) : null,
      latencySamples: rep.latency?.samples ?? 0,
      rssMb: round(after.rss / 2 ** 20, 1),
      kbPerConn: round((after.rss - before.rss) / opened.opened / 1024, 2),
      serverCpuPct: round((cpuS / windowS) * 100, 0),
      nodeElu: round(eluBetween(srv0, srv1), 2),
      subsElu: round(Math.max(...subs1.map((e, i) => eluBetween(subs0[i]!, e))), 2),
      serverBusyMsPerBroadcast: serverBusy,
      subsBusyMsPerBroadcast: subsBusy,
      pacedBy: serverBusy >= subsBusy ? 'server' : 'load generator',
      bytesPerMsg: rep.deliveries > 0 ? Math.round(rep.bytes / rep.deliveries) : 0,
      foreignCpuPct: round(Math.max(0, (allS - oursS) / windowS) * 100, 0),
      closed: rep.closed,
    };
  } catch (err) {
    await ctx.pub.call('pubStop', { drainMs: 0 }).catch(() => undefined);
    throw err;
  }
}
