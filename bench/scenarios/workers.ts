import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Target } from '../loadgen/client.js';
import type { PublisherStats } from '../loadgen/publisher.js';
import { REPO_ROOT } from '../proc/child.js';
import { BENCH_HUB_OPTIONS } from '../servers/switchboard.js';
import { builtPath } from '../servers/built.js';
import { cpuSeconds, machineTicks } from '../proc/cpu.js';
import type { WorkersResult } from '../results.js';
import { errorText, sleep, type RunContext } from './context.js';
import { openSubscribers, round } from './measure.js';

/** A `switchboard serve --workers N` process tree. */
interface Served {
  child: ChildProcess;
  target: Target;
  /** The primary and its workers (the primary alone with one worker). */
  pids: () => number[];
}

/**
 * `switchboard serve --workers N` on this machine, 1 against 2 workers, both on the local Redis
 * (the workers coordinate through it): fan-out (one serve process; subscribers, publisher and
 * sentinel on its one port, spread over its workers by node:cluster) and cross-node (two serve
 * processes; subscribers on A, publisher on B). The server is the one `switchboard serve` runs,
 * configured like the bench's Switchboard (history off, limits opened for one load generator).
 * Measured from outside: CPU from /proc of every process of the tree, no event-loop figures.
 */
export async function runWorkers(ctx: RunContext): Promise<Record<string, WorkersResult | null>> {
  const out: Record<string, WorkersResult | null> = {};
  if (!ctx.servers.includes('switchboard')) return out;
  if (!ctx.redisUrl) {
    ctx.notes.push('workers: Redis not reachable at 127.0.0.1:6379 (workers need it); skipped');
    return out;
  }
  const inFlight = ctx.cfg.crossInFlight[0]!;
  for (const workers of [1, 2]) {
    for (const cross of [false, true]) {
      const label = `${cross ? 'Cross-node, 2 nodes' : 'Fan-out, 1 node'} × ${workers} worker${workers > 1 ? 's' : ''}`;
      const dir = mkdtempSync(join(tmpdir(), 'sb-bench-workers-'));
      const served: Served[] = [];
      try {
        ctx.progress.step(`workers · ${label} · starting`);
        const prefix = `bench-${ctx.runId}-w${workers}${cross ? 'x' : 'f'}`;
        for (let i = 0; i < (cross ? 2 : 1); i++) served.push(await serve(ctx, dir, workers, prefix));
        const a = served[0]!;
        const b = served.at(-1)!;
        ctx.progress.step(`workers · ${label} · opening ${ctx.cfg.crossSubs} subscribers`);
        await openSubscribers(ctx, {
          target: a.target,
          count: ctx.cfg.crossSubs,
          channels: ['bench'],
          perConn: 1,
          userPrefix: 'w',
          sampleEvery: ctx.cfg.sampleEvery,
          concurrency: ctx.cfg.openConcurrency,
        });
        await ctx.pub.call('pubOpen', { target: b.target, sentinel: a.target, channels: ['bench'], secret: ctx.secret, timeoutMs: 20_000 }, 30_000);
        ctx.progress.step(`workers · ${label} · measuring`);
        out[label] = await measure(ctx, served, workers, inFlight);
      } catch (err) {
        ctx.notes.push(`workers ${label}: failed: ${errorText(err)}`);
        out[label] = null;
      } finally {
        await Promise.allSettled([ctx.pub.call('pubClose'), ctx.subs.closeAll()]);
        for (const s of served) for (const pid of s.pids().reverse()) killQuietly(pid);
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  return out;
}

async function serve(ctx: RunContext, dir: string, workers: number, prefix: string): Promise<Served> {
  const config = join(dir, `config-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      auth: { secret: ctx.secret },
      apiKey: 'bench-workers-api-key-0123',
      redisPrefix: prefix,
      ...BENCH_HUB_OPTIONS,
    }),
  );
  const args = [builtPath('cli/main.js'), 'serve', '--workers', String(workers), '--memory', '--port', '0', '--host', '127.0.0.1', '--redis', ctx.redisUrl!, '--config', config];
  const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'error' } });
  let text = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  const deadline = Date.now() + 60_000;
  while (!/HTTP API/.test(text)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`serve --workers ${workers} did not start: ${err.trim().slice(-300)}`);
    await sleep(50);
  }
  const port = Number(/WebSocket\s+ws:\/\/127\.0\.0\.1:(\d+)\//.exec(text)![1]);
  const pids = (): number[] => [child.pid!, ...childPids(child.pid!)];
  return { child, target: { host: '127.0.0.1', port, dialect: 'switchboard' }, pids };
}

async function measure(ctx: RunContext, served: Served[], workers: number, inFlight: number): Promise<WorkersResult> {
  const pids = served.flatMap((s) => s.pids());
  const cpu = (): number => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) || 0), 0);
  await ctx.pub.call('pubStart', { inFlight });
  try {
    await sleep(ctx.cfg.warmupMs);
    const m0 = machineTicks();
    const cpu0 = cpu();
    await ctx.subs.reset();
    await sleep(ctx.cfg.windowMs);
    const reportP = ctx.subs.report();
    const m1 = machineTicks();
    const serverCpuS = cpu() - cpu0;
    const rep = await reportP;
    const stats = await ctx.pub.call<PublisherStats>('pubStop', { drainMs: 0 });
    const windowS = rep.elapsedMs / 1000;
    return {
      workers,
      deliveriesPerSec: Math.round(rep.deliveries / windowS),
      p50Ms: rep.latency ? round(rep.latency.p50, 1) : null,
      p99Ms: rep.latency ? round(rep.latency.p99, 1) : null,
      windowS: round(windowS, 2),
      serverCpuS: round(serverCpuS, 2),
      serverNsPerDelivery: rep.deliveries > 0 ? Math.round((serverCpuS / rep.deliveries) * 1e9) : 0,
      machineBusyPct: round(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100, 0),
      connections: rep.connections,
      published: stats.sent,
      errors: stats.errors,
    };
  } catch (err) {
    await ctx.pub.call('pubStop', { drainMs: 0 }).catch(() => undefined);
    throw err;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'latin1').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
