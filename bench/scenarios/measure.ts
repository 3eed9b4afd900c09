import type { EventLoopUtilization } from 'node:perf_hooks';
import type { OpenResult, OpenSpec } from '../loadgen/subscribers.js';
import type { PublisherStats } from '../loadgen/publisher.js';
import { cpuSeconds, machineTicks, sharedRedisPid, type MachineTicks } from '../proc/cpu.js';
import { eluBetween, readElu } from '../proc/elu.js';
import type { PacedBy, ThroughputResult } from '../results.js';
import { sleep, type RunContext } from './context.js';
import type { FleetOpen } from './fleet.js';
import type { ServerHandle } from './servers.js';

/** An event loop busier than this share of a window was that window's bottleneck. */
const SERVER_BUSY = 0.9;

/** Opens subscriber connections in the subscriber agent(s); throws if any failed. */
export async function openSubscribers(
  ctx: RunContext,
  spec: Omit<OpenSpec, 'secret' | 'timeoutMs'>,
  timeoutMs = 60_000,
  fleet: FleetOpen = {},
): Promise<OpenResult> {
  const res = await ctx.subs.open({ ...spec, secret: ctx.secret, timeoutMs }, fleet);
  if (res.failed > 0) throw new Error(`${res.failed} of ${spec.count} connections failed: ${res.firstError ?? '?'}`);
  return res;
}

/**
 * Measures one window per in-flight value on the load `open(agents)` sets up (subscribers over
 * `agents` agents, then the publisher). A window whose subscriber agent was over the busy limit
 * while the machine had a core to spare is measured again with the subscribers split over two
 * agents (the later windows keep the split); a figure still limited is marked `loadgenLimited`.
 */
export async function measureWindows(
  ctx: RunContext,
  servers: ServerHandle[],
  inFlights: readonly number[],
  open: (agents: number) => Promise<void>,
  onWindow: (inFlight: number, r: ThroughputResult) => void,
): Promise<void> {
  const { subsBusyLimit, splitBelowMachineBusyPct } = ctx.cfg;
  let agents = 1;
  await open(agents);
  for (const [i, w] of inFlights.entries()) {
    const last = i === inFlights.length - 1;
    let r = await measureThroughput(ctx, servers, w, { last });
    if (agents === 1 && r.subsElu > subsBusyLimit && r.machineBusyPct < splitBelowMachineBusyPct) {
      ctx.progress.step(`subscriber agent ${Math.round(r.subsElu * 100)}% busy: splitting the subscribers over two agents`);
      await Promise.all([ctx.pub.call('pubClose'), ctx.subs.closeAll()]);
      agents = 2;
      await open(agents);
      const first = r;
      r = await measureThroughput(ctx, servers, w, { last });
      r.beforeSplit = { deliveriesPerSec: first.deliveriesPerSec, subsElu: first.subsElu };
    }
    onWindow(w, r);
  }
}

/** A publish/subscribe load: `count` subscribers on `subNode`, the publisher on `pubNode`. */
export interface Load {
  subNode: ServerHandle;
  pubNode: ServerHandle;
  count: number;
  channels: string[];
  perConn: number;
  userPrefix: string;
}

/** Opens a load's subscribers over `agents` agents, then its publisher and sentinel (on the subscribers' node). */
export async function openLoad(ctx: RunContext, load: Load, agents: number): Promise<void> {
  const { subNode, pubNode, count, channels, perConn, userPrefix } = load;
  const spec = {
    target: subNode.target,
    count,
    channels,
    perConn,
    userPrefix,
    sampleEvery: ctx.cfg.sampleEvery,
    concurrency: ctx.cfg.openConcurrency,
  };
  await openSubscribers(ctx, spec, 60_000, { agents });
  await openPublisher(ctx, pubNode, subNode, channels);
}

/** Opens the publisher (on `pubNode`) and its sentinel subscriber (on `sentinelNode`, subscribed after everyone). */
export async function openPublisher(ctx: RunContext, pubNode: ServerHandle, sentinelNode: ServerHandle, channels: string[]): Promise<void> {
  await ctx.pub.call(
    'pubOpen',
    { target: pubNode.target, sentinel: sentinelNode.target, channels, secret: ctx.secret, timeoutMs: 20_000 },
    30_000,
  );
}

/**
 * Publishes with `inFlight` messages outstanding: a warm-up, then one measurement window in
 * which the subscriber agent counts deliveries and samples latency, while CPU seconds of every
 * process are read from /proc at both ends of the window.
 */
