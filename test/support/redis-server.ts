import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { freePort } from './processes.js';

/**
 * A redis-server of the test's own on a free port, for tests that stop, restart or flush
 * Redis (never the shared one on 6379). No persistence: a restart loses everything.
 */
export class OwnRedis {
  private child: ChildProcess | undefined;
  private readonly probes = new Set<Redis>();

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort());
    await r.up();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      probe.on('error', () => undefined);
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Freezes it (SIGSTOP): connections stay open, nothing is answered — a stalled Redis. */
  stall(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a stalled Redis go on (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** A plain connection to it (for tests that look at or write keys by hand); closed by `down()`. */
  connect(): Redis {
    const conn = new Redis(this.url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
    conn.on('error', () => undefined);
    this.probes.add(conn);
    return conn;
  }

  /** Stops it at once, like `redis-cli SHUTDOWN NOSAVE`. */
  async down(): Promise<void> {
    for (const conn of this.probes) conn.disconnect();
    this.probes.clear();
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  async restart(): Promise<void> {
    await this.down();
    await this.up();
  }
}
