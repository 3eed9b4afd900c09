/**
 * Outbox scenario: an application commits rows into the PostgreSQL outbox (writers in
 * transactions of `OUTBOX_TX_ROWS`) and a WebSocket subscriber receives them through Switchboard.
 * Measured end to end: rows/s delivered, and COMMIT-acknowledged → delivered latency. Side by
 * side with the two-step path apps use without an outbox (commit, then POST /api/publish per
 * row), so the ratio says what the guarantee costs. Hub, writers and subscriber share this
 * process and the machine: indicative figures.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { pino } from 'pino';
import WebSocket from 'ws';
import { createHub } from '../../src/index.js';
import type { Mode } from '../config.js';
import { errorText, type RunContext } from './context.js';

export interface OutboxPathResult {
  rows: number;
  rowsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface OutboxResult {
  outbox: OutboxPathResult;
  /** Commit, then POST /api/publish: no atomicity, the same load. */
  twoStep: OutboxPathResult;
  writers: number;
  rowsPerTx: number;
}

const PG_URL = process.env.SWITCHBOARD_BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const OUTBOX_TX_ROWS = 10;
const WRITERS = 4;
const API_KEY = 'bench-api-key-0123456789';

function windowMs(mode: Mode): number {
  return mode === 'full' ? 10_000 : mode === 'quick' ? 5_000 : 400;
}

export async function runOutbox(ctx: RunContext): Promise<OutboxResult | null> {
  const schema = `sbbench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await admin.connect();
  } catch (err) {
    ctx.notes.push(`outbox: PostgreSQL not reachable at ${PG_URL} (${errorText(err)}); skipped`);
    return null;
  }
  const hub = createHub({
    auth: { allowAnonymous: true },
    apiKey: API_KEY,
    dataDir: null,
    logger: pino({ level: 'silent' }),
    namespaces: { bench: { history: { size: 1000, ttlSeconds: 600 } } },
    postgres: { url: PG_URL, schema, outbox: { batchSize: 200, pollIntervalMs: 500 } },
    limits: { shutdownSpreadMs: 0, shutdownTimeoutMs: 2_000, commandRate: { perSecond: 1e6, burst: 1e6 } },
  });
  try {
    const { url, httpUrl } = await hub.listen(0, '127.0.0.1');
    await admin.query(`CREATE TABLE "${schema}".orders (id bigserial PRIMARY KEY, n bigint NOT NULL)`);
    ctx.progress.step('outbox · commit into the outbox → WebSocket subscriber · measuring');
    const outbox = await measurePath(ctx.cfg.mode, url, 'bench:outbox', async (db, first, count) => {
      const values = Array.from({ length: count }, (_, i) => `('bench:outbox', '{"n":${first + i}}')`).join(',');
      await db.query('BEGIN');
      await db.query(`INSERT INTO "${schema}".orders (n) SELECT generate_series($1::bigint, $2::bigint)`, [first, first + count - 1]);
      await db.query(`INSERT INTO "${schema}".switchboard_outbox (channel, data) VALUES ${values}`);
      await db.query('COMMIT');
      return performance.now();
    });
    ctx.progress.step('outbox · commit, then POST /api/publish (two steps) · measuring');
    const twoStep = await measurePath(ctx.cfg.mode, url, 'bench:twostep', async (db, first, count) => {
      await db.query('BEGIN');
      await db.query(`INSERT INTO "${schema}".orders (n) SELECT generate_series($1::bigint, $2::bigint)`, [first, first + count - 1]);
      await db.query('COMMIT');
      const committed = performance.now();
      for (let i = 0; i < count; i++) {
        const res = await fetch(`${httpUrl}/api/publish`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `apikey ${API_KEY}` },
          body: JSON.stringify({ channel: 'bench:twostep', data: { n: first + i } }),
        });
        await res.arrayBuffer();
      }
      return committed;
    });
    const result: OutboxResult = { outbox, twoStep, writers: WRITERS, rowsPerTx: OUTBOX_TX_ROWS };
    ctx.notes.push(
      `outbox: ${outbox.rowsPerSec} rows/s delivered end to end (commit → WebSocket), commit-to-deliver p50 ${outbox.p50Ms} ms, p99 ${outbox.p99Ms} ms; ` +
        `commit then POST /api/publish: ${twoStep.rowsPerSec} rows/s, p99 ${twoStep.p99Ms} ms ` +
        `(${WRITERS} writers, ${OUTBOX_TX_ROWS} rows per transaction; everything in one process: indicative)`,
    );
    return result;
  } catch (err) {
    ctx.notes.push(`outbox: failed: ${errorText(err)}`);
    return null;
  } finally {
    await hub.close().catch(() => undefined);
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

type Write = (db: pg.Client, first: number, count: number) => Promise<number>;

/** Writers commit for the window; the subscriber times every row from its commit to its delivery. */
async function measurePath(mode: Mode, wsUrl: string, channel: string, write: Write): Promise<OutboxPathResult> {
  const committedAt = new Map<number, number>();
  const latencies: number[] = [];
  let delivered = 0;
  let lastDelivery = 0;
  const ws = new WebSocket(wsUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const subscribed = new Promise<void>((resolve) => {
    ws.on('message', (raw: Buffer) => {
      const now = performance.now();
      for (const line of raw.toString().split('\n')) {
        const m = JSON.parse(line) as { id?: number; push?: string; data?: { n: number } };
        if (m.id === 2) resolve();
        if (m.push !== 'pub' || !m.data) continue;
        delivered++;
        lastDelivery = now;
        const at = committedAt.get(m.data.n);
        if (at !== undefined) latencies.push(Math.max(0, now - at));
      }
    });
  });
  ws.send(`${JSON.stringify({ id: 1, method: 'connect', params: {} })}\n${JSON.stringify({ id: 2, method: 'subscribe', params: { channel } })}`);
  await subscribed;
  const writers = await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      const db = new pg.Client({ connectionString: PG_URL });
      await db.connect();
      return db;
    }),
  );
  let next = 0;
  const started = performance.now();
  const until = started + windowMs(mode);
  try {
    await Promise.all(
      writers.map(async (db) => {
        while (performance.now() < until) {
          const first = next;
          next += OUTBOX_TX_ROWS;
          const at = await write(db, first, OUTBOX_TX_ROWS);
          // Rows delivered before the COMMIT acknowledgement came back count as 0 ms.
          for (let i = 0; i < OUTBOX_TX_ROWS; i++) committedAt.set(first + i, at);
        }
      }),
    );
    const drainBy = performance.now() + 30_000;
    while (delivered < next && performance.now() < drainBy) await new Promise((r) => setTimeout(r, 20));
  } finally {
    await Promise.all(writers.map((db) => db.end().catch(() => undefined)));
    ws.close();
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0);
  return {
    rows: delivered,
    rowsPerSec: Math.round(delivered / ((lastDelivery - started) / 1000)),
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: round(latencies.at(-1) ?? 0),
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
