import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_SECRET } from './support/harness.js';
import { ProtocolClient } from './support/protocol-client.js';

const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const children: ChildProcess[] = [];
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await closeAllServers();
  for (const fn of cleanups.splice(0)) await fn();
});

/** A hub in its own process (test/support/hub-process.ts), so it can be SIGKILLed. */
async function spawnHub(options: Record<string, unknown>, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/hub-process.ts', JSON.stringify(options), String(port)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  const ready = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`hub process exited (${code}) before ready`)));
  });
  return { child, port: ready };
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const base = { auth: { secret: TEST_SECRET }, limits: { shutdownSpreadMs: 0 }, namespaces: { room: { presence: true, joinLeave: true } } };

describe('presence after a crash', () => {
  it('drops the entries of a SIGKILLed node within the TTL, and its users read as offline (Redis)', async () => {
    const prefix = `sbtest-${randomUUID()}`;
    cleanups.push(async () => {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    });
    const shared = { redisUrl: REDIS_URL, redisPrefix: prefix, presenceTtlSeconds: 1 };
    const doomed = await spawnHub({ ...base, ...shared });
    const survivor = await createTestServer({ ...base, ...shared });
    const watcher = await survivor.client({ user: 'watcher' });
    await watcher.subscribe('room:crash');

    const victim = await ProtocolClient.open(`ws://127.0.0.1:${doomed.port}/ws`);
    await victim.connect(await survivor.token('erin'));
    await victim.subscribe('room:crash');
    await watcher.waitFor((m) => m.push === 'join' && m.info.user === 'erin');
    expect((await watcher.call('presence', { channel: 'room:crash' })).users).toEqual(['erin', 'watcher']);
    expect((await watcher.call('statuses', { users: ['erin'] })).users.erin.status).toBe('online');

    await kill(doomed.child);
    const started = Date.now();
    let users: string[] = [];
    while (Date.now() - started < 5_000) {
      users = (await watcher.call('presence', { channel: 'room:crash' })).users;
      if (users.length === 1) break;
      await sleep(100);
    }
    expect(users).toEqual(['watcher']);
    expect((await watcher.call('statuses', { users: ['erin'] })).users.erin.status).toBe('offline');
  });

  it('starts the embedded store with nobody present after a SIGKILL and restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-presence-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const options = { ...base, dataDir: dir };
    const first = await spawnHub(options);
    const tab = await ProtocolClient.open(`ws://127.0.0.1:${first.port}/ws`);
    const token = await (await createTestServer()).token('frank');
    await tab.connect(token);
    await tab.subscribe('room:embedded');
    expect(Object.keys((await tab.call('presence', { channel: 'room:embedded' })).clients)).toHaveLength(1);
    await kill(first.child);

    const second = await spawnHub(options, first.port);
    const look = await ProtocolClient.open(`ws://127.0.0.1:${second.port}/ws`);
    await look.connect(token);
    expect(await look.call('presence', { channel: 'room:embedded' })).toEqual({ clients: {}, users: [] });
    expect((await look.call('statuses', { users: ['frank'] })).users.frank.status).toBe('online'); // this very connection
    look.terminate();
    tab.terminate();
  });
});