export async function measureThroughput(
  ctx: RunContext,
  servers: ServerHandle[],
  inFlight: number,
  opts: { last: boolean },
): Promise<ThroughputResult> {
  const { warmupMs, windowMs } = ctx.cfg;
  await ctx.pub.call('pubStart', { inFlight });
  try {
    await sleep(warmupMs);
    // A saturated server answers IPC late (after its current burst); don't hold the window for it.
    const elu0P = Promise.all([...servers.map((s) => readElu(s.child)), ctx.subs.elus()]);
    const m0 = machineTicks();
    const cpu0 = servers.map((s) => s.child.cpuSeconds());
    const subs0 = ctx.subs.cpuSeconds();
    const pub0 = ctx.pub.cpuSeconds();
    const self0 = process.cpuUsage();
    const redis0 = cpuSeconds(sharedRedisPid());
    await ctx.subs.reset();
    await sleep(windowMs);
    const reportP = ctx.subs.report();
    const elu1P = Promise.all([...servers.map((s) => readElu(s.child)), ctx.subs.elus()]);
    // CPU is read at the same moment the window closes, not after the (possibly delayed) replies.
    const m1 = machineTicks();
    const nodeCpuS = servers.map((s, i) => round(s.child.cpuSeconds() - cpu0[i]!, 2));
    const subsCpuS = ctx.subs.cpuSeconds() - subs0;
    const pubCpuS = ctx.pub.cpuSeconds() - pub0;
    const self1 = process.cpuUsage(self0);
    // The shared Redis works for the servers that run on it (history, cross-node): not foreign.
    const redisCpuS = cpuSeconds(sharedRedisPid()) - redis0;
    const ourCpuS =
      nodeCpuS.reduce((a, b) => a + b, 0) +
      subsCpuS +
      pubCpuS +
      (self1.user + self1.system) / 1e6 +
      (Number.isFinite(redisCpuS) ? redisCpuS : 0);
    const [rep, elu0, elu1] = await Promise.all([reportP, elu0P, elu1P]);
    const nodeElu = servers.map((_, i) => round(eluBetween(elu0[i] as EventLoopUtilization, elu1[i] as EventLoopUtilization), 2));
    const subsEluEach = elu1[servers.length] as EventLoopUtilization[];
    const subsBase = elu0[servers.length] as EventLoopUtilization[];
    const subsElu = round(Math.max(...subsEluEach.map((e, i) => eluBetween(subsBase[i]!, e))), 2);
    // Between windows, let what is in flight arrive; after the last one, the teardown drops it.
    const stats = await ctx.pub.call<PublisherStats>('pubStop', { drainMs: opts.last ? 0 : 500 });
    const windowS = rep.elapsedMs / 1000;
    return {
      deliveriesPerSec: Math.round(rep.deliveries / windowS),
      p50Ms: rep.latency ? round(rep.latency.p50, 1) : null,
      p99Ms: rep.latency ? round(rep.latency.p99, 1) : null,
      maxMs: rep.latency ? round(rep.latency.max, 1) : null,
      latencySamples: rep.latency?.samples ?? 0,
      windowS: round(windowS, 2),
      serverCpuS: round(
        nodeCpuS.reduce((a, b) => a + b, 0),
        2,
      ),
      nodeCpuS,
      subsCpuS: round(subsCpuS, 2),
      pubCpuS: round(pubCpuS, 2),
      nodeElu,
      subsElu,
      subsAgents: subsEluEach.length,
      subsNsPerDelivery: rep.deliveries > 0 ? Math.round((subsCpuS / rep.deliveries) * 1e9) : 0,
      pacedBy: pacedBy(Math.max(...nodeElu), subsElu, ctx.cfg.subsBusyLimit),
      loadgenLimited: subsElu > ctx.cfg.subsBusyLimit,
      machineBusyPct: round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100, 0),
      machineSoftirqPct: round(((m1.softirq - m0.softirq) / (m1.total - m0.total)) * 100, 0),
      foreignCpuPct: round(Math.max(0, (foreignCpuS(m0, m1) - ourCpuS) / windowS) * 100, 0),
      msgsPerFrame: rep.frames > 0 ? round(rep.deliveries / rep.frames, 2) : 0,
      serverNsPerDelivery: rep.deliveries > 0 ? Math.round((nodeCpuS.reduce((a, b) => a + b, 0) / rep.deliveries) * 1e9) : 0,
      bytesPerMsg: rep.deliveries > 0 ? Math.round(rep.bytes / rep.deliveries) : 0,
      connections: rep.connections,
      published: stats.sent,
      stalls: stats.stalls,
      errors: stats.errors,
      closed: rep.closed,
    };
  } catch (err) {
    await ctx.pub.call('pubStop', { drainMs: 0 }).catch(() => undefined);
    throw err;
  }
}

/** Which event loop was over its busy limit in a window. */
export function pacedBy(serverElu: number, subsElu: number, subsLimit: number): PacedBy {
  const server = serverElu >= SERVER_BUSY;
  const subs = subsElu > subsLimit;
  return server && subs ? 'both' : server ? 'server' : subs ? 'load generator' : 'neither';
}

/** CPU seconds all processes spent outside softirq during the window (ticks are 1/100 s). */
function foreignCpuS(m0: MachineTicks, m1: MachineTicks): number {
  return (m1.busy - m0.busy - (m1.softirq - m0.softirq)) / 100;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
