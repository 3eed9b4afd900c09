/**
 * History of latest-value streams (`HistoryOptions.latest`, namespaces with delivery "latest"),
 * on every store (memory, SQLite, Redis with its own key prefix):
 * - a publication replaces the previous one of its key (without a key: the channel's one), so a
 *   key published long ago (many publications of other keys since) is still held;
 * - offsets stay monotonic (+1 per publication), the held ones have gaps, reads after an offset
 *   return the held ones above it, oldest change first, in pages (limit, bytes);
 * - past `size` keys the least recently changed go; expired ones go too;
 * - SQLite keeps it across a reopen; a new epoch starts with no keys.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { Broker } from '../src/broker/broker.js';
import { MemoryBroker } from '../src/broker/memory.js';
import { RedisBroker } from '../src/broker/redis.js';
import { MemoryIdempotencyLog, SqliteIdempotencyLog } from '../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../src/history/memory-log.js';
import { SqliteHistoryLog } from '../src/history/sqlite-log.js';
import { openDatabase } from '../src/store/sqlite-db.js';
import type { HistoryOptions, Publication } from '../src/stream/types.js';

const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const LATEST: HistoryOptions = { size: 4, ttlMs: 60_000, metaTtlMs: 600_000, latest: true };

interface Store {
  broker: Broker;
  /** The same durable state opened again (undefined for memory). */
  reopen?: () => Broker;
  cleanup: () => void | Promise<void>;
}

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

