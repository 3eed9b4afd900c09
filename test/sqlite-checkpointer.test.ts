/**
 * WAL checkpoints in a worker thread (src/store/sqlite-checkpointer.ts), what `switchboard serve`
 * runs under `dataDir`:
 * - the worker copies the log back; the main connection's automatic checkpoint, raised to
 *   `boundPages`, lets the log start over, so the WAL file stays bounded under constant writes
 *   (paced or back to back) and every committed row is in the database after a reopen;
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
  /** 10 MB of 200-byte rows, 100 a transaction; `pace` ends the turn after each (a server) or not. */
  async function write10MB(dir: string, db: SqliteDatabase, pace: boolean): Promise<{ rows: number; largestWal: number }> {
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const batch = db.transaction((n: number) => {
      for (let i = 0; i < n; i++) insert.run(Buffer.alloc(200, i));
    });
    let rows = 0;
    let largestWal = 0;
    while (rows < 50_000) {
      batch(100);
      rows += 100;
      largestWal = Math.max(largestWal, statSync(join(dir, 'switchboard.db-wal')).size);
      if (pace) await new Promise((r) => setTimeout(r, 1));
    }
    return { rows, largestWal };
  }

  for (const pace of [true, false]) {
    it(`keeps the WAL bounded (${pace ? 'one transaction a turn' : 'back-to-back transactions'}); the worker copies; every row survives a reopen`, async () => {
      const dir = tempDir();
      const db = openWithTable(dir);
      const boundPages = 64;
      const ck = new SqliteCheckpointer(db, logger, { intervalMs: 5, boundPages });
      cleanups.unshift(() => ck.close());
      expect(autocheckpoint(db)).toBe(boundPages);
      const { rows, largestWal } = await write10MB(dir, db, pace);
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      // Without the bound (PASSIVE checkpoints alone never let the log start over under
      // constant writes) the log would hold every page written: over 10 MB.
      expect(largestWal).toBeLessThan(boundPages * 20 * (pageSize + 24));
      expect(boundPages * 20 * (pageSize + 24)).toBeLessThan(rows * 200);
      if (pace) expect((await ck.stats())!.copiedPages).toBeGreaterThan(0);
      await ck.close();
      expect(ck.running).toBe(false);
      db.close();
      const again = openWithTable(dir);
      expect(again.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: rows });
    });
  }

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
    expect(autocheckpoint(db)).toBe(4096);
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
