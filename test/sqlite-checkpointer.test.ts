/**
 * WAL checkpoints in a worker thread (src/store/sqlite-checkpointer.ts), what `switchboard serve`
 * runs under `dataDir`:
 * - the main connection never checkpoints itself while the worker runs; the worker copies the log
 *   back and, past `restartPages`, makes it start over, so the WAL file stays bounded under
 *   constant writes and every committed row is in the database after a reopen;
 * - a worker that cannot open the file, or dies, hands checkpointing back to the main connection;
 * - a hub's close stops the worker before the main connection closes: the last close then
 *   checkpoints and removes the WAL, as SQLite does for the last connection.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createHub } from '../src/index.js';
import { SqliteCheckpointer } from '../src/store/sqlite-checkpointer.js';
import { openDatabase, type SqliteDatabase } from '../src/store/sqlite-db.js';

const logger = pino({ level: 'silent' });
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-ckpt-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function openWithTable(dir: string): SqliteDatabase {
  const db = openDatabase(dir);
  db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v BLOB)');
  cleanups.unshift(() => {
    if (db.open) db.close();
  });
  return db;
}

function autocheckpoint(db: SqliteDatabase): number {
  return db.pragma('wal_autocheckpoint', { simple: true }) as number;
}

async function until(what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('SQLite checkpoint worker', () => {
  it('keeps the WAL bounded under constant writes, and every committed row survives a reopen', async () => {
    const dir = tempDir();
    const db = openWithTable(dir);
    const restartPages = 64;
    const ck = new SqliteCheckpointer(db, logger, { intervalMs: 5, restartPages });
    cleanups.unshift(() => ck.close());
    expect(autocheckpoint(db)).toBe(0);
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const batch = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) insert.run(Buffer.alloc(200, i));
    });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    let rows = 0;
    let largestWal = 0;
    // Write 10 MB at a server's pace, and on until the worker has made the log start
    // over a few times, checking the file's size every turn.
    const end = Date.now() + 20_000;
    while (rows < 50_000 || ((await ck.stats())?.restart ?? 0) < 3) {
      if (Date.now() > end) throw new Error('no RESTART checkpoint within 20 s');
      // One transaction per turn, then the turn ends, as a server's batched appends do.
      batch(100);
      rows += 100;
      largestWal = Math.max(largestWal, statSync(join(dir, 'switchboard.db-wal')).size);
      await new Promise((r) => setTimeout(r, 1));
    }
    const stats = await ck.stats();
    expect(stats!.passive).toBeGreaterThanOrEqual(stats!.restart);
    // Without the RESTART (autocheckpoint 0, PASSIVE never at a quiet moment) the log would hold
    // every page written: over 10 MB.
    expect(largestWal).toBeLessThan(restartPages * 20 * (pageSize + 24));
    expect(restartPages * 20 * (pageSize + 24)).toBeLessThan(rows * 200);
    await ck.close();
    expect(ck.running).toBe(false);
    db.close();
    const again = openWithTable(dir);
    expect(again.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: rows });
  });

  it('a writer that never pauses gets checkpointing back until the log is short again', async () => {
    const dir = tempDir();
    const db = openWithTable(dir);
    const ck = new SqliteCheckpointer(db, logger, { intervalMs: 5, restartPages: 64, behindPages: 256, restartWaitMs: 20, behindPauseMs: 300 });
    cleanups.unshift(() => ck.close());
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const batch = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) insert.run(Buffer.alloc(200, i));
    });
    // Back-to-back transactions with no turn in between: the RESTART never gets the write lock.
    const end = Date.now() + 20_000;
    while (autocheckpoint(db) === 0) {
      if (Date.now() > end) throw new Error('the worker never said it was behind');
      const turnEnd = Date.now() + 20;
      while (Date.now() < turnEnd) batch(100);
      await new Promise((r) => setImmediate(r));
    }
    expect(autocheckpoint(db)).toBe(1000);
    // Self-checkpointing now: the WAL starts over on its own however hard the writer goes, so
    // 20 MB more written grows the file by no more than SQLite's own 1000-page checkpoints allow.
    const wal = (): number => statSync(join(dir, 'switchboard.db-wal')).size;
    const walBefore = wal();
    for (let i = 0; i < 1000; i++) batch(100);
    expect(wal() - walBefore).toBeLessThan(8 << 20);
    // Quiet again: the worker catches up and takes checkpointing back.
    await until('the worker back in charge', () => autocheckpoint(db) === 0);
    expect(ck.running).toBe(true);
  });

  it('hands checkpointing back to the main connection when the worker cannot open the file', async () => {
    const db = openWithTable(tempDir());
    const ck = new SqliteCheckpointer(db, logger, { file: join(tempDir(), 'missing.db') });
    cleanups.unshift(() => ck.close());
    await until('the fallback', () => !ck.running && autocheckpoint(db) === 1000);
  });

  it('hands checkpointing back to the main connection when the worker dies', async () => {
    const db = openWithTable(tempDir());
    const ck = new SqliteCheckpointer(db, logger, { intervalMs: 5 });
    cleanups.unshift(() => ck.close());
    expect(await ck.stats()).toBeDefined();
    expect(autocheckpoint(db)).toBe(0);
    await ck.terminateWorker();
    expect(ck.running).toBe(false);
    expect(autocheckpoint(db)).toBe(1000);
    expect(await ck.stats()).toBeUndefined();
  });

  it("a hub's close stops the worker first, so the last connection's close removes the WAL", async () => {
    const dir = tempDir();
    const hub = createHub({ dataDir: dir, auth: { allowAnonymous: true }, logger });
    for (let i = 0; i < 200; i++) await hub.publish('ckpt', { i });
    expect(existsSync(join(dir, 'switchboard.db-wal'))).toBe(true);
    await hub.close();
    expect(existsSync(join(dir, 'switchboard.db-wal'))).toBe(false);
    const db = openDatabase(dir);
    cleanups.unshift(() => {
      db.close();
    });
    const kept = db.prepare('SELECT count(*) AS n FROM history_pubs').get() as { n: number };
    expect(kept.n).toBeGreaterThan(0);
  });
});
