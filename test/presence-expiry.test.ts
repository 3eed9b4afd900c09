import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_SECRET } from './support/harness.js';
import { killProcesses, startHubProcess } from './support/processes.js';
import { ProtocolClient } from './support/protocol-client.js';

const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  await killProcesses();
  await closeAllServers();
  for (const fn of cleanups.splice(0)) await fn();
});

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
    const doomed = await startHubProcess({ ...base, ...shared });
    const survivor = await createTestServer({ ...base, ...shared });
    const watcher = await survivor.client({ user: 'watcher' });
    await watcher.subscribe('room:crash');

    const victim = await ProtocolClient.open(`ws://127.0.0.1:${doomed.port}/ws`);
    await victim.connect(await survivor.token('erin'));
    await victim.subscribe('room:crash');
    await watcher.waitFor((m) => m.push === 'join' && m.info.user === 'erin');
    expect((await watcher.call('presence', { channel: 'room:crash' })).users).toEqual(['erin', 'watcher']);
    expect((await watcher.call('statuses', { users: ['erin'] })).users.erin.status).toBe('online');

    await doomed.kill();
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
    const first = await startHubProcess(options);
    const tab = await ProtocolClient.open(`ws://127.0.0.1:${first.port}/ws`);
    const token = await (await createTestServer()).token('frank');
    await tab.connect(token);
    await tab.subscribe('room:embedded');
    expect(Object.keys((await tab.call('presence', { channel: 'room:embedded' })).clients)).toHaveLength(1);
    await first.kill();

    const second = await startHubProcess(options, first.port);
    const look = await ProtocolClient.open(`ws://127.0.0.1:${second.port}/ws`);
    await look.connect(token);
    expect(await look.call('presence', { channel: 'room:embedded' })).toEqual({ clients: {}, users: [] });
    expect((await look.call('statuses', { users: ['frank'] })).users.frank.status).toBe('online'); // this very connection
    look.terminate();
    tab.terminate();
  });
});
