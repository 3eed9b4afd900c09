import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBroker } from '../src/broker/memory.js';
import { notificationsChannel, type ResolvedChannel } from '../src/channels/channels.js';
import { applyEnv } from '../src/config/load.js';
import { OptionsError, resolveOptions } from '../src/config/options.js';
import { MemoryIdempotencyLog } from '../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../src/history/memory-log.js';
import { DurableChannelsBroker } from '../src/postgres/durable-broker.js';
import { migrate } from '../src/postgres/migrations.js';
import { PgPool } from '../src/postgres/pool.js';
import { isDurableChannel } from '../src/postgres/service.js';
import { PgStore } from '../src/postgres/store.js';
import { HubError } from '../src/protocol/errors.js';
import { ReadReceipts } from '../src/receipts/read-receipts.js';
import type { HistoryOptions } from '../src/stream/types.js';
import { closeAllServers, createTestServer } from './support/harness.js';
import { dropSchemas, PG_URL, testSchema } from './support/postgres.js';
import { OwnRedis } from './support/redis-server.js';
import { TcpProxy } from './support/tcp-proxy.js';

/**
 * `store: "postgres"`: read positions, statuses and the notification inbox in PostgreSQL — the
 * store contract, a long-lived inbox (a user back after a month), a Redis FLUSHALL losing
 * nothing of it, and a stalled PostgreSQL answered with 114 within the bound.
 */
const logger = pino({ level: 'silent' });
const pools: PgPool[] = [];
const redises: OwnRedis[] = [];
const proxies: TcpProxy[] = [];

afterEach(async () => {
  await closeAllServers();
  for (const p of proxies.splice(0)) await p.close();
  for (const p of pools.splice(0)) await p.close();
  for (const r of redises.splice(0)) await r.down();
  await dropSchemas();
});

async function migratedPool(schema: string): Promise<PgPool> {
  const pool = new PgPool({ url: PG_URL, queryTimeoutMs: 5_000, connectTimeoutMs: 5_000, size: 4, logger });
  pools.push(pool);
  await migrate(pool, { schema, table: 'switchboard_outbox' });
  return pool;
}

const DAY = 86_400_000;

