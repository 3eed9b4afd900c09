/**
 * `switchboard serve --workers N` as shipped (dist/), with real processes: N workers share one
 * port and coordinate through Redis (the shared one on 6379, under a prefix of this file's own),
 * deliver across workers, a crashed worker is replaced, and SIGTERM shuts every worker down
 * gracefully. Without Redis, more than one worker is refused with a clear message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { signToken } from '../src/index.js';
import { until } from './support/harness.js';
import { ProtocolClient } from './support/protocol-client.js';

const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SECRET = 'workers-test-secret-0123456789abcdef';
const API_KEY = 'workers-test-api-key-0123';
const PREFIX = `sbworkers-${randomUUID().slice(0, 8)}`;
const children: ChildProcess[] = [];
const dirs: string[] = [];
const clients: ProtocolClient[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.terminate();
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
});

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, SWITCHBOARD_LOG_LEVEL: 'info', SWITCHBOARD_TOKEN_SECRET: SECRET, SWITCHBOARD_API_KEY: API_KEY };
  delete e.SWITCHBOARD_REDIS_URL;
  delete e.SWITCHBOARD_PORT;
  return e;
}

function config(extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-workers-'));
  dirs.push(dir);
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ dataDir: join(dir, 'data'), redisPrefix: PREFIX, statsIntervalMs: 200, limits: { shutdownSpreadMs: 200 }, namespaces: { chat: {} }, ...extra }));
  return file;
}

interface Served {
  child: ChildProcess;
  ws: string;
  http: string;
  pids: number[];
  stderr: () => string;
}

async function serveWorkers(n: string): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--workers', n, '--port', '0', '--host', '127.0.0.1', '--redis', REDIS_URL, '--config', config()], {
    env: env(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await until(() => /HTTP API/.test(out) || child.exitCode !== null, 'the listening lines', 30_000);
  expect(child.exitCode, err).toBeNull();
  const header = out.split('\n')[0]!;
  const pids = (/pids ([\d ]+)/.exec(header)?.[1] ?? '').trim().split(' ').map(Number);
  const ws = /WebSocket\s+(\S+)/.exec(out)![1]!;
  const http = /HTTP API\s+(\S+)\/api/.exec(out)![1]!;
  return { child, ws, http, pids, stderr: () => err };
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function info(http: string): Promise<{ nodes: number }> {
  return (await fetch(`${http}/api/info`, { headers: { authorization: `apikey ${API_KEY}` } })).json() as Promise<{ nodes: number }>;
}

async function publish(http: string, channel: string, data: unknown): Promise<{ offset: number }> {
  const res = await fetch(`${http}/api/publish`, {
    method: 'POST',
    headers: { authorization: `apikey ${API_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  expect(res.status).toBe(200);
  return res.json() as Promise<{ offset: number }>;
}

async function subscriber(ws: string, user: string, channel: string): Promise<ProtocolClient> {
  const c = await ProtocolClient.open(ws);
  clients.push(c);
  await c.connect(await signToken({ secret: SECRET, user }));
  await c.subscribe(channel);
  return c;
}

describe('switchboard serve --workers', () => {
  it('refuses more than one worker without Redis, naming what to set', () => {
    const r = spawnSync(process.execPath, [CLI, 'serve', '--workers', '2', '--port', '0', '--config', config()], { env: env(), encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--workers 2 needs Redis.*--redis URL/);
    const bad = spawnSync(process.execPath, [CLI, 'serve', '--workers', 'many'], { env: env(), encoding: 'utf8', timeout: 20_000 });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--workers must be a whole number ≥ 1 or auto/);
  });

  it('runs 2 workers on one port that deliver across each other, replaces a crashed one, and shuts all down gracefully', async () => {
    const s = await serveWorkers('2');
    expect(s.pids).toHaveLength(2);
    expect(s.pids.every(alive)).toBe(true);
    await until(async () => (await info(s.http)).nodes === 2, 'both workers as nodes');

    // Connections are spread over the workers (round robin), publishes too: every subscriber gets
    // every publication, in order, whichever worker accepted it.
    const subs = await Promise.all([1, 2, 3, 4].map((i) => subscriber(s.ws, `u${i}`, 'chat:w')));
    for (let i = 1; i <= 10; i++) await publish(s.http, 'chat:w', { i });
    for (const c of subs) {
      const got = await c.waitForPushes(10, (m) => m.push === 'pub' && m.channel === 'chat:w');
      expect(got.map((m) => m.data.i)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }

    // A worker killed outright is replaced.
    process.kill(s.pids[0]!, 'SIGKILL');
    await until(() => /worker exited; starting another/.test(s.stderr()), 'the primary replacing the worker', 20_000);
    await until(async () => {
      const c = await subscriber(s.ws, 'late', 'chat:w');
      const { offset } = await publish(s.http, 'chat:w', { late: true });
      return (await c.waitFor((m) => m.push === 'pub' && m.offset === offset)).offset === offset;
    }, 'delivery after the replacement', 20_000);
    await until(async () => (await info(s.http)).nodes === 2, 'two live workers again', 20_000);

    // SIGTERM to the primary: every worker closes its clients with "shutdown" and exits; then the primary exits 0.
    const open = subs.slice(1).filter((c) => c.isOpen);
    const exited = new Promise<number | null>((resolve) => s.child.once('exit', (code) => resolve(code)));
    s.child.kill('SIGTERM');
    const closes = await Promise.all(open.map((c) => c.waitForClose(20_000)));
    expect(closes.map((c) => c.code)).toEqual(open.map(() => 4000));
    expect(await exited).toBe(0);
    expect(s.pids.slice(1).some(alive)).toBe(false);
    expect(s.stderr()).toMatch(/shutting down every worker/);
  }, 90_000);
});
