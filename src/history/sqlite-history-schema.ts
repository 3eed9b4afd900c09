import type { SqliteDatabase } from '../store/sqlite-db.js';

/**
 * The history tables in the embedded SQLite file.
 *
 * `history_pubs` is an ordinary rowid table: publications are stored in the order they were
 * written (the rowid grows), found by the unique index on (channel, offset). A turn's
 * publications to many channels then land on a few pages at the end of the table, and only
 * the small index entries are spread over one page per channel: a commit writes far fewer
 * pages to the WAL (and the checkpoint copies fewer back) than when the rows themselves were
 * clustered by channel (the earlier `WITHOUT ROWID` table, migrated on open).
 */
export function createHistorySchema(db: SqliteDatabase): void {
  db.transaction(() => {
    const existing = db.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'history_pubs'").get();
    const clustered = existing !== undefined && /WITHOUT\s+ROWID/i.test(existing.sql);
    if (clustered) {
      db.exec('DROP INDEX IF EXISTS history_pubs_expiry; ALTER TABLE history_pubs RENAME TO history_pubs_clustered;');
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS history_streams (
        channel TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        top INTEGER NOT NULL,
        meta_expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS history_pubs (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        offset INTEGER NOT NULL,
        data TEXT NOT NULL,
        info TEXT,
        expires_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX IF NOT EXISTS history_pubs_position ON history_pubs (channel, offset);
      CREATE INDEX IF NOT EXISTS history_pubs_expiry ON history_pubs (expires_at);
    `);
    if (clustered) {
      // Oldest first, so the table keeps its write order for the rows carried over.
      db.exec(`
        INSERT INTO history_pubs (channel, offset, data, info, expires_at)
          SELECT channel, offset, data, info, expires_at FROM history_pubs_clustered ORDER BY expires_at, channel, offset;
        DROP TABLE history_pubs_clustered;
      `);
    }
  })();
}
