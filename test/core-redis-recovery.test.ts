/**
 * Exactness with Redis when Redis itself goes wrong, against a redis-server of this file's own
 * (test/support/redis-server.ts: never the shared one on 6379), each test under its own prefix:
 *
 * - a failover that lost writes puts a stream back (same epoch, lower top): the next publication
 *   is not `offset + 1` for a live subscriber, which gets unsubscribe 2001 (not a silent drop),
 *   and its resubscribe from the lost position answers `recovered: false`; the SDK reports it
 *   with `onRecoveryFailed` and goes on;
 * - a node that is SIGKILLed leaves its users in presence until their entries expire: the sweep
 *   of a surviving node then sends one `leave` per user, once;
 * - `history` over WebSocket and `GET /api/history` refuse the same requests with the same code.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SwitchboardClient, type Publication, type RecoveryFailedContext } from '../src/client/index.js';
import { closeAllServers, createTestServer, sleep, TEST_API_KEY, TEST_SECRET, until, type TestServer } from './support/harness.js';
import { killProcesses, startHubProcess } from './support/processes.js';
import { ProtocolClient, type ServerMessage } from './support/protocol-client.js';
import { OwnRedis } from './support/redis-server.js';

const FAST = { minMs: 10, maxMs: 100, factor: 2 };

let redis: OwnRedis;
const sdkClients: SwitchboardClient[] = [];

beforeAll(async () => {
  redis = await OwnRedis.start();
});

afterEach(async () => {
  for (const c of sdkClients.splice(0)) c.disconnect();
  await killProcesses();
  await closeAllServers();
});

afterAll(async () => {
  await redis?.down();
});

/** Hub options on the private Redis, under a prefix of the test's own. */
function onRedis(extra: Record<string, unknown> = {}): { redisUrl: string; redisPrefix: string } & Record<string, unknown> {
  return { redisUrl: redis.url, redisPrefix: `sbrec-${randomUUID()}`, ...extra };
}

/**
 * What a failover to a replica that had not received the last publications leaves behind: the
 * stream's meta hash back at `top` (same epoch), the entries after it gone, and the stream's
 * last id back at `top` too (a replica never saw the later ids; without XSETID the next XADD of
 * `0-(top+1)` would be refused as not above the stream's last id).
 */
async function rollBack(prefix: string, channel: string, from: number, top: number): Promise<void> {
  const conn = redis.connect();
  const meta = `${prefix}:meta:{${channel}}`;
  const stream = `${prefix}:stream:{${channel}}`;
  await conn.hset(meta, 's', top);
  const ids = Array.from({ length: from - top }, (_, i) => `0-${top + 1 + i}`);
  expect(await conn.xdel(stream, ...ids)).toBe(ids.length);
  await conn.call('XSETID', stream, `0-${top}`);
  expect(await conn.hget(meta, 's')).toBe(String(top));
}

