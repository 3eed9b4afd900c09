/**
 * Processes of the Redis soak (test/soak-redis.test.ts): hub nodes (test/support/hub-process.ts)
 * and subscriber processes (test/support/soak-subscribers.ts), each tracked so that
 * `killAll()` ends every one of them, whatever happened.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SoakReport, SoakStart, SoakStatus } from './soak-subscribers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HUB_SCRIPT = fileURLToPath(new URL('./hub-process.ts', import.meta.url));
const SUBSCRIBER_SCRIPT = fileURLToPath(new URL('./soak-subscribers.ts', import.meta.url));

const children = new Set<ChildProcess>();

function track(child: ChildProcess): Promise<void> {
  children.add(child);
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });
}

/** Keeps the last `max` characters of a stream, for error messages. */
function tail(stream: NodeJS.ReadableStream | null, max = 4000): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (d: string) => {
    text = (text + d).slice(-max);
  });
  return () => text;
}

/** SIGKILLs every process started here that is still running, and waits for them to go. */
export async function killAll(): Promise<void> {
  await Promise.all(
    [...children].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
  children.clear();
}

export interface SoakNode {
  port: number;
  wsUrl: string;
  httpUrl: string;
  alive: boolean;
  /** SIGKILL, and wait until the process is gone. */
  kill(): Promise<void>;
  stderr(): string;
}

/** A hub node in its own process, on `port`; resolves once it listens. */
export async function startNode(options: Record<string, unknown>, port: number): Promise<SoakNode> {
  const child = spawn(process.execPath, ['--import', 'tsx', HUB_SCRIPT, JSON.stringify(options), String(port)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'error' },
  });
  const exited = track(child);
  const stderr = tail(child.stderr);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (/ready \d+/.test(out)) {
        child.stdout!.off('data', onData);
        child.stdout!.resume(); // keep draining
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`hub on ${port} exited (${code ?? signal}) before ready: ${stderr()}`)));
  });
  const node: SoakNode = {
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    alive: true,
    async kill() {
      node.alive = false;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stderr,
  };
  return node;
}

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
