import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY } from './support/harness.js';
import { OwnRedis } from './support/redis-server.js';

const redises: OwnRedis[] = [];
afterEach(async () => {
  await closeAllServers();
  for (const r of redises.splice(0)) await r.down();
});

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('when Redis goes away', () => {
  it('fails readiness and answers publishes with a temporary error, then recovers with a new epoch', async () => {
    const redis = await OwnRedis.start();
    redises.push(redis);
    const server = await createTestServer({ redisUrl: redis.url, positionCheckIntervalMs: 200 });
    const publish = (data: unknown): Promise<Response> =>
      fetch(`${server.httpUrl}/api/publish`, {
        method: 'POST',
        headers: { authorization: `apikey ${TEST_API_KEY}` },
        body: JSON.stringify({ channel: 'chat:outage', data }),
      });
    const ready = async (): Promise<number> => (await fetch(`${server.httpUrl}/readyz`)).status;

    const sub = await server.client({ user: 'alice' });
    const reply = await sub.subscribe('chat:outage');
    expect((await publish(1)).status).toBe(200);
    await sub.waitFor((m) => m.push === 'pub');
    expect(await ready()).toBe(200);

    await redis.down();
    await until(async () => (await ready()) === 503, 'readyz to fail');
    const refused = await publish(2);
    expect(refused.status).toBe(503);
    expect((await refused.json()).error).toMatchObject({ code: 114, temporary: true });
    expect(await sub.errorCode('publish', { channel: 'chat:outage', data: 3 })).toBe(114);

    await redis.up();
    await until(async () => (await ready()) === 200, 'readyz to pass again');
    await until(async () => (await publish(4)).status === 200, 'publishing to work again');
    // The stream was lost with Redis: the subscriber is told to resubscribe, and cannot recover.
    await sub.waitFor((m) => m.push === 'unsubscribe' && m.code === 2001);
    const again = await sub.subscribe('chat:outage', { offset: 1, epoch: reply.position.epoch });
    expect(again.recovered).toBe(false);
    expect(again.publications).toEqual([]);
    expect(again.position.epoch).not.toBe(reply.position.epoch);
  });
});