describe('PostgreSQL store options', () => {
  it('names the bad field, the conflict, and takes the URL from the environment', () => {
    expect(() => resolveOptions({ auth: { allowAnonymous: true }, store: 'postgres' })).toThrow(/store: "postgres" needs postgres.url/);
    expect(() => resolveOptions({ auth: { allowAnonymous: true }, postgres: { url: 'mysql://x' } })).toThrow(/postgres\.url: must be a postgres:\/\//);
    expect(() => resolveOptions({ auth: { allowAnonymous: true }, postgres: { url: PG_URL, schema: 'Bad-Name' } })).toThrow(
      /postgres\.schema: must be a lowercase SQL identifier/,
    );
    expect(() => resolveOptions({ auth: { allowAnonymous: true }, postgres: { url: PG_URL, outbox: { tabel: 'x' } } })).toThrow(OptionsError);
    const env = applyEnv({ auth: { allowAnonymous: true }, store: 'postgres' }, { SWITCHBOARD_POSTGRES_URL: PG_URL });
    const o = resolveOptions(env);
    expect(o.postgres).toMatchObject({ url: PG_URL, schema: 'public', outbox: { table: 'switchboard_outbox', enabled: true } });
    // A long-lived inbox by default when notifications live in PostgreSQL.
    expect(o.namespaces.notifications!.history).toEqual({ size: 10_000, ttlSeconds: 365 * 86_400, metaTtlSeconds: 730 * 86_400 });
  });
});

describe('PgStore', () => {
  it('holds the store contract: forward-only positions per epoch, readers, statuses, retention', async () => {
    const schema = testSchema();
    const pool = await migratedPool(schema);
    let now = 1_000_000;
    const store = new PgStore(pool, { schema, retentionMs: 10 * DAY, now: () => now });
    try {
      expect(await store.lastRead('ann', 'chat:a')).toBeUndefined();
      expect(await store.markRead('ann', 'chat:a', { offset: 5, epoch: 'e1' })).toEqual({ offset: 5, epoch: 'e1' });
      expect(await store.markRead('ann', 'chat:a', { offset: 3, epoch: 'e1' })).toEqual({ offset: 5, epoch: 'e1' });
      expect(await store.markRead('ann', 'chat:a', { offset: 2, epoch: 'e2' })).toEqual({ offset: 2, epoch: 'e2' });
      await store.markRead('ben', 'chat:a', { offset: 1, epoch: 'e2' });
      expect(await store.readers('chat:a')).toEqual({ ann: { offset: 2, epoch: 'e2' }, ben: { offset: 1, epoch: 'e2' } });
      await store.setStatus('ann', { status: 'busy', lastSeen: 42 });
      expect(await store.statuses(['ann', 'nobody'])).toEqual({ ann: { status: 'busy', lastSeen: 42 }, nobody: { status: 'offline', lastSeen: 0 } });
      now += 5 * DAY;
      await store.markRead('ben', 'chat:a', { offset: 2, epoch: 'e2' });
      now += 6 * DAY; // ann's rows are 11 days old, ben's 6
      expect(await store.prune()).toBe(2);
      expect(await store.readers('chat:a')).toEqual({ ben: { offset: 2, epoch: 'e2' } });
      expect((await store.statuses(['ann'])).ann!.status).toBe('offline');
    } finally {
      await store.close();
    }
  });

  it('a user back after a month sees every notification, paged, and the right unread count', async () => {
    const schema = testSchema();
    const pool = await migratedPool(schema);
    let now = Date.UTC(2026, 0, 1);
    const clock = (): number => now;
    const inner = new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
    const broker = new DurableChannelsBroker({ inner, pool, schema, logger, isDurable: isDurableChannel, now: clock });
    const store = new PgStore(pool, { schema, now: clock });
    const options = resolveOptions({ auth: { allowAnonymous: true }, store: 'postgres', postgres: { url: PG_URL } });
    const ns = options.namespaces.notifications!;
    const history: HistoryOptions = { size: ns.history.size, ttlMs: ns.history.ttlSeconds * 1000, metaTtlMs: ns.history.metaTtlSeconds * 1000 };
    const channel = notificationsChannel('carol');
    const ch = { name: channel, namespace: 'notifications', options: ns, history } as unknown as ResolvedChannel;
    const receipts = new ReadReceipts(broker, store);
    try {
      // 1,200 notifications over a day (four writers at once), 40 of them read; then 35 days of silence.
      const total = 1_200;
      let next = 0;
      const writer = async (): Promise<void> => {
        while (next < total) {
          const i = next++;
          await broker.publish(channel, JSON.stringify({ i }), { history, idempotencyKey: `n-${i}` });
          now += 60_000;
        }
      };
      await Promise.all([writer(), writer(), writer(), writer()]);
      expect((await receipts.markRead('carol', ch, 40)).unread).toBe(total - 40);
      now += 35 * DAY;
      await store.prune();
      await broker.publish(channel, JSON.stringify({ i: 'back' }), { history });
      const state = await receipts.readState('carol', ch);
      expect(state).toMatchObject({ lastRead: 40, top: total + 1, unread: total - 39 });
      const seen: unknown[] = [];
      let since = 0;
      for (;;) {
        const page = await broker.history(channel, { sinceOffset: since, limit: 200 }, history);
        expect(page.earliest).toBe(1);
        if (page.publications.length === 0) break;
        seen.push(...page.publications.map((p) => JSON.parse(p.data)));
        since = page.publications.at(-1)!.offset;
      }
      expect(seen.at(-1)).toEqual({ i: 'back' });
      expect(seen.slice(0, -1).map((d) => (d as { i: number }).i).sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i));
    } finally {
      await broker.close();
      await store.close();
    }
  }, 120_000);
});

