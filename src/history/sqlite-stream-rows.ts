import type { SqliteDatabase } from '../store/sqlite-db.js';

/** A channel's stream as `history_streams` holds it. */
export interface StreamRow {
  epoch: string;
  top: number;
  meta_expires_at: number;
}

/** Past this many cached streams the cache starts again empty (it is only a shortcut). */
const MAX_CACHED = 100_000;

/**
 * The `history_streams` rows, with a cache of them for appends made inside
 * `SqliteHistoryLog.transaction`: such an append reads its stream from memory and each stream it
 * changed is written once, when its transaction level ends (before the commit or the release of
 * the savepoint). The cache only ever holds what this connection has committed, or is about to
 * in the transaction under way:
 *
 * - every failure of a transaction level (a statement, the row writes, the commit) clears it, so
 *   after a rollback every stream is read again from the database;
 * - a nested level first writes the rows its enclosing level changed, so rolling the nested one
 *   back loses nothing the enclosing one still commits;
 * - each outermost transaction checks `PRAGMA data_version`, which changes only when another
 *   connection (another process on the same file) committed: then the cache is cleared;
 * - anything else that changes stream rows on this connection (an append outside
 *   `transaction`, the sweep) drops what it touched.
 */
export class SqliteStreamRows {
  private readonly select;
  private readonly upsert;
  private readonly dataVersion;
  private readonly cache = new Map<string, StreamRow>();
  /** Streams the current transaction level changed, written when it ends. */
  private readonly changed = new Map<string, StreamRow>();
  private lastDataVersion: number | undefined;

  constructor(db: SqliteDatabase) {
    this.select = db.prepare<[string], StreamRow>('SELECT epoch, top, meta_expires_at FROM history_streams WHERE channel = ?');
    this.upsert = db.prepare<[string, string, number, number]>(
      'INSERT INTO history_streams (channel, epoch, top, meta_expires_at) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (channel) DO UPDATE SET epoch = excluded.epoch, top = excluded.top, meta_expires_at = excluded.meta_expires_at',
    );
    this.dataVersion = db.prepare<[], number>('PRAGMA data_version').pluck();
  }

  /** The row in the database (not the cache). */
  read(channel: string): StreamRow | undefined {
    return this.select.get(channel);
  }

  /** Writes the row at once; the cache forgets the channel. */
  write(channel: string, row: StreamRow): void {
    this.cache.delete(channel);
    this.changed.delete(channel);
    this.upsert.run(channel, row.epoch, row.top, row.meta_expires_at);
  }

  /** The cached row, read from the database on a miss (inside `transaction` only). */
  cached(channel: string): StreamRow | undefined {
    const hit = this.cache.get(channel);
    if (hit) return hit;
    const row = this.select.get(channel);
    if (row) this.cache.set(channel, row);
    return row;
  }

  /** `row` (from `cached`, or new) was changed: remember it, written when the level ends. */
  update(channel: string, row: StreamRow): void {
    this.cache.set(channel, row);
    this.changed.set(channel, row);
  }

  /** At the start of an outermost transaction: forget everything if another connection committed. */
  checkOtherWriters(): void {
    const version = this.dataVersion.get();
    if (version !== this.lastDataVersion || this.cache.size > MAX_CACHED) this.clear();
    this.lastDataVersion = version;
  }

  /** Writes the changed rows (at the end of a transaction level, inside it). */
  writeChanged(): void {
    for (const [channel, row] of this.changed) this.upsert.run(channel, row.epoch, row.top, row.meta_expires_at);
    this.changed.clear();
  }

  /** After a rollback, or a change made around the cache: read everything again. */
  clear(): void {
    this.cache.clear();
    this.changed.clear();
  }
}
