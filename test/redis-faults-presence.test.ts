import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryPresenceStore } from '../src/presence/memory.js';
import type { ExpiredPresence } from '../src/presence/presence-store.js';
import { RedisPresenceStore } from '../src/presence/redis.js';
import { HubError } from '../src/protocol/errors.js';
import { closeRedis, createRedisConnection } from '../src/redis/connection.js';
import { OwnRedis } from './support/redis-server.js';

/**
 * RedisPresenceStore against a private redis-server that restarts empty, stalls past the TTL
 * or holds the entries of a node that died: presence heals within one refresh, the dead node's
 * entries are swept (each reported once), and nothing hangs.
 */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function ownRedis(): Promise<OwnRedis> {
  const redis = await OwnRedis.start();
  cleanups.push(() => redis.down());
  return redis;
}

/** A node's presence store on a connection of its own (connected). */
type Restored = { kind: 'presence' | 'online'; name: string; users: string[] };

async function node(
  redis: OwnRedis,
  ttlMs: number,
  commandTimeoutMs = 500,
  onRestored?: (r: Restored) => void,
): Promise<RedisPresenceStore & { conn: Redis }> {
  const conn = createRedisConnection(redis.url, { commandTimeoutMs });
  await until(() => conn.status === 'ready', 'the connection');
  const store = new RedisPresenceStore({ redis: conn, prefix: 'sb', ttlMs, commandTimeoutMs, ...(onRestored ? { onRestored } : {}) });
  cleanups.push(async () => {
    await store.close();
    await closeRedis(conn, 500);
  });
  return Object.assign(store, { conn });
}

const entry = (user: string, client: string): { user: string; client: string; connInfo: unknown } => ({
  user,
  client,
  connInfo: { n: client },
});
/** Waits until the node's refresh has rewritten the expiry of one entry it holds (a refresh ran). */
async function refreshed(store: RedisPresenceStore & { conn: Redis }, channel: string, client: string): Promise<void> {
  const key = `sb:presence:{${channel}}:expiry`;
  const before = await store.conn.zscore(key, client);
  await until(async () => (await store.conn.zscore(key, client)) !== before, `a refresh of ${channel}/${client}`);
}

const clients = async (store: RedisPresenceStore, channel: string): Promise<string[]> => Object.keys(await store.get(channel)).sort();

describe('RedisPresenceStore heals', () => {
  it('after a Redis restart without persistence: within one refresh, with per-user counts', async () => {
    const redis = await ownRedis();
    const restored: Restored[] = [];
    const a = await node(redis, 600, 500, (r) => restored.push(r));
    expect(await a.add('room', entry('ann', 'c1'))).toEqual({ userJoined: true });
    expect(await a.add('room', entry('ann', 'c2'))).toEqual({ userJoined: false });
    expect(await a.connectUser('ann', 'c1')).toEqual({ first: true });
    await redis.restart();
    await until(async () => (await clients(a, 'room')).length === 2, 'the entries to be back', 1_500);
    expect((await a.get('room')).c1).toEqual(entry('ann', 'c1'));
    await until(async () => (await a.onlineUsers(['ann', 'bob'])).has('ann'), 'ann to be online again', 1_500);
    // The node is told who came back, once per set (to publish join / store the status again).
    await until(() => restored.length >= 2, 'both sets to be reported restored');
    await refreshed(a, 'room', 'c1'); // a later refresh found nothing to restore: still two reports
    expect(restored.sort((x, y) => x.kind.localeCompare(y.kind))).toEqual([
      { kind: 'online', name: 'ann', users: ['ann'] },
      { kind: 'presence', name: 'room', users: ['ann'] },
    ]);
    // The counts came back with the entries: the user leaves with the last of them, once.
    expect(await a.remove('room', entry('ann', 'c1'))).toEqual({ userLeft: false });
    expect(await a.remove('room', entry('ann', 'c2'))).toEqual({ userLeft: true });
    expect(await a.disconnectUser('ann', 'c1')).toEqual({ last: true });
    // Sentinel: an entry held on another channel is refreshed; what was removed stays removed.
    await a.add('lobby', entry('ann', 'c9'));
    await refreshed(a, 'lobby', 'c9');
    await refreshed(a, 'lobby', 'c9');
    expect(await clients(a, 'room')).toEqual([]);
    expect(await a.onlineUsers(['ann'])).toEqual(new Set());
  });

  it('after an outage longer than the TTL (Redis stalled)', async () => {
    const redis = await ownRedis();
    const a = await node(redis, 600, 300);
    await a.add('room', entry('ann', 'c1'));
    await a.connectUser('ann', 'c1');
    redis.stall();
    await sleep(1_200); // twice the TTL: every entry is past its expiry when Redis comes back
    redis.resume();
    await until(async () => (await clients(a, 'room')).length === 1, 'the entry to be back', 1_500);
    await until(async () => (await a.onlineUsers(['ann'])).has('ann'), 'ann to be online again', 1_500);
  });
});