describe('store: "postgres" with Redis', () => {
  it('unread counts, statuses and the notification inbox survive a Redis FLUSHALL; notifications stay live across nodes', async () => {
    const redis = await OwnRedis.start();
    redises.push(redis);
    const schema = testSchema();
    const options = { redisUrl: redis.url, store: 'postgres' as const, postgres: { url: PG_URL, schema, outbox: { enabled: false } } };
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const channel = notificationsChannel('dave');
    for (let i = 1; i <= 3; i++) await a.hub.notify('dave', { n: i });
    const dave = await b.client({ user: 'dave' });
    expect(await dave.call('markRead', { channel, offset: 1 })).toMatchObject({ lastRead: 1, unread: 2 });
    await dave.close();
    await expect.poll(async () => (await a.hub.statuses(['dave'])).dave, { timeout: 5_000 }).toMatchObject({ status: 'offline' });
    const lastSeen = (await a.hub.statuses(['dave'])).dave!.lastSeen;
    expect(lastSeen).toBeGreaterThan(0);

    await redis.connect().flushall();
    // Still known (a Redis store would now answer {offline, lastSeen: 0}).
    const afterFlush = (await a.hub.statuses(['dave'])).dave!;
    expect(afterFlush.status).toBe('offline');
    expect(afterFlush.lastSeen).toBeGreaterThanOrEqual(lastSeen);

    const back = await a.client({ user: 'dave' });
    expect(await back.call('readState', { channel })).toMatchObject({ lastRead: 1, top: 3, unread: 2 });
    const top = (await back.call('history', { channel, limit: 0 })).position;
    const page = await back.call('history', { channel, since: { offset: 0, epoch: top.epoch }, limit: 10 });
    expect(page.publications.map((p: { data: unknown }) => p.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    // Live on node A for a notification sent on node B, after the flush.
    await back.subscribe(channel, top);
    await b.hub.notify('dave', { n: 4 });
    const live = await back.waitFor((m) => m.push === 'pub' && m.channel === channel);
    expect(live).toMatchObject({ offset: 4, data: { n: 4 } });
    expect(await back.call('readState', { channel })).toMatchObject({ unread: 3 });
  });

  it('a stalled PostgreSQL is answered with 114 within the bound, and the store works again once it answers', async () => {
    const proxy = new TcpProxy(5432);
    proxies.push(proxy);
    await proxy.start();
    const schema = testSchema();
    const url = `postgres://postgres@127.0.0.1:${proxy.port}/test`;
    const server = await createTestServer({ store: 'postgres', postgres: { url, schema, queryTimeoutMs: 500, connectTimeoutMs: 500, outbox: { enabled: false } } });
    const channel = notificationsChannel('erin');
    await server.hub.notify('erin', { n: 1 });
    const erin = await server.client({ user: 'erin' });
    expect(await erin.call('readState', { channel })).toMatchObject({ unread: 1 });
    proxy.freeze();
    const started = Date.now();
    expect(await erin.errorCode('readState', { channel })).toBe(114);
    expect(Date.now() - started).toBeLessThan(4_000);
    await expect(server.hub.notify('erin', { n: 2 })).rejects.toSatisfy((e: unknown) => e instanceof HubError && e.code === 114);
    proxy.thaw();
    proxy.cutAll(); // connections that were frozen are dead to their clients anyway
    await expect.poll(async () => (await erin.call('readState', { channel }).catch(() => null))?.unread, { timeout: 10_000 }).toBe(1);
  });
});

describe('PgPool', () => {
  it('a connection cut in the middle of a transaction fails that transaction with 114, never the process, and the pool goes on', async () => {
    const proxy = new TcpProxy(5432);
    proxies.push(proxy);
    await proxy.start();
    const pool = new PgPool({ url: `postgres://postgres@127.0.0.1:${proxy.port}/test`, queryTimeoutMs: 10_000, connectTimeoutMs: 2_000, size: 2, logger });
    pools.push(pool);
    let inside!: () => void;
    const entered = new Promise<void>((resolve) => (inside = resolve));
    // The client is checked out (no pool listener on it) when its connection goes.
    const tx = pool.transaction(async (q) => {
      inside();
      return q.query('SELECT pg_sleep(8)');
    });
    await entered;
    await new Promise((r) => setTimeout(r, 100)); // the pg_sleep is on the wire
    proxy.cutAll();
    await expect(tx).rejects.toSatisfy((e: unknown) => e instanceof HubError && e.code === 114);
    // An unhandled 'error' on the client would have failed this file (vitest reports it).
    expect((await pool.transaction((q) => q.query<{ n: number }>('SELECT 1 AS n'))).rows[0]!.n).toBe(1);
  });
});
