/**
 * The subscriber processes of the Redis soak (test/soak-redis.test.ts), each running many SDK
 * clients (test/support/soak-subscribers.ts); tracked so that `killProcesses()` ends them too.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tail, track } from './processes.js';
import type { SoakReport, SoakStart, SoakStatus } from './soak-subscribers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SUBSCRIBER_SCRIPT = fileURLToPath(new URL('./soak-subscribers.ts', import.meta.url));

/** A process of soak subscribers (soak-subscribers.ts), driven over IPC. */
export class SubscriberProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, (msg: any) => void>();
  private readonly exited: Promise<void>;
  readonly stderr: () => string;
  private exitCode: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    this.exited = track(child);
    this.stderr = tail(child.stderr);
    child.stdout?.resume();
    child.on('message', (msg: any) => {
      const fn = this.waiting.get(msg?.id ?? 0);
      if (fn) {
        this.waiting.delete(msg.id);
        fn(msg);
      }
    });
    child.once('exit', (code, signal) => {
      this.exitCode = String(code ?? signal);
      for (const fn of this.waiting.values()) fn({ type: 'exit' });
      this.waiting.clear();
    });
  }

  /** Forks the process and starts its subscribers; resolves once every client was created. */
  static async start(options: SoakStart): Promise<SubscriberProcess> {
    const child = fork(SUBSCRIBER_SCRIPT, [], {
      cwd: ROOT,
      execArgv: ['--import', 'tsx', '--max-old-space-size=1024'],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const p = new SubscriberProcess(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`subscriber process: not started within 30 s: ${p.stderr()}`)), 30_000);
      // `started` carries no id: it lands on id 0.
      p.waiting.set(0, (msg) => {
        clearTimeout(timer);
        if (msg.type === 'started') resolve();
        else reject(new Error(`subscriber process exited: ${p.stderr()}`));
      });
      child.send({ type: 'start', ...options });
    });
    return p;
  }

  private request<T>(msg: Record<string, unknown>, key: string): Promise<T> {
    if (this.exitCode !== undefined) return Promise.reject(new Error(`subscriber process exited (${this.exitCode}): ${this.stderr()}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`subscriber process: no ${msg.type} reply within 20 s`));
      }, 20_000);
      this.waiting.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.type === 'exit') reject(new Error(`subscriber process exited (${this.exitCode}): ${this.stderr()}`));
        else resolve(reply[key] as T);
      });
      this.child.send({ ...msg, id });
    });
  }

  status(target?: { epoch: string; offset: number }): Promise<SoakStatus> {
    return this.request<SoakStatus>({ type: 'status', target }, 'status');
  }

  report(): Promise<SoakReport> {
    return this.request<SoakReport>({ type: 'report' }, 'report');
  }

  /** Asks it to disconnect its clients and exit; SIGKILL after 3 s. */
  async stop(): Promise<void> {
    if (this.exitCode !== undefined) return;
    try {
      this.child.send({ type: 'stop' });
    } catch {
      // already gone
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Sums the status of several subscriber processes. */
export function mergeStatus(all: SoakStatus[]): SoakStatus {
  const s: SoakStatus = { subscribers: 0, connected: 0, subscribed: 0, byUrl: {}, atTarget: 0, received: 0 };
  for (const one of all) {
    s.subscribers += one.subscribers;
    s.connected += one.connected;
    s.subscribed += one.subscribed;
    s.atTarget += one.atTarget;
    s.received += one.received;
    for (const [url, n] of Object.entries(one.byUrl)) s.byUrl[url] = (s.byUrl[url] ?? 0) + n;
    s.laggard ??= one.laggard;
  }
  return s;
}
