import { afterEach, describe, expect, it } from 'vitest';
import { notificationsChannel } from '../src/channels/channels.js';
import { pino } from 'pino';
import { HubError } from '../src/protocol/errors.js';
import { LOCK_SPACE } from '../src/postgres/migrations.js';
import { OutboxConsumer } from '../src/postgres/outbox.js';
import { PgPool } from '../src/postgres/pool.js';
import { FaultyOutboxSink } from './support/faulty-outbox-sink.js';
import { closeAllServers, createTestServer } from './support/harness.js';
import { dropSchemas, PG_URL, range, sql, testSchema, until, writeRows } from './support/postgres.js';

/**
 * The transactional outbox against the shared PostgreSQL (each test in a schema of its own):
 * what an application commits is published once, what it rolls back never, in commit order per
 * channel; notifications inserted the same way reach the user live and count as unread.
 */
afterEach(async () => {
  await closeAllServers();
  await dropSchemas();
});

async function outboxServer(schema: string, extra: Record<string, unknown> = {}) {
  return createTestServer({ postgres: { url: PG_URL, schema, outbox: { pollIntervalMs: 200 } }, ...extra });
}

/** The hub's server-side publish and notify, as the outbox consumer's sink (through a fault double). */
function hubSink(hub: Awaited<ReturnType<typeof createTestServer>>['hub']): FaultyOutboxSink {
  return new FaultyOutboxSink({
    publish: (channel, data, key) => hub.publish(channel, data, { idempotencyKey: key }),
    notify: (user, data, key) => hub.notify(user, data, { idempotencyKey: key }),
  });
}

async function pendingRows(schema: string): Promise<number> {
  const db = await sql();
  try {
    return Number((await db.query(`SELECT count(*) AS n FROM "${schema}".switchboard_outbox WHERE failed_at IS NULL`)).rows[0].n);
  } finally {
    await db.end();
  }
}