describe('RedisPresenceStore.sweepExpired', () => {
  it("removes a dead node's entries once, reporting the users that left", async () => {
    const redis = await ownRedis();
    const dead = await node(redis, 500);
    const alive = await node(redis, 500);
    const other = await node(redis, 500);
    await dead.add('room', entry('ann', 'd1'));
    await dead.add('room', entry('ann', 'd2'));
    await dead.add('room', entry('bob', 'd3'));
    await dead.add('hall', entry('cid', 'd4'));
    await alive.add('room', entry('bob', 'a1'));
    expect(await alive.sweepExpired()).toEqual([]);
    await dead.close(); // it stops refreshing: a crash

    await until(async () => (await clients(alive, 'room')).join() === 'a1', 'the dead entries to be hidden', 2_000);
    expect(await clients(alive, 'hall')).toEqual([]);
    // Three nodes sweep at once: each removal goes to exactly one of them.
    const swept = (await Promise.all([alive.sweepExpired(), other.sweepExpired(), alive.sweepExpired()])).flat();
    const byClient = (list: ExpiredPresence[]): Record<string, { channel: string; userLeft: boolean }> =>
      Object.fromEntries(list.map((s) => [s.info.client, { channel: s.channel, userLeft: s.userLeft }]));
    expect(swept).toHaveLength(4);
    const ann = swept.filter((s) => s.info.user === 'ann');
    expect(ann.map((s) => s.userLeft).sort()).toEqual([false, true]); // she left with her last entry
    expect(byClient(swept).d3).toEqual({ channel: 'room', userLeft: false }); // bob is still here through a1
    expect(byClient(swept).d4).toEqual({ channel: 'hall', userLeft: true });
    expect(swept.find((s) => s.info.client === 'd1')!.info).toEqual(entry('ann', 'd1'));
    expect(await alive.sweepExpired()).toEqual([]);

    // The live node's entry was refreshed all along and stays; counts are right afterwards.
    expect(await clients(other, 'room')).toEqual(['a1']);
    expect(await other.add('room', entry('ann', 'o1'))).toEqual({ userJoined: true });
    expect(await alive.remove('room', entry('bob', 'a1'))).toEqual({ userLeft: true });
    const direct = redis.connect();
    expect(await direct.exists('sb:presence:{hall}:entries')).toBe(0);
  });

  it('is there, and finds nothing, on the memory store', async () => {
    const memory = new MemoryPresenceStore();
    await memory.add('room', entry('ann', 'c1'));
    expect(await memory.sweepExpired()).toEqual([]);
  });
});

describe('RedisPresenceStore with a stalled Redis', () => {
  it('fails every call with 114 within the command timeout', async () => {
    const redis = await ownRedis();
    const a = await node(redis, 60_000, 300);
    await a.add('room', entry('ann', 'c1'));
    redis.stall();
    const calls: Array<() => Promise<unknown>> = [
      () => a.add('room', entry('bob', 'c2')),
      () => a.remove('room', entry('ann', 'c1')),
      () => a.get('room'),
      () => a.connectUser('ann', 'c1'),
      () => a.disconnectUser('ann', 'c1'),
      () => a.onlineUsers(['ann']),
      () => a.sweepExpired(),
    ];
    for (const call of calls) {
      const started = Date.now();
      const err = await Promise.race([
        call().then(
          () => 'resolved',
          (e: unknown) => e,
        ),
        sleep(3_000).then(() => 'hung'),
      ]);
      expect(err).toBeInstanceOf(HubError);
      expect((err as HubError).code).toBe(114);
      expect(Date.now() - started).toBeLessThan(1_000);
    }
  });
});
