import type { SqliteDatabase } from '../store/sqlite-db.js';

/**
 * The key index of latest-value streams in SQLite (`delivery: "latest"`): which offset holds
 * each key's newest publication, so a publication replaces the previous one of its key in
 * `history_pubs`, and the stream holds at most `size` keys (the least recently changed go).
 * Runs inside the history log's append transaction.
 */
export class SqliteLatestKeys {
  private readonly selectKey;
  private readonly upsertKey;
  private readonly deletePub;
  private readonly trimToSize;
  private readonly deleteChannel;
  private readonly sweepStale;

  constructor(db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS history_latest_keys (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        offset INTEGER NOT NULL,
        PRIMARY KEY (channel, key)
      ) WITHOUT ROWID;
    `);
    this.selectKey = db.prepare<[string, string], { offset: number }>(
      'SELECT offset FROM history_latest_keys WHERE channel = ? AND key = ?',
    );
    this.upsertKey = db.prepare<[string, string, number]>(
      'INSERT INTO history_latest_keys (channel, key, offset) VALUES (?, ?, ?) ON CONFLICT (channel, key) DO UPDATE SET offset = excluded.offset',
    );
    this.deletePub = db.prepare<[string, number]>('DELETE FROM history_pubs WHERE channel = ? AND offset = ?');
    this.trimToSize = db.prepare<[string, string, number]>(
      'DELETE FROM history_pubs WHERE channel = ? AND offset <= ' +
        '(SELECT offset FROM history_pubs WHERE channel = ? ORDER BY offset DESC LIMIT 1 OFFSET ?)',
    );
    this.deleteChannel = db.prepare<[string]>('DELETE FROM history_latest_keys WHERE channel = ?');
    this.sweepStale = db.prepare(
      'DELETE FROM history_latest_keys WHERE NOT EXISTS ' +
        '(SELECT 1 FROM history_pubs p WHERE p.channel = history_latest_keys.channel AND p.offset = history_latest_keys.offset)',
    );
  }

  /** The publication at `offset` (just inserted) is now `key`'s: the previous one of the key goes. */
  replace(channel: string, key: string, offset: number, size: number): void {
    const prev = this.selectKey.get(channel, key);
    const replaced = prev !== undefined && this.deletePub.run(channel, prev.offset).changes > 0;
    this.upsertKey.run(channel, key, offset);
    // Only a new key (or one whose publication expired) can pass the size.
    if (!replaced) this.trimToSize.run(channel, channel, size);
  }

  /** The channel's stream starts again (a new epoch): its keys go with its publications. */
  forget(channel: string): void {
    this.deleteChannel.run(channel);
  }

  /** Drops index rows whose publication expired or was trimmed. */
  sweep(): void {
    this.sweepStale.run();
  }
}
