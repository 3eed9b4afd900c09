import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/** Opens (creating it if needed) the embedded database file under `dataDir`. */
export function openDatabase(dataDir: string): SqliteDatabase {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'switchboard.db'));
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode: a committed publish survives a process crash; a power loss may lose
  // the last transactions, which then get a new epoch only if the stream itself is lost.
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  return db;
}
