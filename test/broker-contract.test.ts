import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker, BrokerEventHandler, PublishResult } from '../src/broker/broker.js';
import type { HistoryOptions, Publication } from '../src/stream/types.js';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { MemoryBroker } from '../src/broker/memory.js';
import { RedisBroker } from '../src/broker/redis.js';
import { MemoryIdempotencyLog, SqliteIdempotencyLog } from '../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../src/history/memory-log.js';
import { SqliteHistoryLog } from '../src/history/sqlite-log.js';
import { openDatabase } from '../src/store/sqlite-db.js';

/**
 * One suite for every Broker implementation (the contract in src/broker/broker.ts). Each factory
 * returns a broker and a way to reopen it on the same durable state (undefined if it has none).
 */
interface BrokerUnderTest {
  broker: Broker;
  reopen?: () => Broker;
  cleanup: () => void | Promise<void>;
}

const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Delivery through Redis pub/sub is asynchronous: wait for it. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const factories: Record<string, { durable: boolean; create: (now: () => number) => BrokerUnderTest }> = {
  'memory broker + memory history': {
    durable: false,
    create: (now) => ({
      broker: new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog(), now }),
      cleanup: () => undefined,
    }),
  },
  'memory broker + SQLite history': { durable: true, create: (now) => sqliteBroker(now, false) },
  'memory broker + SQLite history, writes batched per turn (serve)': { durable: true, create: (now) => sqliteBroker(now, true) },
  'memory broker + SQLite history in its own transactions (stream-row cache), batched per turn': {
    durable: true,
    create: (now) => sqliteBroker(now, true, true),
  },
  'memory broker + SQLite history in its own transactions (stream-row cache), unbatched': {
    durable: true,
    create: (now) => sqliteBroker(now, false, true),
  },
  'Redis broker': { durable: true, create: redisBroker },
};

/** Each Redis broker under test gets its own key prefix, removed afterwards. */
function redisBroker(now: () => number): BrokerUnderTest {
  const prefix = `sbtest-${randomUUID()}`;
  const open = (): Broker => new RedisBroker({ url: REDIS_URL, prefix, now });
  return {
    broker: open(),
    reopen: open,
    cleanup: async () => {
      const redis = new Redis(REDIS_URL);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      await redis.quit();
    },
  };
}