describe('a stream that went back after a Redis failover', () => {
  it('ends the live subscription with 2001 (resubscribe), and the resubscribe from the lost position is recovered: false', async () => {
    const options = onRedis();
    const server = await createTestServer(options);
    const channel = 'chat:rollback';
    const sub = await server.client({ user: 'alice' });
    await sub.subscribe(channel);
    for (let n = 1; n <= 5; n++) await server.hub.publish(channel, { n });
    const live = await sub.waitForPushes(5, (m) => m.push === 'pub' && m.channel === channel);
    expect(live.map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);
    const epoch = live[0]!.epoch as string; // the first publication names the stream's epoch
    expect(epoch).toEqual(expect.any(String));

    await rollBack(options.redisPrefix, channel, 5, 3);
    // The new publication takes offset 4 of the same epoch: not offset 6, as the subscriber expects.
    expect(await server.hub.publish(channel, { n: 'after failover' })).toEqual({ offset: 4, epoch });

    const unsub = await sub.waitFor((m) => m.push === 'unsubscribe' && m.channel === channel);
    expect(unsub).toMatchObject({ channel, code: 2001, resubscribe: true });
    // Not delivered as if it followed offset 5.
    expect(sub.pubs(channel).map((m) => m.offset)).toEqual([1, 2, 3, 4, 5]);

    const again = await sub.subscribe(channel, { offset: 5, epoch });
    // At offset 4; in the old epoch, or the new one the node started on seeing the stream go back.
    expect(again).toMatchObject({ recovered: false, publications: [], position: { offset: 4 } });

    // Live publications arrive again, from the new position on.
    await server.hub.publish(channel, { n: 'live' });
    const next = await sub.waitFor((m) => m.push === 'pub' && m.channel === channel && m.data?.n === 'live');
    expect(next.offset).toBe(5);
    expect(sub.pubs(channel).map((m) => m.data.n)).toEqual([1, 2, 3, 4, 5, 'live']);
    expect(sub.isOpen).toBe(true);
  });

  it('the SDK resubscribes on its own, fires onRecoveryFailed, and delivers the later publications', async () => {
    const options = onRedis();
    const server = await createTestServer(options);
    const channel = 'chat:rollback-sdk';
    const client = new SwitchboardClient(server.url, { token: await server.token('alice', { ttl: 3600 }), backoff: FAST });
    sdkClients.push(client);
    const got: Publication[] = [];
    const failed: RecoveryFailedContext[] = [];
    const subscription = client.subscribe(channel, {
      onPublication: (p) => got.push(p),
      onRecoveryFailed: (ctx) => failed.push(ctx),
    });
    client.connect();
    await subscription.ready(10_000);

    for (let n = 1; n <= 5; n++) await server.hub.publish(channel, { n });
    await until(() => got.length >= 5, '5 publications in the SDK');
    const epoch = subscription.position!.epoch;
    expect(subscription.position).toEqual({ offset: 5, epoch });

    await rollBack(options.redisPrefix, channel, 5, 3);
    expect(await server.hub.publish(channel, { n: 'after failover' })).toEqual({ offset: 4, epoch });

    await until(() => failed.length > 0, 'onRecoveryFailed');
    expect(failed).toEqual([{ channel, since: { offset: 5, epoch }, position: { offset: 4, epoch: expect.any(String) } }]);

    await server.hub.publish(channel, { n: 'live' });
    await until(() => got.some((p) => (p.data as { n: unknown }).n === 'live'), 'the live publication in the SDK');
    expect(got.map((p) => [p.offset, (p.data as { n: unknown }).n])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
      [5, 5],
      [5, 'live'],
    ]);
    expect(subscription.position?.offset).toBe(5);
    expect(failed).toHaveLength(1);
  });

  it('starts a new epoch once a node sees it, so a client offline meanwhile is refused even after the top passed its position', async () => {
    const options = onRedis();
    const server = await createTestServer(options);
    const channel = 'chat:rollback-offline';
    const live = await server.client({ user: 'alice' });
    await live.subscribe(channel);
    for (let n = 1; n <= 5; n++) await server.hub.publish(channel, { n });
    const seen = await live.waitForPushes(5, (m) => m.push === 'pub' && m.channel === channel);
    const epoch = seen[0]!.epoch as string;
    // Bob saw 1..5 too, then went offline.
    const bobAt = { offset: 5, epoch };

    await rollBack(options.redisPrefix, channel, 5, 3);
    // 4b: the live subscriber sees the stream go back, and its node restarts the epoch.
    expect(await server.hub.publish(channel, { n: '4b' })).toEqual({ offset: 4, epoch });
    await live.waitFor((m) => m.push === 'unsubscribe' && m.channel === channel && m.code === 2001);
    const conn = redis.connect();
    await until(async () => (await conn.hget(`${options.redisPrefix}:meta:{${channel}}`, 'e')) !== epoch, 'a new epoch');
    // The stream goes on past bob's old offset: 5b, 6b, 7b reuse offsets 5..7, in the new epoch.
    for (const n of ['5b', '6b', '7b']) await server.hub.publish(channel, { n });

    const bob = await server.client({ user: 'bob' });
    const back = await bob.subscribe(channel, bobAt);
    expect(back.recovered).toBe(false); // never 6b and 7b as if they followed bob's 5
    expect(back.publications).toEqual([]);
    expect(back.position.offset).toBe(7);
    expect(back.position.epoch).not.toBe(epoch);
  });

  it('a stream whose entries are ahead of its position (writes lost unevenly) starts a new epoch at the next publish', async () => {
    const options = onRedis();
    const server = await createTestServer(options);
    const channel = 'chat:uneven';
    for (let n = 1; n <= 5; n++) await server.hub.publish(channel, { n });
    const conn = redis.connect();
    const meta = `${options.redisPrefix}:meta:{${channel}}`;
    const epoch = await conn.hget(meta, 'e');
    await conn.hset(meta, 's', 3); // the position went back, the stream entries did not
    const next = await server.hub.publish(channel, { n: 'next' });
    expect(next.offset).toBe(1);
    expect(next.epoch).not.toBe(epoch);
    const read = await (await server.client({ user: 'carol' })).call('history', { channel, limit: 10 });
    expect(read.publications.map((p: { data: { n: unknown } }) => p.data.n)).toEqual(['next']);
  });
});

