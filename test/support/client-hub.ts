/**
 * Helpers for the client SDK tests: a hub in a child process (to SIGKILL and restart), a free
 * port, waiting for conditions, and a TCP proxy that can cut or freeze connections.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { CreateHubOptions } from '../../src/index.js';

export const SECRET = 'client-sdk-test-secret-0123456789abcdef';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCRIPT = fileURLToPath(new URL('./hub-process.ts', import.meta.url));

/** A port nobody listens on right now (listen on 0, note it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface HubProcess {
  child: ChildProcess;
  port: number;
  /** Publishes from the server side (through the child's stdin). */
  publish(channel: string, data: unknown): void;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
}

const children = new Set<ChildProcess>();

/** Starts `test/support/hub-process.ts` on `port`; resolves once it listens. */
export async function startHubProcess(options: CreateHubOptions, port: number): Promise<HubProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, JSON.stringify(options), String(port)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'error' },
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => children.delete(child));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: string): void => {
      out += d;
      if (out.includes('ready ')) {
        child.stdout!.off('data', onData);
        resolve();
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.once('exit', (code) => reject(new Error(`hub process exited (${code}) before ready: ${stderr}`)));
  });
  child.stdout!.resume();
  return {
    child,
    port,
    publish(channel, data) {
      child.stdin!.write(`${JSON.stringify({ channel, data })}\n`);
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Kills every hub process still running (call in afterEach). */
export async function killHubProcesses(): Promise<void> {
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

/** Polls `check` until it is truthy; fails with `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A loopback TCP proxy in front of a hub. `inspect` sees every chunk from the server and may cut
 * the connection (both sides, the chunk not forwarded). `freeze()` stops forwarding without
 * closing anything, like a dead network path.
 */
export class ClientProxy {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private frozen = false;
  port = 0;
  /** Return true to cut the connection instead of forwarding this server → client chunk. */
  inspect: ((chunk: Buffer) => boolean) | undefined;

  constructor(private readonly targetPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const cut = (): void => {
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', cut).on('error', cut);
      upstream.on('close', cut).on('error', cut);
      client.on('data', (chunk: Buffer) => {
        if (!this.frozen) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (this.frozen) return;
        if (this.inspect?.(chunk)) {
          cut();
          return;
        }
        client.write(chunk);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  get connections(): number {
    return this.pairs.size;
  }

  /** Cuts every open connection (both sides) at once. */
  cutAll(): void {
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
