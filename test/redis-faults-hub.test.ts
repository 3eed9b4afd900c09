import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY } from './support/harness.js';
import { OwnRedis } from './support/redis-server.js';

/**
 * A whole hub on a private redis-server that stalls (SIGSTOP) or restarts empty: readiness
 * answers at once, calls fail with 114 within `redisCommandTimeoutMs`, shutdown is bounded, and
 * presence comes back by itself.
 */
const redises: OwnRedis[] = [];
afterEach(async () => {
  for (const r of redises) r.resume();
  await closeAllServers();
  for (const r of redises.splice(0)) await r.down();
});

async function ownRedis(): Promise<OwnRedis> {
  const redis = await OwnRedis.start();
  redises.push(redis);
  return redis;
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The status, or 'hung' when no answer came within `ms`. */
async function statusWithin(url: string, ms: number, init?: RequestInit): Promise<number | 'hung'> {
  try {
    return (await fetch(url, { ...init, signal: AbortSignal.timeout(ms) })).status;
  } catch {
    return 'hung';
  }
}

describe('a hub on a stalled Redis (SIGSTOP)', () => {
  it('answers /readyz 503 at once and fails publishes with 114 within the command timeout', async () => {
    const redis = await ownRedis();
    const server = await createTestServer({ redisUrl: redis.url, redisCommandTimeoutMs: 500 });
    await until(async () => (await statusWithin(`${server.httpUrl}/readyz`, 2_000)) === 200, 'readyz to pass');
    redis.stall();
    const started = Date.now();
    expect(await statusWithin(`${server.httpUrl}/readyz`, 4_000)).toBe(503);
    expect(Date.now() - started).toBeLessThan(1_500);

    const publishStarted = Date.now();
    const res = await fetch(`${server.httpUrl}/api/publish`, {
      method: 'POST',
      headers: { authorization: `apikey ${TEST_API_KEY}` },
      body: JSON.stringify({ channel: 'chat:stalled', data: 1 }),
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(503);
    expect((await res.json()).error).toMatchObject({ code: 114, temporary: true });
    expect(Date.now() - publishStarted).toBeLessThan(2_000);

    redis.resume();
    await until(async () => (await statusWithin(`${server.httpUrl}/readyz`, 2_000)) === 200, 'readyz to pass again');
  });

  it('shuts down within a bounded time', async () => {
    const redis = await ownRedis();
    const server = await createTestServer({
      redisUrl: redis.url,
      redisCommandTimeoutMs: 500,
      namespaces: { room: { presence: true, joinLeave: true } },
    });
    const client = await server.client({ user: 'ann' });
    await client.subscribe('room:a');
    await client.subscribe('chat:a');
    redis.stall();
    const started = Date.now();
    const closed = await Promise.race([server.close().then(() => 'closed'), sleep(15_000).then(() => 'hung')]);
    expect(closed).toBe('closed');
    expect(Date.now() - started).toBeLessThan(6_000);
  });
});

describe('a hub whose Redis restarts empty', () => {
  it('shows a connected user in presence again within one refresh', async () => {
    const redis = await ownRedis();
    const server = await createTestServer({
      redisUrl: redis.url,
      presenceTtlSeconds: 1,
      redisCommandTimeoutMs: 500,
      namespaces: { room: { presence: true } },
    });
    const ann = await server.client({ user: 'ann' });
    await ann.subscribe('room:heal');
    const watcher = await server.client({ user: 'watcher' });
    const users = async (): Promise<string[]> => {
      try {
        return (await watcher.call('presence', { channel: 'room:heal' })).users as string[];
      } catch {
        return [];
      }
    };
    expect(await users()).toEqual(['ann']);
    await redis.restart();
    // Back within a refresh period (a third of the TTL) once the hub has reconnected.
    await until(async () => (await statusWithin(`${server.httpUrl}/readyz`, 2_000)) === 200, 'readyz to pass again');
    await until(async () => (await users()).includes('ann'), 'ann to be present again', 1_500);
    ann.terminate();
    await until(async () => (await users()).length === 0, 'ann to leave');
  });
});
