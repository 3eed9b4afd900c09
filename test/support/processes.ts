/**
 * Child processes for tests that kill and restart things: a hub in a process of its own
 * (test/support/hub-process.ts, so it can be SIGKILLed and started again on the same port and
 * data directory), a free port to bring it back on, and tracking so that `killProcesses()`
 * ends every process a test started, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { CreateHubOptions } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HUB_SCRIPT = fileURLToPath(new URL('./hub-process.ts', import.meta.url));

const children = new Set<ChildProcess>();

/** A loopback port nobody listens on right now (listen on 0, note it, close). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Tracks a child for `killProcesses()`; resolves when it has exited. */
export function track(child: ChildProcess): Promise<void> {
  children.add(child);
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => {
      children.delete(child);
      resolve();
    });
  });
}

/** SIGKILLs every tracked process still running, and waits for them to go. */
export async function killProcesses(): Promise<void> {
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

/** Keeps the last `max` characters of a stream, for error messages. */
export function tail(stream: NodeJS.ReadableStream | null, max = 4000): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (d: string) => {
    text = (text + d).slice(-max);
  });
  return () => text;
}

export interface HubProcess {
  child: ChildProcess;
  port: number;
  wsUrl: string;
  httpUrl: string;
  /** False once `kill()` was called. */
  alive: boolean;
  /** Publishes from the server side (through the child's stdin). */
  publish(channel: string, data: unknown): void;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** The end of what it wrote on stderr. */
  stderr(): string;
}

/** Starts a hub process on `port` (0: any); resolves once it listens. */
export async function startHubProcess(options: CreateHubOptions | Record<string, unknown>, port = 0): Promise<HubProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', HUB_SCRIPT, JSON.stringify(options), String(port)], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'error' },
  });
  const exited = track(child);
  const stderr = tail(child.stderr);
  const actual = await new Promise<number>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) {
        child.stdout!.off('data', onData);
        child.stdout!.resume(); // keep draining
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`hub process exited (${code ?? signal}) before ready: ${stderr()}`)));
  });
  const hub: HubProcess = {
    child,
    port: actual,
    wsUrl: `ws://127.0.0.1:${actual}/ws`,
    httpUrl: `http://127.0.0.1:${actual}`,
    alive: true,
    publish(channel, data) {
      child.stdin!.write(`${JSON.stringify({ channel, data })}\n`);
    },
    async kill() {
      hub.alive = false;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stderr,
  };
  return hub;
}

/** Polls `check` until it is truthy; fails with `what` after `timeoutMs`. */
export async function waitFor(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