/** `historyTransaction`: `atomically` is the history log's own transaction (what `switchboard serve` runs), else a plain one. */
function sqliteBroker(now: () => number, batchWrites: boolean, historyTransaction = false): BrokerUnderTest {
  const dir = mkdtempSync(join(tmpdir(), 'sb-broker-'));
  const dbs: ReturnType<typeof openDatabase>[] = [];
  const open = (): Broker => {
    const db = openDatabase(dir);
    dbs.push(db);
    const history = new SqliteHistoryLog(db);
    return new MemoryBroker({
      history,
      idempotency: new SqliteIdempotencyLog(db),
      atomically: historyTransaction ? (fn) => history.transaction(fn) : (fn) => db.transaction(fn)(),
      batchWrites,
      now,
    });
  };
  return {
    broker: open(),
    reopen: () => {
      for (const db of dbs) if (db.open) db.close();
      return open();
    },
    cleanup: () => {
      for (const db of dbs) if (db.open) db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const H: HistoryOptions = { size: 5, ttlMs: 60_000, metaTtlMs: 600_000 };

function collector(): BrokerEventHandler & { pubs: Array<{ channel: string; pub: Publication; epoch: string }> } {
  const pubs: Array<{ channel: string; pub: Publication; epoch: string }> = [];
  return {
    pubs,
    onPublication: (channel, pub, epoch) => pubs.push({ channel, pub, epoch }),
    onEvent: () => undefined,
    onControl: () => undefined,
  };
}

for (const [name, { durable, create: factory }] of Object.entries(factories)) {
  describe(`Broker contract: ${name}`, () => {
    let clock = 1_000_000;
    const now = (): number => clock;
    let under: BrokerUnderTest;
    afterEach(async () => {
      await under.broker.close();
      await under.cleanup();
    });

    it('numbers publications 1, 2, 3… in one epoch and delivers them in order', async () => {
      under = factory(now);
      const handler = collector();
      under.broker.setHandler(handler);
      await under.broker.subscribe('a');
      const results: PublishResult[] = [];
      for (let i = 0; i < 4; i++) results.push(await under.broker.publish('a', JSON.stringify({ i }), { history: H }));
      expect(results.map((r) => r.offset)).toEqual([1, 2, 3, 4]);
      expect(new Set(results.map((r) => r.epoch)).size).toBe(1);
      await until(() => handler.pubs.length === 4, 'four publications');
      expect(handler.pubs.map((p) => p.pub.offset)).toEqual([1, 2, 3, 4]);
      expect(handler.pubs[2]!.pub.data).toBe('{"i":2}');
      expect(handler.pubs.every((p) => p.epoch === results[0]!.epoch)).toBe(true);
    });

    it('keeps channels apart', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      await under.broker.publish('a', '1', { history: H });
      const b = await under.broker.publish('b', '2', { history: H });
      expect(b.offset).toBe(1);
      const hist = await under.broker.history('a', { sinceOffset: 0, limit: 10 }, H);
      expect(hist.publications.map((p) => p.data)).toEqual(['1']);
    });

    it('returns history after an offset, trims to size and reports the earliest kept', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      for (let i = 1; i <= 8; i++) await under.broker.publish('c', String(i), { history: H });
      const all = await under.broker.history('c', { sinceOffset: 0, limit: 100 }, H);
      expect(all.position.offset).toBe(8);
      expect(all.earliest).toBe(4);
      expect(all.publications.map((p) => p.offset)).toEqual([4, 5, 6, 7, 8]);
      const tail = await under.broker.history('c', { sinceOffset: 6, limit: 100 }, H);
      expect(tail.publications.map((p) => p.data)).toEqual(['7', '8']);
      const limited = await under.broker.history('c', { sinceOffset: 4, limit: 2 }, H);
      expect(limited.publications.map((p) => p.offset)).toEqual([5, 6]);
      const top = await under.broker.history('c', { limit: 0 }, H);
      expect(top.publications).toEqual([]);
      expect(top.position).toEqual(all.position);
    });

    it('stores nothing for a read of a stream that does not exist; the first publication creates the epoch', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      for (let i = 0; i < 3; i++) {
        const before = await under.broker.history('d', { sinceOffset: 0, limit: 10 }, H);
        expect(before).toEqual({ position: { offset: 0, epoch: '' }, publications: [], earliest: 1 });
      }
      const first = await under.broker.publish('d', '1', { history: H });
      expect(first.offset).toBe(1);
      expect(first.epoch).not.toBe('');
      const after = await under.broker.history('d', { limit: 0 }, H);
      expect(after.position).toEqual({ offset: 1, epoch: first.epoch });
    });

    it('bounds a read by maxBytes, returning at least one publication', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      const big = JSON.stringify('x'.repeat(1000));
      const roomy: HistoryOptions = { size: 20, ttlMs: 60_000, metaTtlMs: 600_000 };
      for (let i = 0; i < 10; i++) await under.broker.publish('m', big, { history: roomy });
      const page = await under.broker.history('m', { sinceOffset: 0, limit: 10, maxBytes: 3500 }, roomy);
      expect(page.publications.map((p) => p.offset)).toEqual([1, 2, 3]);
      const one = await under.broker.history('m', { sinceOffset: 3, limit: 10, maxBytes: 10 }, roomy);
      expect(one.publications.map((p) => p.offset)).toEqual([4]);
    });

    it('expires publications after ttl and starts a new epoch after the position expires', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      // Real, short TTLs: a Redis server expires keys on its own clock.
      const short: HistoryOptions = { size: 5, ttlMs: 150, metaTtlMs: 600 };
      const pass = async (ms: number): Promise<void> => {
        await new Promise((r) => setTimeout(r, ms));
        clock += ms;
      };
      const first = await under.broker.publish('e', '1', { history: short });
      await pass(250);
      const afterTtl = await under.broker.history('e', { sinceOffset: 0, limit: 10 }, short);
      expect(afterTtl.publications).toEqual([]);
      expect(afterTtl.position).toEqual({ offset: 1, epoch: first.epoch });
      expect(afterTtl.earliest).toBe(2);
      await pass(700);
      const next = await under.broker.publish('e', '2', { history: short });
      expect(next.offset).toBe(1);
      expect(next.epoch).not.toBe(first.epoch);
    });

    it('applies an idempotency key once within its window', async () => {
      under = factory(now);
      const handler = collector();
      under.broker.setHandler(handler);
      await under.broker.subscribe('f');
      const opts = { history: H, idempotencyKey: 'k1', idempotencyTtlMs: 120_000 };
      const a = await under.broker.publish('f', '"x"', opts);
      const b = await under.broker.publish('f', '"x"', opts);
      const c = await under.broker.publish('f', '"x"', opts);
      expect(a.duplicate).toBe(false);
      expect([b.duplicate, c.duplicate]).toEqual([true, true]);
      expect([b.offset, c.offset]).toEqual([a.offset, a.offset]);
      await under.broker.publish('f', '"other"', { history: H });
      await until(() => handler.pubs.length === 2, 'the next publication');
      expect(handler.pubs.map((p) => p.pub.data)).toEqual(['"x"', '"other"']);
      // Scoped per channel, and forgotten after the window.
      expect((await under.broker.publish('g', '"x"', opts)).duplicate).toBe(false);
      const short = { history: H, idempotencyKey: 'k2', idempotencyTtlMs: 50 };
      const first = await under.broker.publish('f', '"y"', short);
      await new Promise((r) => setTimeout(r, 60));
      clock += 60;
      expect((await under.broker.publish('f', '"y"', short)).offset).toBe(first.offset + 1);
    });

    it('publishes without history as offset 0 and keeps nothing', async () => {
      under = factory(now);
      const handler = collector();
      under.broker.setHandler(handler);
      await under.broker.subscribe('h');
      const none = { size: 0, ttlMs: 1000, metaTtlMs: 1000 };
      expect(await under.broker.publish('h', '1', { history: none })).toMatchObject({ offset: 0, epoch: '' });
      await until(() => handler.pubs.length === 1, 'the publication');
      expect((await under.broker.history('h', { sinceOffset: 0, limit: 10 }, none)).publications).toEqual([]);
    });

    if (!durable) return;

    it('keeps offsets, epoch and history across a reopen', async () => {
      under = factory(now);
      under.broker.setHandler(collector());
      const a = await under.broker.publish('r', '1', { history: H, idempotencyKey: 'once' });
      await under.broker.publish('r', '2', { history: H });
      await under.broker.close();
      under.broker = under.reopen!();
      under.broker.setHandler(collector());
      const c = await under.broker.publish('r', '3', { history: H });
      expect(c).toMatchObject({ offset: 3, epoch: a.epoch });
      const again = await under.broker.publish('r', '1', { history: H, idempotencyKey: 'once' });
      expect(again).toMatchObject({ offset: 1, duplicate: true });
      const hist = await under.broker.history('r', { sinceOffset: 0, limit: 10 }, H);
      expect(hist.publications.map((p) => p.data)).toEqual(['1', '2', '3']);
    });
  });
}
