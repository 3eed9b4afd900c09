/**
 * The SQLite history's write path (what `switchboard serve` runs): publications stored in write
 * order (a rowid table, found by its (channel, offset) index), stream rows cached for appends
 * made inside `SqliteHistoryLog.transaction` and written once per transaction level.
 * - a rolled-back transaction (a failing statement, a failed commit, a failed savepoint) never
 *   leaves a stream's top ahead of the database: the next offset is the next gapless one;
 * - another connection writing the same file is noticed (PRAGMA data_version);
 * - a reopen resumes each stream's epoch and top; reads return exactly the last `size`;
 * - a file with the earlier layout (publications clustered by channel) is migrated on open.
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
import type { HistoryOptions, Publication } from '../src/stream/types.js';

const H: HistoryOptions = { size: 5, ttlMs: 60_000, metaTtlMs: 600_000 };
const NOW = 1_000_000;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-hcache-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function open(dir: string): { db: SqliteDatabase; log: SqliteHistoryLog } {
  const db = openDatabase(dir);
  cleanups.unshift(() => {
    if (db.open) db.close();
  });
  return { db, log: new SqliteHistoryLog(db) };
}

/** A statement that really fails inside SQLite: inserting the publication `"boom"` aborts. */
function failOnBoom(db: SqliteDatabase): void {
  db.exec(`CREATE TRIGGER IF NOT EXISTS boom BEFORE INSERT ON history_pubs WHEN NEW.data = '"boom"' BEGIN SELECT RAISE(ABORT, 'boom'); END;`);
}

const streamRow = (db: SqliteDatabase, channel: string) =>
  db.prepare('SELECT epoch, top FROM history_streams WHERE channel = ?').get(channel) as { epoch: string; top: number } | undefined;
const offsets = (log: SqliteHistoryLog, channel: string, size = H.size) =>
  log.read(channel, { sinceOffset: 0, limit: 100 }, { ...H, size }, NOW).publications.map((p) => p.offset);

