import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, createTestServer } from './support/harness.js';
import { killProcesses, waitFor } from './support/processes.js';
import { dropSchemas, OwnPostgres, PG_URL, pending, range, testSchema, until, writeRows } from './support/postgres.js';

/**
 * The outbox through faults: two nodes consuming one table, and a PostgreSQL (a private cluster,
 * never the shared one) restarted while rows are consumed (the SIGKILL of a node mid-consume is in
 * postgres-cli.test.ts, on the shipped CLI). Every committed row is published exactly once, in order per channel.
 */
const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefixes: string[] = [];
const clusters: OwnPostgres[] = [];

afterEach(async () => {
  await closeAllServers();
  await killProcesses();
  await dropSchemas();
  for (const c of clusters.splice(0)) c.destroy();
});

afterAll(async () => {
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

function prefix(): string {
  const p = `sbt-pg-${randomUUID().slice(0, 8)}`;
  prefixes.push(p);
  return p;
}

const BIG_HISTORY = { chat: { history: { size: 5_000, ttlSeconds: 600 } } };

describe('outbox through faults', () => {
  it('two nodes (Redis broker) consume one outbox in parallel: no duplicate, no loss, order per channel', async () => {
    const schema = testSchema();
    const options = {
      redisUrl: REDIS_URL,
      redisPrefix: prefix(),
      namespaces: BIG_HISTORY,
      postgres: { url: PG_URL, schema, outbox: { batchSize: 10, pollIntervalMs: 100 } },
    };
    const a = await createTestServer(options);
    const b = await createTestServer(options);
    const channels = ['chat:a', 'chat:b', 'chat:c', 'chat:d'];
    const onA = await a.client({ user: 'ra' });
    const onB = await b.client({ user: 'rb' });
    for (const ch of channels) {
      await onA.subscribe(ch);
      await onB.subscribe(ch);
    }
    await Promise.all(channels.map((ch) => writeRows(PG_URL, schema, ch, 0, 150)));
    for (const sub of [onA, onB]) {
      for (const ch of channels) await sub.waitForPubCount(ch, 150, 30_000);
      for (const ch of channels) {
        const pubs = sub.pubs(ch);
        expect(pubs.map((m) => (m.data as { n: number }).n)).toEqual(range(0, 150));
        expect(pubs.map((m) => m.offset)).toEqual(range(1, 151));
      }
    }
    expect(await pending(PG_URL, schema)).toBe(0);
    // Claims are exclusive: the two nodes together published each row once (no repeat left for the idempotency window).
    const published = async (url: string): Promise<number> =>
      Number(/switchboard_outbox_rows_total\{outcome="published"\} (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0);
    expect((await published(a.httpUrl)) + (await published(b.httpUrl))).toBe(600);
  }, 120_000);

  it('a PostgreSQL restart while consuming: consumption resumes by itself, nothing lost or repeated, LISTEN re-established', async () => {
    const cluster = await OwnPostgres.start();
    clusters.push(cluster);
    const schema = testSchema(cluster.url);
    const server = await createTestServer({
      namespaces: BIG_HISTORY,
      // A long poll: after the restart only the re-established LISTEN (or the retry) wakes the consumer.
      postgres: { url: cluster.url, schema, connectTimeoutMs: 1_000, queryTimeoutMs: 2_000, outbox: { batchSize: 20, pollIntervalMs: 60_000 } },
    });
    const sub = await server.client({ user: 'reader' });
    await sub.subscribe('chat:pg');
    const writing = writeRows(cluster.url, schema, 'chat:pg', 0, 400);
    await waitFor(() => sub.pubCount('chat:pg') >= 20, 'the first rows');
    await writing;
    cluster.down();
    await new Promise((r) => setTimeout(r, 1_000));
    cluster.up();
    await writeRows(cluster.url, schema, 'chat:pg', 400, 600);
    await sub.waitForPubCount('chat:pg', 600, 30_000);
    // With no failure pending and a 60 s poll, only a NOTIFY on the re-established LISTEN can bring this one quickly.
    await until(async () => (await pending(cluster.url, schema)) === 0, 'drained');
    await new Promise((r) => setTimeout(r, 500));
    await writeRows(cluster.url, schema, 'chat:pg', 600, 601);
    await sub.waitForPubCount('chat:pg', 601, 10_000);
    const pubs = sub.pubs('chat:pg');
    expect(pubs.map((m) => (m.data as { n: number }).n)).toEqual(range(0, 601));
    expect(pubs.map((m) => m.offset)).toEqual(range(1, 602));
  }, 120_000);
});
