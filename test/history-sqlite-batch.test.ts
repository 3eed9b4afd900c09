/**
 * SQLite history writes batched per event-loop turn (MemoryBroker `batchWrites`, what
 * `switchboard serve` runs): every publication of a turn is written in one transaction, and it
 * is delivered and acknowledged only once that transaction is committed — seen from a second
 * connection to the same file at the moment of delivery and of the ack. One publication that
 * fails to write fails alone; a failed commit fails the whole turn, and nothing of it is
 * delivered.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { BrokerEventHandler } from '../src/broker/broker.js';
import { MemoryBroker } from '../src/broker/memory.js';
import { SqliteIdempotencyLog } from '../src/history/idempotency-log.js';
import { SqliteHistoryLog } from '../src/history/sqlite-log.js';
import { openDatabase, type SqliteDatabase } from '../src/store/sqlite-db.js';
import type { ClientInfo, HistoryOptions, Publication } from '../src/stream/types.js';

const HISTORY: HistoryOptions = { size: 100, ttlMs: 60_000, metaTtlMs: 120_000 };
const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A history log whose append throws for data `"fail"` (a write that fails on its own). */
class FailingLog extends SqliteHistoryLog {
  override append(channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number) {
    if (data === '"fail"') throw new Error('injected write failure');
    return super.append(channel, data, info, options, now);
  }
}

function setup(opts: { failCommit?: () => boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'sb-batch-'));
  const db = openDatabase(dir);
  const reader: SqliteDatabase = openDatabase(dir);
  let depth = 0;
  let commits = 0;
  const broker = new MemoryBroker({
    history: new FailingLog(db),
    idempotency: new SqliteIdempotencyLog(db),
    // The outer call is the batch's transaction: count its commits, and fail one on demand (rolled back).
    atomically: (fn) => {
      depth++;
      try {
        return db.transaction(() => {
          const result = fn();
          if (depth === 1 && opts.failCommit?.()) throw new Error('injected commit failure');
          return result;
        })();
      } finally {
        depth--;
        if (depth === 0) commits++;
      }
    },
    batchWrites: true,
  });
  /** Rows of `channel` a second connection sees (only committed ones). */
  const committed = (channel: string): number =>
    (reader.prepare('SELECT COUNT(*) AS n FROM history_pubs WHERE channel = ?').get(channel) as { n: number }).n;
  const delivered: { pub: Publication; committedThen: number }[] = [];
  const handler: BrokerEventHandler = {
    onPublication: (channel, pub) => delivered.push({ pub, committedThen: committed(channel) }),
    onEvent: () => undefined,
    onControl: () => undefined,
  };
  broker.setHandler(handler);
  cleanups.push(() => {
    void broker.close();
    db.close();
    reader.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { broker, committed, delivered, commits: () => commits };
}

describe('SQLite history writes batched per turn', () => {
  it('writes a turn in one transaction; delivers and acknowledges only what is committed', async () => {
    const { broker, committed, delivered, commits } = setup();
    const acks = Array.from({ length: 50 }, (_, i) =>
      broker.publish('chat:a', JSON.stringify(i), { history: HISTORY }).then((r) => ({ r, seen: committed('chat:a') })),
    );
    expect(delivered).toHaveLength(0); // nothing before the turn's commit
    const results = await Promise.all(acks);
    expect(results.map((x) => x.r.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const { seen } of results) expect(seen).toBe(50);
    expect(delivered.map((d) => d.pub.offset)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    for (const d of delivered) expect(d.committedThen).toBe(50);
    expect(commits()).toBe(1);
    // A later turn is a transaction of its own.
    await broker.publish('chat:a', '"next"', { history: HISTORY });
    expect(commits()).toBe(2);
  });

  it('a publication that fails to write fails alone; the others of its turn are stored in order', async () => {
    const { broker, committed, delivered } = setup();
    const outcomes = await Promise.allSettled(['"a"', '"fail"', '"b"'].map((d) => broker.publish('chat:b', d, { history: HISTORY })));
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.offset] : []))).toEqual([1, 2]);
    expect(committed('chat:b')).toBe(2);
    expect(delivered.map((d) => d.pub.data)).toEqual(['"a"', '"b"']);
  });

  it('a failed commit fails every publication of the turn and delivers none; the next turn works', async () => {
    let fail = true;
    const { broker, committed, delivered } = setup({ failCommit: () => fail });
    const outcomes = await Promise.allSettled([1, 2, 3].map((i) => broker.publish('chat:c', String(i), { history: HISTORY })));
    expect(outcomes.every((o) => o.status === 'rejected')).toBe(true);
    expect(committed('chat:c')).toBe(0);
    expect(delivered).toHaveLength(0);
    fail = false;
    const next = await broker.publish('chat:c', '4', { history: HISTORY });
    expect(next.offset).toBe(1);
    expect(delivered.map((d) => d.pub.data)).toEqual(['4']);
  });

  it('an idempotency key repeated within one turn publishes once', async () => {
    const { broker, delivered } = setup();
    const opts = { history: HISTORY, idempotencyKey: 'k1', idempotencyTtlMs: 60_000 };
    const [a, b] = await Promise.all([broker.publish('chat:d', '1', opts), broker.publish('chat:d', '2', opts)]);
    expect(a).toMatchObject({ offset: 1, duplicate: false });
    expect(b).toMatchObject({ offset: 1, duplicate: true });
    expect(delivered).toHaveLength(1);
  });

  it('close() writes and answers what the turn accepted', async () => {
    const { broker, committed } = setup();
    const ack = broker.publish('chat:e', '1', { history: HISTORY });
    await broker.close();
    await expect(ack).resolves.toMatchObject({ offset: 1 });
    expect(committed('chat:e')).toBe(1);
    await expect(broker.publish('chat:e', '2', { history: HISTORY })).rejects.toMatchObject({ code: 114 });
  });
});
