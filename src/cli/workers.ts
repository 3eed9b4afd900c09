import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import { UsageError } from './args.js';

/** What a worker tells the primary once it listens (over the IPC channel). */
export interface WorkerListening {
  kind: 'switchboard:listening';
  lines: string[];
}

/** `--workers N|auto` → N (1 when omitted; `auto`: the cores this process may use). */
export function workerCount(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === 'auto') return availableParallelism();
  if (!/^\d{1,3}$/.test(value) || Number(value) < 1) throw new UsageError(`--workers must be a whole number ≥ 1 or auto, got ${JSON.stringify(value)}`);
  return Number(value);
}

/** True in a process `runWorkers` forked. */
export function isWorker(): boolean {
  return cluster.isWorker;
}

/** A worker reports its listening lines to the primary (which prints them once). */
export function reportListening(lines: string[]): void {
  const message: WorkerListening = { kind: 'switchboard:listening', lines };
  process.send?.(message);
}

/** How long the primary waits for a worker that crashed before starting another. */
const RESTART_DELAY_MS = 500;

/**
 * The primary of `switchboard serve --workers N`: forks N workers running the same command (they
 * share the listening port through node:cluster, and coordinate through Redis like separate
 * nodes), prints the listening lines once all are up, starts a worker again if one dies, and on
 * SIGTERM/SIGINT asks every worker to shut down gracefully and waits for all of them (at most
 * `shutdownTimeoutMs` plus a margin; then they are killed). A second signal ends at once.
 * Resolves with the exit code.
 */
export async function runWorkers(count: number, shutdownTimeoutMs: number, logger: Logger): Promise<number> {
  let stopping = false;
  let reported = 0;
  let printed = false;
  const fork = (): Worker => {
    const worker = cluster.fork();
    worker.on('message', (message: WorkerListening) => {
      if (message?.kind !== 'switchboard:listening') return;
      reported++;
      if (!printed && reported >= count) {
        printed = true;
        const [first, ...rest] = message.lines;
        process.stdout.write(`${[`${first ?? 'switchboard listening'} — ${count} workers, pids ${pids().join(' ')}`, ...rest].join('\n')}\n`);
      }
    });
    return worker;
  };
  const pids = (): number[] => Object.values(cluster.workers ?? {}).flatMap((w) => (w?.process.pid ? [w.process.pid] : []));

  return new Promise<number>((resolve) => {
    let failed = false;
    cluster.on('exit', (worker, code, signal) => {
      if (stopping) {
        if (code !== 0) failed = true;
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(failed ? 1 : 0);
        return;
      }
      logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting another');
      if (!printed) {
        // It died before the others were up (bad options, Redis refused): no point in retrying.
        stopping = true;
        failed = true;
        for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM');
        if (Object.keys(cluster.workers ?? {}).length === 0) resolve(1);
        return;
      }
      setTimeout(() => {
        if (!stopping) fork();
      }, RESTART_DELAY_MS).unref();
    });
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal, workers: pids().length }, 'shutting down every worker');
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      if (pids().length === 0) resolve(0);
      // Workers shut down within their own timeout; past it (plus a margin), they are killed.
      setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
      }, shutdownTimeoutMs + 5_000).unref();
      process.once(signal, () => {
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
        process.exit(1);
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    for (let i = 0; i < count; i++) fork();
  });
}
