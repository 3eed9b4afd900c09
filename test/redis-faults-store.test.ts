import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { HubError } from '../src/protocol/errors.js';
import { closeRedis, createRedisConnection } from '../src/redis/connection.js';
import { RedisChannelDirectory } from '../src/stats/redis-directory.js';
import { MemoryStore } from '../src/store/memory.js';
import { RedisStore } from '../src/store/redis.js';
import { openDatabase } from '../src/store/sqlite-db.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store } from '../src/store/store.js';
import { OwnRedis } from './support/redis-server.js';

/**
 * Read positions and statuses are kept for a retention after their last write, then pruned, in
 * every store; the Redis store and the channel directory fail with 114 within the command
 * timeout when Redis stalls, and close within a bounded time.
 */
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it holds (or fails the test after 10 s). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
const DAY = 86_400_000;
const pos = (offset: number): { offset: number; epoch: string } => ({ offset, epoch: 'ep' });

async function ownRedis(): Promise<OwnRedis> {
  const redis = await OwnRedis.start();
  cleanups.push(() => redis.down());
  return redis;
}

async function connection(redis: OwnRedis, commandTimeoutMs = 500): Promise<Redis> {
  const conn = createRedisConnection(redis.url, { commandTimeoutMs });
  cleanups.push(() => closeRedis(conn, 500));
  const deadline = Date.now() + 5_000;
  while (conn.status !== 'ready') {
    if (Date.now() > deadline) throw new Error('no connection');
    await sleep(10);
  }
  return conn;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-store-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What every store must do with an injected clock: forget what was not written for the retention. */
async function checkPruning(make: (now: () => number) => Store & { prune(): Promise<number> }): Promise<void> {
  let clock = 10 * DAY;
  const store = make(() => clock);
  cleanups.push(() => store.close());
  await store.markRead('old', 'ch', pos(3));
  await store.setStatus('old', { status: 'away', lastSeen: 1 });
  clock += 20 * DAY;
  await store.markRead('new', 'ch', pos(5));
  await store.setStatus('new', { status: 'busy', lastSeen: 2 });
  expect(await store.prune()).toBe(0);
  clock += 15 * DAY; // 'old' was written 35 days ago, 'new' 15 days ago
  expect(await store.prune()).toBe(2);
  expect(await store.lastRead('old', 'ch')).toBeUndefined();
  expect(await store.readers('ch')).toEqual({ new: pos(5) });
  expect(await store.statuses(['old', 'new'])).toEqual({
    old: { status: 'offline', lastSeen: 0 },
    new: { status: 'busy', lastSeen: 2 },
  });
  // A write keeps a row alive, even one that does not move the position.
  clock += 10 * DAY;
  await store.markRead('new', 'ch', pos(1));
  clock += 10 * DAY;
  expect(await store.prune()).toBe(1); // the status of 'new' (25 days); its position was written 10 days ago
  expect(await store.lastRead('new', 'ch')).toEqual(pos(5));
}

describe('store retention', () => {
  it('MemoryStore prunes what was not written for the retention', async () => {
    await checkPruning((now) => new MemoryStore({ retentionMs: 30 * DAY, now }));
  });

  it('SqliteStore prunes what was not written for the retention', async () => {
    const db = openDatabase(tempDir());
    cleanups.push(() => db.close());
    await checkPruning((now) => new SqliteStore(db, { retentionMs: 30 * DAY, now }));
  });

  it('SqliteStore migrates tables without updated_at, counting their rows as written now, and sweeps by itself', async () => {
    const dir = tempDir();
    const old = new Database(join(dir, 'switchboard.db'));
    old.exec(`
      CREATE TABLE read_positions (user TEXT NOT NULL, channel TEXT NOT NULL, offset INTEGER NOT NULL, epoch TEXT NOT NULL,
        PRIMARY KEY (channel, user)) WITHOUT ROWID;
      CREATE TABLE user_status (user TEXT PRIMARY KEY, status TEXT NOT NULL, last_seen INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO read_positions VALUES ('ann', 'ch', 7, 'ep');
      INSERT INTO user_status VALUES ('ann', 'away', 123);
    `);
    old.close();
    const db = openDatabase(dir);
    cleanups.push(() => db.close());
    let clock = 100 * DAY;
    const store = new SqliteStore(db, { retentionMs: DAY, now: () => clock, sweepIntervalMs: 20 });
    cleanups.push(() => store.close());
    expect(await store.lastRead('ann', 'ch')).toEqual(pos(7));
    expect((await store.statuses(['ann'])).ann).toEqual({ status: 'away', lastSeen: 123 });
    await sleep(100);
    expect(await store.lastRead('ann', 'ch')).toEqual(pos(7)); // migrated rows count as written now
    clock += DAY + 1;
    await eventually(async () => (await store.lastRead('ann', 'ch')) === undefined, 'the periodic sweep');
    expect((await store.statuses(['ann'])).ann).toEqual({ status: 'offline', lastSeen: 0 });
    // Reopening an already migrated database is fine.
    const again = new SqliteStore(db, { retentionMs: DAY, now: () => clock });
    await again.close();
  });

  it('RedisStore gives keys a TTL refreshed on write, and prunes stale users of a channel', async () => {
    const redis = await ownRedis();
    const conn = await connection(redis);
    const direct = redis.connect();
    let clock = 10 * DAY;
    const store = new RedisStore(conn, 'sb', { retentionMs: 30 * DAY, now: () => clock });
    await store.markRead('old', 'ch', pos(3));
    await store.setStatus('old', { status: 'away', lastSeen: 1 });
    for (const key of ['sb:reads:{ch}', 'sb:reads-at:{ch}', 'sb:status:{old}']) {
      const ttl = await direct.pttl(key);
      expect(ttl, key).toBeGreaterThan(29 * DAY);
      expect(ttl, key).toBeLessThanOrEqual(30 * DAY);
    }
    clock += 31 * DAY;
    await store.markRead('new', 'ch', pos(5)); // the write drops the users gone stale
    expect(await store.readers('ch')).toEqual({ new: pos(5) });

    // Real expiry, with a tiny retention.
    const short = new RedisStore(conn, 'sb2', { retentionMs: 200 });
    await short.markRead('ann', 'c', pos(1));
    await short.setStatus('ann', { status: 'busy', lastSeen: 5 });
    expect((await short.statuses(['ann'])).ann?.status).toBe('busy');
    await eventually(async () => (await direct.keys('sb2:*')).length === 0, 'the keys to expire');
    expect(await short.readers('c')).toEqual({});
    expect((await short.statuses(['ann'])).ann).toEqual({ status: 'offline', lastSeen: 0 });
    expect(await direct.keys('sb2:*')).toEqual([]);
  });

  it('RedisStore still reads statuses of the old single hash, and moves them out on write', async () => {
    const redis = await ownRedis();
    const conn = await connection(redis);
    const direct = redis.connect();
    await direct.hset(
      'sb:status',
      'ann',
      JSON.stringify({ status: 'away', lastSeen: 9 }),
      'bob',
      JSON.stringify({ status: 'busy', lastSeen: 8 }),
    );
    const store = new RedisStore(conn, 'sb', { retentionMs: DAY });
    expect(await store.statuses(['ann', 'bob', 'cid'])).toEqual({
      ann: { status: 'away', lastSeen: 9 },
      bob: { status: 'busy', lastSeen: 8 },
      cid: { status: 'offline', lastSeen: 0 },
    });
    await store.setStatus('ann', { status: 'online', lastSeen: 10 });
    expect(await direct.hkeys('sb:status')).toEqual(['bob']);
    expect((await store.statuses(['ann'])).ann).toEqual({ status: 'online', lastSeen: 10 });
    expect(await direct.pttl('sb:status')).toBeGreaterThan(0);
  });
});

async function expectTemporaryWithin(call: () => Promise<unknown>, ms: number): Promise<void> {
  const started = Date.now();
  const err = await Promise.race([
    call().then(
      () => 'resolved',
      (e: unknown) => e,
    ),
    sleep(ms + 2_000).then(() => 'hung'),
  ]);
  expect(err).toBeInstanceOf(HubError);
  expect((err as HubError).code).toBe(114);
  expect(Date.now() - started).toBeLessThan(ms);
}

describe('RedisStore and RedisChannelDirectory with a stalled Redis', () => {
  it('fail every call with 114 within the command timeout, and close in bounded time', async () => {
    const redis = await ownRedis();
    const conn = await connection(redis, 300);
    const store = new RedisStore(conn, 'sb', { commandTimeoutMs: 300 });
    const directory = new RedisChannelDirectory(conn, 'sb', () => new Map([['a', 1]]), 60_000, undefined, 300);
    expect(await directory.channels()).toEqual(new Map([['a', 1]]));
    redis.stall();
    await expectTemporaryWithin(() => store.markRead('u', 'c', pos(1)), 1_000);
    await expectTemporaryWithin(() => store.lastRead('u', 'c'), 1_000);
    await expectTemporaryWithin(() => store.readers('c'), 1_000);
    await expectTemporaryWithin(() => store.setStatus('u', { status: 'busy', lastSeen: 1 }), 1_000);
    await expectTemporaryWithin(() => store.statuses(['u']), 1_000);
    await expectTemporaryWithin(() => directory.channels(), 1_500);
    await expectTemporaryWithin(() => directory.nodes(), 1_000);
    const started = Date.now();
    await directory.close();
    await store.close();
    await closeRedis(conn, 300);
    expect(Date.now() - started).toBeLessThan(1_500);
  });
});
