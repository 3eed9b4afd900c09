import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { configFor, type BenchConfig, type Mode, type ScenarioName, ALL_SCENARIOS, ALL_SERVERS, QUICK_SKIPS } from './config.js';
import { Child, REPO_ROOT } from './proc/child.js';
import { machineTicks } from './proc/cpu.js';
import { redisReachable } from './redis-check.js';
import { deleteRunKeys } from './redis-cleanup.js';
import { Progress } from './report/progress.js';
import { summarize, type Summary } from './report/summary.js';
import { measurementWarnings, paceNotes } from './report/warnings.js';
import { renderTable } from './report/table.js';
import { writeResults, type WrittenFiles } from './report/write.js';
import type { BenchResults } from './results.js';
import { runC18k } from './scenarios/broadcast-18k.js';
import { errorText, type RunContext } from './scenarios/context.js';
import { SubscriberFleet } from './scenarios/fleet.js';
import { runConnections } from './scenarios/connections.js';
import { runCrossNode } from './scenarios/cross-node.js';
import { runClusterCross } from './scenarios/cluster-cross.js';
import { runWorkers } from './scenarios/workers.js';
import { renderCollab, runCollab } from './collab/run.js';
import { runFanout } from './scenarios/fanout.js';
import { runManyChannels } from './scenarios/many-channels.js';
import { runOutbox } from './scenarios/outbox.js';
import { runProxy } from './scenarios/proxy.js';
import { runCodec, runGame } from './game/scenarios.js';
import type { ServerKind } from './servers/types.js';

export interface RunOptions {
  mode: Mode;
  scenarios?: readonly ScenarioName[];
  servers?: readonly ServerKind[];
  /** Default: bench/results. */
  outDir?: string;
  progress?: boolean;
  /** Run the servers with --cpu-prof, profiles under <outDir>/profiles. */
  profile?: boolean;
  /** Settings that replace the mode's (tests force the load-generator split with these). */
  config?: Partial<BenchConfig>;
}

export interface RunOutput {
  results: BenchResults;
  summary: Summary;
  table: string;
  files: WrittenFiles;
}

/**
 * One benchmark run: starts the load-generator agents, runs the chosen scenarios against
 * every chosen server in turn (each server in its own process, started fresh per scenario),
 * and writes the JSON and the chart. Every child process is ended before it returns or throws.
 */
export async function runBench(opts: RunOptions): Promise<RunOutput> {
  const started = Date.now();
  const cfg = configFor(opts.mode, opts.config);
  const scenarios = new Set(opts.scenarios ?? ALL_SCENARIOS);
  const outDir = opts.outDir ?? join(REPO_ROOT, 'bench', 'results');
  const progress = new Progress(opts.progress ?? true);
  if (opts.profile) {
    // Profiles are large and local: keep them out of git.
    mkdirSync(join(outDir, 'profiles'), { recursive: true });
    writeFileSync(join(outDir, 'profiles', '.gitignore'), '*\n');
  }
  const subs = new SubscriberFleet();
  const pub = Child.spawn('loadgen-publisher', 'loadgen/agent.ts');
  const runId = randomBytes(4).toString('hex');
  const redisUrl = (await redisReachable()) ? 'redis://127.0.0.1:6379' : null;
  try {
    const idleBefore = await foreignLoadPct(1000, [...subs.children, pub]);
    const ctx: RunContext = {
      cfg,
      servers: opts.servers ?? ALL_SERVERS,
      secret: randomBytes(24).toString('hex'),
      runId,
      redisUrl,
      subs,
      pub,
      progress,
      notes: [],
      ...(opts.profile ? { cpuProfDir: join(outDir, 'profiles') } : {}),
    };
    const skipped = QUICK_SKIPS.filter((s) => !scenarios.has(s));
    if (cfg.mode === 'quick' && skipped.length > 0 && scenarios.size + skipped.length === ALL_SCENARIOS.length) {
      ctx.notes.push(`a quick run leaves out ${skipped.join(', ')}: run it with --only=${skipped.join(',')} (or run the full mode)`);
    }
    if (idleBefore > 20) {
      ctx.notes.push(`before the run, other processes kept ${idleBefore}% of a core busy: expect skewed figures`);
      progress.step(`warning: the machine is already ${idleBefore}% of a core busy`);
    }
    const results: BenchResults = {
      meta: {
        date: new Date().toISOString(),
        mode: cfg.mode,
        node: process.versions.node,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
        durationS: 0,
        config: cfg,
      },
      fanout: {},
      many: {},
      idle: {},
      connect: {},
      cross: {},
      c18k: {},
      notes: ctx.notes,
    };
    if (scenarios.has('fanout')) results.fanout = await runFanout(ctx);
    if (scenarios.has('many')) results.many = await runManyChannels(ctx);
    if (scenarios.has('idle') || scenarios.has('connect')) {
      const c = await runConnections(ctx, { idle: scenarios.has('idle'), connect: scenarios.has('connect') });
      if (scenarios.has('idle')) results.idle = c.idle;
      if (scenarios.has('connect')) results.connect = c.connect;
    }
    if (scenarios.has('cross')) results.cross = await runCrossNode(ctx);
    if (scenarios.has('outbox')) results.outbox = await runOutbox(ctx);
    if (scenarios.has('cluster')) results.cluster = await runClusterCross(ctx);
    if (scenarios.has('workers')) results.workers = await runWorkers(ctx);
    if (scenarios.has('collab')) results.collab = await runCollab(cfg, progress, ctx.notes, ctx.cpuProfDir);
    if (scenarios.has('proxy')) results.proxy = await runProxy(ctx);
    if (scenarios.has('codec')) results.codec = await runCodec(ctx);
    if (scenarios.has('game')) results.game = await runGame(ctx);
    if (scenarios.has('c18k')) results.c18k = await runC18k(ctx);
    ctx.notes.push(...measurementWarnings(results));
    results.pace = paceNotes(results);
    results.meta.busyBeforePct = idleBefore;
    results.meta.durationS = Math.round((Date.now() - started) / 100) / 10;
    progress.done();
    const summary = summarize(results);
    const files = writeResults(outDir, results, summary);
    const table = results.collab ? `${renderTable(results)}\n\n${renderCollab(results.collab)}` : renderTable(results);
    return { results, summary, table, files };
  } finally {
    progress.done();
    await Promise.allSettled([subs.kill(), pub.kill()]);
    if (redisUrl)
      await deleteRunKeys(redisUrl, `bench-${runId}`).catch((err: unknown) => progress.step(`Redis cleanup failed: ${errorText(err)}`));
  }
}

/** CPU other processes use (percent of one core) over `ms`, minus what the bench's own processes use. */
async function foreignLoadPct(ms: number, ours: Child[]): Promise<number> {
  const a = machineTicks();
  const ours0 = ours.map((c) => c.cpuSeconds());
  const self0 = process.cpuUsage();
  await new Promise((r) => setTimeout(r, ms));
  const b = machineTicks();
  const self = process.cpuUsage(self0);
  const oursS = ours.reduce((sum, c, i) => sum + (c.cpuSeconds() - ours0[i]!), 0) + (self.user + self.system) / 1e6;
  const allS = (b.busy - a.busy - (b.softirq - a.softirq)) / 100;
  return Math.max(0, Math.round(((allS - oursS) / (ms / 1000)) * 100));
}