async function waitForEmpty(schema: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await pendingRows(schema)) > 0) {
    if (Date.now() > deadline) throw new Error('outbox not drained');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('outbox consumer', () => {
  it('publishes a committed row once and a rolled-back one never, and removes consumed rows', async () => {
    const schema = testSchema();
    const server = await outboxServer(schema);
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:news');
    const db = await sql();
    try {
      await db.query('BEGIN');
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ('chat:news', '{"n":1}')`);
      await db.query('COMMIT');
      await db.query('BEGIN');
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ('chat:news', '{"n":"rolled back"}')`);
      await db.query('ROLLBACK');
      // The sentinel, through the provided function, inside a transaction with other work.
      await db.query('BEGIN');
      await db.query(`SELECT "${schema}".switchboard_publish('chat:news', '{"n":2}'::jsonb)`);
      await db.query('COMMIT');
    } finally {
      await db.end();
    }
    const got = await sub.waitForPushes(2, (m) => m.push === 'pub');
    expect(got.map((m) => m.data)).toEqual([{ n: 1 }, { n: 2 }]);
    await waitForEmpty(schema);
    // Nothing more came for the rows, even after the table was read again: history holds two.
    const top = (await sub.call('history', { channel: 'chat:news', limit: 0 })).position;
    const history = await sub.call('history', { channel: 'chat:news', since: { offset: 0, epoch: top.epoch }, limit: 10 });
    expect(history.publications.map((p: { data: unknown }) => p.data)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(sub.pubs('chat:news').length).toBe(2);
  });

  it('publishes in commit order per channel, not in insert (id) order', async () => {
    const schema = testSchema();
    const server = await outboxServer(schema);
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:order');
    const [t1, t2, holder] = await Promise.all([sql(), sql(), sql()]);
    try {
      // Hold the consumers' claim lock of the channel, so both transactions are committed before any claim.
      await holder.query('SELECT pg_advisory_lock($1, hashtext($2))', [LOCK_SPACE.claim, 'chat:order']);
      await t1.query('BEGIN');
      await t1.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ('chat:order', '"first inserted"')`);
      await t2.query('BEGIN');
      await t2.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ('chat:order', '"first committed"')`);
      await t2.query('COMMIT');
      await t1.query('COMMIT');
      const ids = (await holder.query(`SELECT id, commit_seq, data FROM "${schema}".switchboard_outbox ORDER BY id`)).rows;
      expect(ids.map((r) => r.data)).toEqual(['first inserted', 'first committed']);
      expect(Number(ids[1].commit_seq)).toBeLessThan(Number(ids[0].commit_seq));
      await holder.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_SPACE.claim, 'chat:order']);
    } finally {
      await Promise.all([t1.end(), t2.end(), holder.end()]);
    }
    const got = await sub.waitForPushes(2, (m) => m.push === 'pub');
    expect(got.map((m) => m.data)).toEqual(['first committed', 'first inserted']);
  });

  it('publishes rows with the same idempotency_key once, and marks a refused row failed without stopping others', async () => {
    const schema = testSchema();
    const server = await outboxServer(schema);
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:keys');
    const db = await sql();
    try {
      await db.query(`SELECT "${schema}".switchboard_publish('chat:keys', '"once"'::jsonb, 'order-42')`);
      await db.query(`SELECT "${schema}".switchboard_publish('chat:keys', '"once again"'::jsonb, 'order-42')`);
      await db.query(`SELECT "${schema}".switchboard_publish('no such namespace:x', '1'::jsonb)`);
      await db.query(`SELECT "${schema}".switchboard_publish('chat:keys', '"sentinel"'::jsonb)`);
      const got = await sub.waitForPushes(2, (m) => m.push === 'pub');
      expect(got.map((m) => m.data)).toEqual(['once', 'sentinel']);
      await waitForEmpty(schema);
      const failed = (await db.query(`SELECT channel, error FROM "${schema}".switchboard_outbox WHERE failed_at IS NOT NULL`)).rows;
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ channel: 'no such namespace:x' });
      expect(failed[0].error).toMatch(/channel/);
      // Rows this node consumed: three published (the repeated key answered by the hub), one failed.
      const metrics = await (await fetch(`${server.httpUrl}/metrics`)).text();
      expect(metrics).toMatch(/switchboard_outbox_rows_total\{outcome="published"\} 3/);
      expect(metrics).toMatch(/switchboard_outbox_rows_total\{outcome="failed"\} 1/);
    } finally {
      await db.end();
    }
  });

  it('delivers a notification inserted through switchboard_notify live, and counts it unread on the next connect', async () => {
    const schema = testSchema();
    const server = await outboxServer(schema);
    const channel = notificationsChannel('bob');
    const online = await server.client({ user: 'bob' });
    await online.subscribe(channel);
    const db = await sql();
    try {
      await db.query('BEGIN');
      await db.query(`SELECT "${schema}".switchboard_notify('bob', '{"text":"invoice paid"}'::jsonb)`);
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (notify_user, data) VALUES ('bob', '{"text":"second"}')`);
      await db.query('COMMIT');
    } finally {
      await db.end();
    }
    const live = await online.waitForPushes(2, (m) => m.push === 'pub');
    expect(live.map((m) => m.data)).toEqual([{ text: 'invoice paid' }, { text: 'second' }]);
    await online.close();
    const later = await server.client({ user: 'bob' });
    expect(await later.call('readState', { channel })).toMatchObject({ unread: 2, top: 2, lastRead: 0 });
  });

  it('never publishes a later row of a channel while an earlier one is locked by another transaction', async () => {
    const schema = testSchema();
    const server = await outboxServer(schema, { postgres: { url: PG_URL, schema, outbox: { enabled: false } } });
    const hub = server.hub;
    const sink = hubSink(hub);
    const silent = pino({ level: 'silent' });
    const pool = new PgPool({ url: PG_URL, queryTimeoutMs: 10_000, connectTimeoutMs: 2_000, size: 2, logger: silent });
    const consumer = new OutboxConsumer({ pool, target: { schema, table: 'switchboard_outbox' }, sink, logger: silent, batchSize: 10, pollIntervalMs: 100 });
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:locked');
    await writeRows(PG_URL, schema, 'chat:locked', 0, 6);
    const [holder, watch] = await Promise.all([sql(), sql()]);
    try {
      // An application transaction holds row n=0 (no claim lock): SKIP LOCKED would pass it by and take 1-5.
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM "${schema}".switchboard_outbox WHERE data->>'n' = '0' FOR UPDATE`);
      const holderPid = (await holder.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      consumer.start();
      // Either the consumer waits for the held row, or (the bug) it published rows past it.
      const blocked = async () =>
        (await watch.query('SELECT 1 FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [holderPid])).rowCount! > 0;
      await until(async () => sub.pubCount('chat:locked') > 0 || (await blocked()), 'the consumer to wait or publish');
      await holder.query('COMMIT');
      await sub.waitForPubCount('chat:locked', 6);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await Promise.all([holder.end(), watch.end()]);
      await consumer.close();
      await pool.close();
    }
    expect(sub.pubs('chat:locked').map((m) => (m.data as { n: number }).n)).toEqual(range(0, 6));
  });

  it('through a hub that refuses (114) or stalls: rows wait, in order, and each is published once', async () => {
    const schema = testSchema();
    // The hub migrates and publishes; the consumer under test is built by hand on a faulty sink.
    const server = await outboxServer(schema, { postgres: { url: PG_URL, schema, outbox: { enabled: false } } });
    const hub = server.hub;
    const sink = hubSink(hub);
    const isRow = (n: number) => (_c: string, data: { n: number }) => data.n === n;
    sink.faults.throw('publish', new HubError(114), { match: isRow(3), times: 1 });
    sink.faults.add('publish', { kind: 'hang' }, { match: isRow(6), times: 1 });
    const silent = pino({ level: 'silent' });
    const pool = new PgPool({ url: PG_URL, queryTimeoutMs: 500, connectTimeoutMs: 2_000, size: 2, logger: silent });
    const consumer = new OutboxConsumer({ pool, target: { schema, table: 'switchboard_outbox' }, sink, logger: silent, batchSize: 4, pollIntervalMs: 100 });
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:faulty');
    try {
      await writeRows(PG_URL, schema, 'chat:faulty', 0, 10);
      consumer.start();
      await sub.waitForPubCount('chat:faulty', 6); // 0-5; row 6 hangs, its batch is abandoned after 500 ms
      await new Promise((r) => setTimeout(r, 800));
      sink.faults.release(); // the hung publish of row 6 lands late; its retry is answered from the idempotency window
      await sub.waitForPubCount('chat:faulty', 10);
      await hub.publish('chat:faulty', { n: -1 });
      await sub.waitForPubCount('chat:faulty', 11);
    } finally {
      await consumer.close();
      await pool.close();
    }
    const pubs = sub.pubs('chat:faulty');
    expect(pubs.map((m) => (m.data as { n: number }).n)).toEqual([...range(0, 10), -1]);
    expect(pubs.map((m) => m.offset)).toEqual(range(1, 12));
    expect(sink.faults.calls('publish')).toBeGreaterThan(11); // rows 3 and 6 were tried again
  });
});