const stores: Record<string, (now: () => number) => Store> = {
  memory: (now) => ({
    broker: new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog(), now }),
    cleanup: () => undefined,
  }),
  SQLite: (now) => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-latest-'));
    const dbs: ReturnType<typeof openDatabase>[] = [];
    const open = (): Broker => {
      for (const db of dbs) if (db.open) db.close();
      const db = openDatabase(dir);
      dbs.push(db);
      return new MemoryBroker({
        history: new SqliteHistoryLog(db),
        idempotency: new SqliteIdempotencyLog(db),
        atomically: (fn) => db.transaction(fn)(),
        now,
      });
    };
    return {
      broker: open(),
      reopen: open,
      cleanup: () => {
        for (const db of dbs) if (db.open) db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  Redis: (now) => {
    const prefix = `sbtest-latest-${randomUUID()}`;
    const open = (): Broker => new RedisBroker({ url: REDIS_URL, prefix, now });
    const opened: Broker[] = [];
    const track = (): Broker => {
      const b = open();
      opened.push(b);
      return b;
    };
    return {
      broker: track(),
      reopen: track,
      cleanup: async () => {
        await Promise.all(opened.map((b) => b.close()));
        const redis = new Redis(REDIS_URL);
        const keys = await redis.keys(`${prefix}:*`);
        if (keys.length) await redis.del(...keys);
        await redis.quit();
      },
    };
  },
};

function setup(name: string): { broker: Broker; reopen?: () => Broker; clock: { t: number } } {
  const clock = { t: 1_000_000 };
  const store = stores[name]!(() => clock.t);
  cleanups.push(() => store.broker.close(), store.cleanup);
  return { broker: store.broker, reopen: store.reopen, clock };
}

async function publish(broker: Broker, channel: string, value: unknown, key?: string, options: HistoryOptions = LATEST): Promise<number> {
  const info = key === undefined ? undefined : { user: 'u', client: 'c', key };
  const r = await broker.publish(channel, JSON.stringify(value), { history: options, ...(info ? { info } : {}) });
  return r.offset;
}

/** Deletes the meta hashes of the broker's prefix, as their expiry would (the stream keys stay). */
async function forgetRedisMeta(broker: Broker): Promise<void> {
  const prefix = (broker as unknown as { prefix: string }).prefix;
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`${prefix}:meta:*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    await redis.quit();
  }
}

const held = (pubs: Publication[]): Array<[string, unknown, number]> =>
  pubs.map((p) => [p.info?.key ?? '', JSON.parse(p.data) as unknown, p.offset]);

for (const name of Object.keys(stores)) {
  describe(`latest-value history: ${name}`, () => {
    it('holds the newest publication of every key however many came since; offsets stay monotonic', async () => {
      const { broker, reopen } = setup(name);
      const ch = `game:${randomUUID()}`;
      expect(await publish(broker, ch, 'old-a', 'a')).toBe(1);
      expect(await publish(broker, ch, 'plain-1')).toBe(2);
      // Far more publications than the size, all of one key: a and '' stay held.
      for (let i = 0; i < 30; i++) expect(await publish(broker, ch, i, 'b')).toBe(3 + i);
      expect(await publish(broker, ch, 'plain-2')).toBe(33);

      const all = await broker.history(ch, { sinceOffset: 0, limit: 100 }, LATEST);
      expect(all.position.offset).toBe(33);
      expect(held(all.publications)).toEqual([
        ['a', 'old-a', 1],
        ['b', 29, 32],
        ['', 'plain-2', 33],
      ]);
      expect(all.earliest).toBe(1);

      // After an offset: only the keys changed since; pages by limit and by bytes.
      expect(held((await broker.history(ch, { sinceOffset: 1, limit: 100 }, LATEST)).publications)).toEqual([
        ['b', 29, 32],
        ['', 'plain-2', 33],
      ]);
      expect(held((await broker.history(ch, { sinceOffset: 0, limit: 2 }, LATEST)).publications).map((p) => p[2])).toEqual([1, 32]);
      expect((await broker.history(ch, { sinceOffset: 0, limit: 100, maxBytes: 1 }, LATEST)).publications).toHaveLength(1);
      expect((await broker.history(ch, { limit: 0 }, LATEST)).publications).toEqual([]);

      if (reopen) {
        const again = reopen();
        cleanups.push(() => again.close());
        const read = await again.history(ch, { sinceOffset: 0, limit: 100 }, LATEST);
        expect(read.position).toEqual(all.position);
        expect(held(read.publications)).toEqual(held(all.publications));
        expect(await publish(again, ch, 'new-a', 'a')).toBe(34);
        expect(held((await again.history(ch, { sinceOffset: 0, limit: 100 }, LATEST)).publications)).toEqual([
          ['b', 29, 32],
          ['', 'plain-2', 33],
          ['a', 'new-a', 34],
        ]);
      }
    });

    it('past size keys the least recently changed go; expired keys go; a new epoch starts with none', async () => {
      const { broker, clock } = setup(name);
      const ch = `game:${randomUUID()}`;
      for (const k of ['k1', 'k2', 'k3', 'k4']) await publish(broker, ch, k, k);
      await publish(broker, ch, 'k1-again', 'k1');
      await publish(broker, ch, 'k5', 'k5');
      const read = await broker.history(ch, { sinceOffset: 0, limit: 100 }, LATEST);
      expect(held(read.publications).map((p) => p[0])).toEqual(['k3', 'k4', 'k1', 'k5']);
      expect(read.earliest).toBe(3);

      // k3 and k4 expire; k1 and k5 are refreshed after them.
      clock.t += 30_000;
      await publish(broker, ch, 'k1-late', 'k1');
      await publish(broker, ch, 'k5-late', 'k5');
      clock.t += 40_000;
      const later = await broker.history(ch, { sinceOffset: 0, limit: 100 }, LATEST);
      expect(held(later.publications)).toEqual([
        ['k1', 'k1-late', 7],
        ['k5', 'k5-late', 8],
      ]);
      // A key whose publication expired counts as new again: the others are not pushed out.
      await publish(broker, ch, 'k3-new', 'k3');
      expect(held((await broker.history(ch, { sinceOffset: 0, limit: 100 }, LATEST)).publications).map((p) => p[0])).toEqual([
        'k1',
        'k5',
        'k3',
      ]);

      // The stream is forgotten after metaTtl: a new epoch, offsets from 1, no old keys. (Redis
      // forgets by key expiry on its own clock: there the stream's keys are deleted.)
      clock.t += 700_000;
      if (name === 'Redis') await forgetRedisMeta(broker);
      expect(await publish(broker, ch, 'fresh', 'k9')).toBe(1);
      const fresh = await broker.history(ch, { sinceOffset: 0, limit: 100 }, LATEST);
      expect(held(fresh.publications)).toEqual([['k9', 'fresh', 1]]);
      expect(fresh.position.epoch).not.toBe(read.position.epoch);
    });

    it('a stream that is not latest-value keeps every publication', async () => {
      const { broker } = setup(name);
      const ch = `chat:${randomUUID()}`;
      const plain: HistoryOptions = { size: 4, ttlMs: 60_000, metaTtlMs: 600_000 };
      for (let i = 0; i < 6; i++) await publish(broker, ch, i, 'same', plain);
      const read = await broker.history(ch, { sinceOffset: 0, limit: 100 }, plain);
      expect(held(read.publications).map((p) => p[1])).toEqual([2, 3, 4, 5]);
      expect(read.earliest).toBe(3);
    });
  });
}
