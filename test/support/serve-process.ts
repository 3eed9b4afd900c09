/**
 * `switchboard serve` (the built CLI, dist/cli/main.js) in a process of its own, with a config
 * file: for tests of the standalone server that SIGKILL it and start it again on the same port
 * and data directory. Needs `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, tail, track } from './processes.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/main.js');

export interface ServeProcess {
  port: number;
  wsUrl: string;
  httpUrl: string;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful shutdown), and wait for it to exit. */
  stop(): Promise<void>;
  stderr(): string;
}

/** Writes `config` to `<dir>/config.json` and starts `switchboard serve` with it on `port` (0: a free one). */
export async function startServe(dir: string, config: Record<string, unknown>, port = 0): Promise<ServeProcess> {
  const file = join(dir, `config-${port || 'any'}-${Date.now()}.json`);
  writeFileSync(file, JSON.stringify(config));
  const actual = port || (await freePort());
  const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--port', String(actual), '--host', '127.0.0.1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SWITCHBOARD_LOG_LEVEL: process.env.SERVE_LOG_LEVEL ?? 'error' },
  });
  const exited = track(child);
  const stderr = tail(child.stderr);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('WebSocket')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`switchboard serve exited (${code ?? signal}): ${stderr()}`)));
  });
  const stopWith = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    port: actual,
    wsUrl: `ws://127.0.0.1:${actual}/ws`,
    httpUrl: `http://127.0.0.1:${actual}`,
    kill: () => stopWith('SIGKILL'),
    stop: () => stopWith('SIGTERM'),
    stderr,
  };
}