describe('SQLite history: stream-row cache and rollbacks', () => {
  it('a transaction that throws after appending leaves no offset taken (cache cleared)', () => {
    const { db, log } = open(tempDir());
    const first = log.transaction(() => log.append('c', '"1"', undefined, H, NOW));
    expect(() =>
      log.transaction(() => {
        log.append('c', '"2"', undefined, H, NOW);
        log.append('c', '"3"', undefined, H, NOW);
        throw new Error('rolled back');
      }),
    ).toThrow('rolled back');
    const next = log.transaction(() => log.append('c', '"2 again"', undefined, H, NOW));
    expect(next).toEqual({ offset: 2, epoch: first.epoch });
    expect(streamRow(db, 'c')).toEqual({ epoch: first.epoch, top: 2 });
    expect(offsets(log, 'c')).toEqual([1, 2]);
  });

  it('a failing statement in a batch: the turn is retried per publication, the failing one alone fails, offsets stay gapless', async () => {
    const { db, log } = open(tempDir());
    failOnBoom(db);
    const broker = new MemoryBroker({
      history: log,
      idempotency: new SqliteIdempotencyLog(db),
      atomically: (fn) => log.transaction(fn),
      batchWrites: true,
      now: () => NOW,
    });
    const delivered: Publication[] = [];
    const handler: BrokerEventHandler = { onPublication: (_c, pub) => delivered.push(pub), onEvent: () => undefined, onControl: () => undefined };
    broker.setHandler(handler);
    cleanups.unshift(() => void broker.close());
    const outcomes = await Promise.allSettled(['"a"', '"b"', '"boom"', '"c"'].map((d) => broker.publish('chat', d, { history: H })));
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.offset : 'failed'))).toEqual([1, 2, 'failed', 3]);
    expect(delivered.map((p) => [p.offset, p.data])).toEqual([
      [1, '"a"'],
      [2, '"b"'],
      [3, '"c"'],
    ]);
    expect(streamRow(db, 'chat')?.top).toBe(3);
    const next = await broker.publish('chat', '"d"', { history: H });
    expect(next.offset).toBe(4);
  });

  it('a failed COMMIT of a batch (after its stream rows were written) advances nothing', async () => {
    const { db, log } = open(tempDir());
    // A deferred foreign key makes the COMMIT itself fail while `fail` is set: the rows are written, the commit refused.
    db.pragma('foreign_keys = ON');
    db.exec(`
      CREATE TABLE fail_flag (on_ INTEGER NOT NULL);
      INSERT INTO fail_flag VALUES (0);
      CREATE TABLE commit_guard (ref INTEGER REFERENCES fail_flag_parent (id) DEFERRABLE INITIALLY DEFERRED);
      CREATE TABLE fail_flag_parent (id INTEGER PRIMARY KEY);
      CREATE TRIGGER refuse_commit AFTER UPDATE ON history_streams WHEN (SELECT on_ FROM fail_flag) = 1
        BEGIN INSERT INTO commit_guard VALUES (1); END;
    `);
    const setFail = (on: boolean) => db.prepare('UPDATE fail_flag SET on_ = ?').run(on ? 1 : 0);
    const broker = new MemoryBroker({
      history: log,
      idempotency: new SqliteIdempotencyLog(db),
      atomically: (fn) => log.transaction(fn),
      batchWrites: true,
      now: () => NOW,
    });
    cleanups.unshift(() => void broker.close());
    const first = await broker.publish('chat', '"1"', { history: H });
    setFail(true);
    const failed = await Promise.allSettled([broker.publish('chat', '"2"', { history: H }), broker.publish('chat', '"3"', { history: H })]);
    expect(failed.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((failed[0] as PromiseRejectedResult).reason)).toMatch(/FOREIGN KEY/);
    setFail(false);
    expect(streamRow(db, 'chat')).toEqual({ epoch: first.epoch, top: 1 });
    const next = await broker.publish('chat', '"2 again"', { history: H });
    expect(next).toMatchObject({ offset: 2, epoch: first.epoch });
    expect(streamRow(db, 'chat')).toEqual({ epoch: first.epoch, top: 2 });
    expect(offsets(log, 'chat')).toEqual([1, 2]);
  });

  it('a rolled-back savepoint keeps what its enclosing transaction wrote before it', () => {
    const { db, log } = open(tempDir());
    log.transaction(() => {
      log.append('c', '"1"', undefined, H, NOW);
      log.append('d', '"1"', undefined, H, NOW);
      expect(() =>
        log.transaction(() => {
          log.append('c', '"2"', undefined, H, NOW);
          throw new Error('savepoint rolled back');
        }),
      ).toThrow('savepoint rolled back');
      log.append('c', '"2 again"', undefined, H, NOW);
    });
    expect(streamRow(db, 'c')?.top).toBe(2);
    expect(streamRow(db, 'd')?.top).toBe(1);
    expect(offsets(log, 'c')).toEqual([1, 2]);
    expect(log.transaction(() => log.append('d', '"2"', undefined, H, NOW)).offset).toBe(2);
  });

  it('an append in a transaction begun by someone else bypasses the cache (that transaction may roll back)', () => {
    const { db, log } = open(tempDir());
    log.transaction(() => log.append('c', '"1"', undefined, H, NOW));
    expect(() =>
      db.transaction(() => {
        log.transaction(() => log.append('c', '"2"', undefined, H, NOW));
        throw new Error('outer rolled back');
      })(),
    ).toThrow('outer rolled back');
    expect(log.transaction(() => log.append('c', '"2 again"', undefined, H, NOW)).offset).toBe(2);
    expect(streamRow(db, 'c')?.top).toBe(2);
  });

  it('another connection writing the same file is noticed: appends continue from its top and epoch', () => {
    const dir = tempDir();
    const a = open(dir);
    const b = open(dir);
    const first = a.log.transaction(() => a.log.append('c', '"a1"', undefined, H, NOW));
    a.log.transaction(() => a.log.append('c', '"a2"', undefined, H, NOW));
    b.log.transaction(() => b.log.append('c', '"b3"', undefined, H, NOW));
    // The other connection also starts a new stream where this one cached an old one.
    b.db.prepare('DELETE FROM history_streams WHERE channel = ?').run('d');
    a.log.transaction(() => a.log.append('d', '"a1"', undefined, H, NOW));
    b.db.prepare('DELETE FROM history_streams WHERE channel = ?').run('d');
    const fresh = b.log.transaction(() => b.log.append('d', '"b1"', undefined, H, NOW));
    expect(a.log.transaction(() => a.log.append('c', '"a4"', undefined, H, NOW))).toEqual({ offset: 4, epoch: first.epoch });
    expect(a.log.transaction(() => a.log.append('d', '"a2"', undefined, H, NOW))).toEqual({ offset: 2, epoch: fresh.epoch });
  });

  it('a reopen resumes epoch and top; reads return exactly the last `size` publications', () => {
    const dir = tempDir();
    const first = open(dir);
    let epoch = '';
    for (let i = 1; i <= 12; i++) epoch = first.log.transaction(() => first.log.append('c', JSON.stringify(i), undefined, H, NOW)).epoch;
    expect(offsets(first.log, 'c')).toEqual([8, 9, 10, 11, 12]);
    first.db.close();
    const again = open(dir);
    const read = again.log.read('c', { sinceOffset: 0, limit: 100 }, H, NOW);
    expect(read.position).toEqual({ offset: 12, epoch });
    expect(read.earliest).toBe(8);
    expect(read.publications.map((p) => p.data)).toEqual(['8', '9', '10', '11', '12']);
    // A smaller size configured since still clips the read at top - size + 1.
    expect(offsets(again.log, 'c', 3)).toEqual([10, 11, 12]);
    expect(again.log.transaction(() => again.log.append('c', '13', undefined, H, NOW))).toEqual({ offset: 13, epoch });
    expect(again.db.prepare('SELECT COUNT(*) AS n FROM history_pubs WHERE channel = ?').get('c')).toEqual({ n: 5 });
  });

  it('an expired stream starts a new epoch inside a transaction too, and the sweep leaves the cache consistent', () => {
    const { db, log } = open(tempDir());
    const old = log.transaction(() => log.append('c', '"1"', undefined, H, NOW));
    const later = NOW + H.metaTtlMs + 1;
    const fresh = log.transaction(() => log.append('c', '"new"', undefined, H, later));
    expect(fresh.offset).toBe(1);
    expect(fresh.epoch).not.toBe(old.epoch);
    log.sweep(later + H.metaTtlMs + 1);
    expect(streamRow(db, 'c')).toBeUndefined();
    const third = log.transaction(() => log.append('c', '"third"', undefined, H, later + H.metaTtlMs + 2));
    expect(third.offset).toBe(1);
    expect(third.epoch).not.toBe(fresh.epoch);
  });
});

