import type { PoolReport, OpenResult, OpenSpec } from '../loadgen/subscribers.js';
import type { PublisherStats } from '../loadgen/publisher.js';
import { machineTicks, type MachineTicks } from '../proc/cpu.js';
import { eluBetween, readElu } from '../proc/elu.js';
import type { ThroughputResult } from '../results.js';
import { sleep, type RunContext } from './context.js';
import type { ServerHandle } from './servers.js';

/** Opens subscriber connections in the subscriber agent; throws if any failed. */
export async function openSubscribers(
  ctx: RunContext,
  spec: Omit<OpenSpec, 'secret' | 'timeoutMs'>,
  timeoutMs = 60_000,
): Promise<OpenResult> {
  const res = await ctx.subs.call<OpenResult>('open', { ...spec, secret: ctx.secret, timeoutMs }, timeoutMs + 10_000);
  if (res.failed > 0) throw new Error(`${res.failed} of ${spec.count} connections failed: ${res.firstError ?? '?'}`);
  return res;
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
    const elu0P = Promise.all([...servers.map((s) => readElu(s.child)), readElu(ctx.subs)]);
    const m0 = machineTicks();
    const cpu0 = servers.map((s) => s.child.cpuSeconds());
    const subs0 = ctx.subs.cpuSeconds();
    const pub0 = ctx.pub.cpuSeconds();
    const self0 = process.cpuUsage();
    await ctx.subs.call('reset');
    await sleep(windowMs);
    const reportP = ctx.subs.call<PoolReport>('report');
    const elu1P = Promise.all([...servers.map((s) => readElu(s.child)), readElu(ctx.subs)]);
    // CPU is read at the same moment the window closes, not after the (possibly delayed) replies.
    const m1 = machineTicks();
    const nodeCpuS = servers.map((s, i) => round(s.child.cpuSeconds() - cpu0[i]!, 2));
    const subsCpuS = ctx.subs.cpuSeconds() - subs0;
    const pubCpuS = ctx.pub.cpuSeconds() - pub0;
    const self1 = process.cpuUsage(self0);
    const ourCpuS = nodeCpuS.reduce((a, b) => a + b, 0) + subsCpuS + pubCpuS + (self1.user + self1.system) / 1e6;
    const [rep, elu0, elu1] = await Promise.all([reportP, elu0P, elu1P]);
    const elu = elu1.map((e, i) => round(eluBetween(elu0[i]!, e), 2));
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
      nodeElu: elu.slice(0, servers.length),
      subsElu: elu[servers.length]!,
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

/** CPU seconds all processes spent outside softirq during the window (ticks are 1/100 s). */
function foreignCpuS(m0: MachineTicks, m1: MachineTicks): number {
  return (m1.busy - m0.busy - (m1.softirq - m0.softirq)) / 100;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
