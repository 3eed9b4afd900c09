import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer, TEST_API_KEY } from './support/harness.js';

/**
 * Several hubs joined by the shared Redis on 6379, each test under its own key prefix (these
 * tests never stop or flush Redis; those that do start their own redis-server).
 */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefixes: string[] = [];

function redisOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const redisPrefix = prefixes.at(-1)!;
  return { redisUrl: REDIS_URL, redisPrefix, ...extra };
}

afterEach(async () => {
  await closeAllServers();
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

describe('nodes joined by Redis', () => {
  it('delivers what is published on node B to a subscriber on node A, in order, and recovers across nodes', async () => {
    prefixes.push(`sbtest-${randomUUID()}`);
    const a = await createTestServer(redisOptions());
    const b = await createTestServer(redisOptions());
    const sub = await a.client({ user: 'alice' });
    const pub = await b.client({ user: 'bob' });
    const reply = await sub.subscribe('chat:room');
    await pub.subscribe('chat:room');
    for (let i = 1; i <= 150; i++) void pub.publish('chat:room', { i });
    const got = await sub.waitForPushes(150, (m) => m.push === 'pub');
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: 150 }, (_, i) => reply.position.offset + i + 1));
    expect(got.map((m) => m.data.i)).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));

    // Disconnected from A, it recovers from node B what was published meanwhile.
    const last = { offset: got.at(-1)!.offset!, epoch: got[0]!.epoch as string }; // the first publication named the new stream's epoch
    await sub.close();
    for (let i = 151; i <= 200; i++) await b.hub.publish('chat:room', { i });
    const again = await b.client({ user: 'alice' });
    const recovered = await again.subscribe('chat:room', last);
    expect(recovered.recovered).toBe(true);
    expect(recovered.publications.map((p: { data: { i: number } }) => p.data.i)).toEqual(Array.from({ length: 50 }, (_, i) => 151 + i));
  });

  it('finds a publication lost in pub/sub by the position check and makes the client recover it', async () => {
    prefixes.push(`sbtest-${randomUUID()}`);
    const a = await createTestServer(redisOptions({ positionCheckIntervalMs: 100 }));
    const sub = await a.client({ user: 'alice' });
    await a.hub.publish('chat:lossy', { first: true }); // the stream exists (a read alone stores nothing)
    const reply = await sub.subscribe('chat:lossy');
    expect(reply.position.offset).toBe(1);
    // A publication appended to the stream whose PUBLISH never reached node A.
    const redis = new Redis(REDIS_URL);
    const prefix = prefixes.at(-1)!;
    const offset = await redis.hincrby(`${prefix}:meta:{chat:lossy}`, 's', 1);
    await redis.xadd(`${prefix}:stream:{chat:lossy}`, `0-${offset}`, 'd', '{"lost":true}', 'i', '', 't', String(Date.now()));
    await redis.quit();

    const unsub = await sub.waitFor((m) => m.push === 'unsubscribe');
    expect(unsub).toMatchObject({ channel: 'chat:lossy', code: 2001, resubscribe: true });
    const recovered = await sub.subscribe('chat:lossy', reply.position);
    expect(recovered.recovered).toBe(true);
    expect(recovered.publications).toEqual([{ offset: reply.position.offset + 1, data: { lost: true } }]);
  });

  it('acts on every node for disconnect and unsubscribe', async () => {
    prefixes.push(`sbtest-${randomUUID()}`);
    const a = await createTestServer(redisOptions());
    const b = await createTestServer(redisOptions());
    const onA = await a.client({ user: 'carol' });
    const onB = await b.client({ user: 'carol' });
    await onA.subscribe('chat:x');
    await onB.subscribe('chat:x');
    await a.hub.unsubscribe('carol', 'chat:x');
    await onB.waitFor((m) => m.push === 'unsubscribe' && m.code === 2000);
    await onA.waitFor((m) => m.push === 'unsubscribe' && m.code === 2000);
    await b.hub.disconnect('carol');
    expect((await onA.waitForClose()).code).toBe(4501);
    expect((await onB.waitForClose()).code).toBe(4501);
  });
});

describe('listings across nodes', () => {
  it('sums channel subscribers over every node and counts the nodes', async () => {
    prefixes.push(`sbtest-${randomUUID()}`);
    const a = await createTestServer(redisOptions({ statsIntervalMs: 100 }));
    const b = await createTestServer(redisOptions({ statsIntervalMs: 100 }));
    await (await a.client({ user: 'u1' })).subscribe('chat:busy');
    await (await b.client({ user: 'u2' })).subscribe('chat:busy');
    await (await b.client({ user: 'u3' })).subscribe('chat:quiet');
    const get = async (path: string): Promise<any> =>
      (await fetch(`${a.httpUrl}${path}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } })).json();
    let listing: any;
    for (let i = 0; i < 50; i++) {
      listing = await get('/api/channels');
      if (listing.channels.length === 2 && listing.channels[0].subscribers === 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(listing.channels).toEqual([
      { channel: 'chat:busy', subscribers: 2 },
      { channel: 'chat:quiet', subscribers: 1 },
    ]);
    expect((await get('/api/info')).nodes).toBe(2);
  });
});