describe('SQLite history: the earlier layout is migrated on open', () => {
  it('publications, epochs and tops of a clustered (WITHOUT ROWID) file carry over', () => {
    const dir = tempDir();
    const old = openDatabase(dir);
    old.exec(`
      CREATE TABLE history_streams (channel TEXT PRIMARY KEY, epoch TEXT NOT NULL, top INTEGER NOT NULL, meta_expires_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE history_pubs (channel TEXT NOT NULL, offset INTEGER NOT NULL, data TEXT NOT NULL, info TEXT, expires_at INTEGER NOT NULL, PRIMARY KEY (channel, offset)) WITHOUT ROWID;
      CREATE INDEX history_pubs_expiry ON history_pubs (expires_at);
    `);
    old.prepare('INSERT INTO history_streams VALUES (?, ?, ?, ?)').run('c', 'epoch-old', 7, NOW + 600_000);
    for (let o = 3; o <= 7; o++) old.prepare('INSERT INTO history_pubs VALUES (?, ?, ?, ?, ?)').run('c', o, String(o), o === 7 ? '{"user":"u"}' : null, NOW + o);
    old.close();
    const { db, log } = open(dir);
    const sql = (db.prepare("SELECT sql FROM sqlite_master WHERE name = 'history_pubs'").get() as { sql: string }).sql;
    expect(sql).not.toMatch(/WITHOUT ROWID/i);
    const read = log.read('c', { sinceOffset: 0, limit: 100 }, H, NOW);
    expect(read.position).toEqual({ offset: 7, epoch: 'epoch-old' });
    expect(read.publications.map((p) => [p.offset, p.data])).toEqual([3, 4, 5, 6, 7].map((o) => [o, String(o)]));
    expect(read.publications[4]?.info).toEqual({ user: 'u' });
    expect(log.transaction(() => log.append('c', '8', undefined, H, NOW))).toEqual({ offset: 8, epoch: 'epoch-old' });
    expect(offsets(log, 'c')).toEqual([4, 5, 6, 7, 8]);
    // Opening it again changes nothing.
    db.close();
    const again = open(dir);
    expect(offsets(again.log, 'c')).toEqual([4, 5, 6, 7, 8]);
  });
});