describe('presence of a node that crashed', () => {
  it('ends with one leave push per user, sent by a surviving node, and presence no longer lists them', async () => {
    const options = onRedis({
      auth: { secret: TEST_SECRET },
      presenceTtlSeconds: 2,
      limits: { shutdownSpreadMs: 0 },
      namespaces: { room: { presence: true, joinLeave: true } },
    });
    const channel = 'room:crash';
    const doomed = await startHubProcess(options);
    const survivor = await createTestServer(options);

    const alice = await survivor.client({ user: 'alice' });
    await alice.subscribe(channel);
    const bob = await ProtocolClient.open(doomed.wsUrl);
    const bobClient = (await bob.connect(await survivor.token('bob'))).client as string;
    await bob.subscribe(channel);
    await alice.waitFor((m) => m.push === 'join' && m.channel === channel && m.info?.user === 'bob');
    expect((await alice.call('presence', { channel })).users).toEqual(['alice', 'bob']);

    await doomed.kill();
    bob.terminate();
    const isBobLeaving = (m: ServerMessage): boolean => m.push === 'leave' && m.channel === channel && m.info?.user === 'bob';
    const leave = await alice.waitFor(isBobLeaving, 15_000, "bob's leave");
    expect(leave).toEqual({ push: 'leave', channel, info: { user: 'bob', client: bobClient } });

    // Exactly once: give further sweeps (every second here) time to run, then a sentinel
    // publication, which comes through the same Redis pub/sub channel after any earlier leave.
    await sleep(2_500);
    await survivor.hub.publish(channel, { sentinel: true });
    const sentinelAt = await until(() => {
      const i = alice.messages.findIndex((m) => m.push === 'pub' && m.channel === channel && m.data?.sentinel === true);
      return i >= 0 ? i + 1 : undefined;
    }, 'the sentinel publication');
    expect(alice.messages.slice(0, sentinelAt).filter(isBobLeaving)).toHaveLength(1);

    const presence = await alice.call('presence', { channel });
    expect(presence.users).toEqual(['alice']);
    expect(Object.keys(presence.clients)).not.toContain(bobClient);
  }, 40_000);
});

describe('history over WebSocket and GET /api/history', () => {
  const MAX = 20;

  async function setup(): Promise<{ server: TestServer; ws: ProtocolClient; epoch: string; channel: string }> {
    const server = await createTestServer(onRedis({ limits: { historyMaxLimit: MAX } }));
    const channel = 'chat:hist';
    const ws = await server.client({ user: 'alice' });
    expect(ws.connectResult.limits.historyMaxLimit).toBe(MAX);
    let epoch = '';
    for (let n = 1; n <= 3; n++) epoch = (await server.hub.publish(channel, { n })).epoch;
    return { server, ws, epoch, channel };
  }

  async function httpHistory(server: TestServer, query: string): Promise<{ status: number; body: any }> {
    const res = await fetch(`${server.httpUrl}/api/history?${query}`, { headers: { authorization: `apikey ${TEST_API_KEY}` } });
    return { status: res.status, body: await res.json() };
  }

  it('answers the same when the request is fine', async () => {
    const { server, ws, epoch, channel } = await setup();
    const viaWs = await ws.call('history', { channel, limit: MAX });
    const viaHttp = await httpHistory(server, `channel=${channel}&limit=${MAX}`);
    expect(viaHttp.status).toBe(200);
    expect(viaHttp.body).toEqual(viaWs);
    expect(viaWs.position).toEqual({ offset: 3, epoch });
    expect(viaWs.publications.map((p: any) => p.data.n)).toEqual([1, 2, 3]);

    const sinceWs = await ws.call('history', { channel, since: { offset: 1, epoch } });
    const sinceHttp = await httpHistory(server, `channel=${channel}&since=1&epoch=${epoch}`);
    expect(sinceHttp.body).toEqual(sinceWs);
    expect(sinceWs.publications.map((p: any) => p.offset)).toEqual([2, 3]);
  });

  it('refuses a limit above limits.historyMaxLimit with 107 on both (HTTP 400)', async () => {
    const { server, ws, epoch, channel } = await setup();
    for (const since of [undefined, { offset: 1, epoch }]) {
      const reply = await ws.request('history', { channel, limit: MAX + 1, ...(since ? { since } : {}) });
      expect(reply.error, JSON.stringify(reply)).toMatchObject({ code: 107 });
      expect(reply.result).toBeUndefined();

      const query = `channel=${channel}&limit=${MAX + 1}${since ? `&since=1&epoch=${epoch}` : ''}`;
      const res = await httpHistory(server, query);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toMatchObject({ code: 107, message: expect.stringMatching(/^limit:/) });
    }
  });

  it('refuses a since whose epoch is not the stream’s with 107 on both (HTTP 409)', async () => {
    const { server, ws, channel } = await setup();
    const reply = await ws.request('history', { channel, since: { offset: 1, epoch: 'notTheEpoch' } });
    expect(reply.error, JSON.stringify(reply)).toMatchObject({ code: 107 });
    expect(reply.result).toBeUndefined();

    const res = await httpHistory(server, `channel=${channel}&since=1&epoch=notTheEpoch`);
    expect(res.status, JSON.stringify(res.body)).toBe(409);
    expect(res.body.error).toMatchObject({ code: 107, message: expect.stringMatching(/^epoch:/) });
  });
});
