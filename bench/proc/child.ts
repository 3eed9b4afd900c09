import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from './cpu.js';
import type { RpcResponse } from './rpc.js';

/** The repository root: children resolve `tsx` and `src/` from here. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const live = new Set<ChildProcess>();
const STDERR_KEEP = 4096;

interface Waiter {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One child process (a server or a load-generator agent) run with tsx and driven by RPC.
 * Every child is registered so `killAllChildren` can end it whatever happens.
 */
export class Child {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();
  private stderrTail = '';
  private exited = false;

  private constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
  ) {
    live.add(proc);
    proc.on('message', (msg: RpcResponse) => {
      const w = this.waiting.get(msg?.rpc);
      if (!w) return;
      this.waiting.delete(msg.rpc);
      clearTimeout(w.timer);
      if (msg.ok) w.resolve(msg.result);
      else w.reject(new Error(`${this.name}: ${msg.error ?? 'failed'}`));
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      if (process.env.BENCH_VERBOSE) process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString('utf8')).slice(-STDERR_KEEP);
    });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      live.delete(proc);
      for (const [id, w] of this.waiting) {
        clearTimeout(w.timer);
        w.reject(new Error(`${this.name} exited (${signal ?? code}) ${this.stderrTail.trim().slice(-600)}`));
        this.waiting.delete(id);
      }
    });
  }

  /** Starts `file` (relative to bench/) with tsx; `exposeGc` adds --expose-gc. */
  static spawn(name: string, file: string, args: string[] = [], opts: { exposeGc?: boolean; cpuProf?: string } = {}): Child {
    const execArgv = ['--import', 'tsx'];
    if (opts.exposeGc) execArgv.push('--expose-gc');
    if (opts.cpuProf) execArgv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`);
    const proc = fork(fileURLToPath(new URL(`../${file}`, import.meta.url)), args, {
      cwd: REPO_ROOT,
      execArgv,
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: { ...process.env, SWITCHBOARD_LOG_LEVEL: process.env.SWITCHBOARD_LOG_LEVEL ?? 'error' },
    });
    return new Child(name, proc);
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  cpuSeconds(): number {
    return cpuSeconds(this.proc.pid);
  }

  call<T>(cmd: string, args?: unknown, timeoutMs = 30_000): Promise<T> {
    if (this.exited) return Promise.reject(new Error(`${this.name} is not running ${this.stderrTail.trim().slice(-600)}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.send({ rpc: id, cmd, args });
    });
  }

  /**
   * Ends the process: SIGTERM, then SIGKILL if it is still there after `graceMs`; with
   * `graceMs` 0, SIGKILL at once (a server with a backlog would take its time to see SIGTERM).
   */
  async kill(graceMs = 1500): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    this.proc.kill(graceMs === 0 ? 'SIGKILL' : 'SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}

/** SIGKILLs every child still running (synchronous, so it also works in an 'exit' handler). */
export function killAllChildren(): void {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

let installed = false;

/** Makes sure no child outlives the orchestrator, however it ends. */
export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAllChildren);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      killAllChildren();
      process.exit(130);
    });
  }
}
