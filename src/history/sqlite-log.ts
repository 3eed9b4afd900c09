import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, Publication, StreamPosition } from '../stream/types.js';
import type { SqliteDatabase } from '../store/sqlite-db.js';
import { newEpoch } from '../stream/epoch.js';
import type { HistoryLog } from './history-log.js';
import { createHistorySchema } from './sqlite-history-schema.js';
import { SqliteLatestKeys } from './sqlite-latest-keys.js';
import { SqliteStreamRows, type StreamRow } from './sqlite-stream-rows.js';

interface PubRow {
  offset: number;
  data: string;
  info: string | null;
}

/**
 * History in the embedded SQLite file: offsets, epochs and publications survive a restart.
 * Appends made inside `transaction` (what the broker's batch runs in) use the stream-row cache
 * of `SqliteStreamRows`; any other append reads and writes its stream row itself.
 */
export class SqliteHistoryLog implements HistoryLog {
  private readonly streams: SqliteStreamRows;
  private readonly deleteStreamPubs;
  private readonly insertPub;
  private readonly trimBySize;
  private readonly selectPubs;
  private readonly earliestPub;
  private readonly sweepPubs;
  private readonly sweepStreams;
  private readonly appendTx;
  private readonly latestKeys: SqliteLatestKeys;
  /** How deep in `transaction` calls this is, and whether the outermost one began the SQLite transaction. */
  private depth = 0;
  private owned = false;

  constructor(private readonly db: SqliteDatabase) {
    createHistorySchema(db);
    this.latestKeys = new SqliteLatestKeys(db);
    this.streams = new SqliteStreamRows(db);
    this.deleteStreamPubs = db.prepare<[string]>('DELETE FROM history_pubs WHERE channel = ?');
    this.insertPub = db.prepare<[string, number, string, string | null, number]>(
      'INSERT INTO history_pubs (channel, offset, data, info, expires_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.trimBySize = db.prepare<[string, number]>('DELETE FROM history_pubs WHERE channel = ? AND offset <= ?');
    this.selectPubs = db.prepare<[string, number, number, number], PubRow>(
      'SELECT offset, data, info FROM history_pubs WHERE channel = ? AND offset > ? AND expires_at > ? ORDER BY offset LIMIT ?',
    );
    this.earliestPub = db.prepare<[string, number], { offset: number | null }>(
      'SELECT MIN(offset) AS offset FROM history_pubs WHERE channel = ? AND expires_at > ?',
    );
    this.sweepPubs = db.prepare<[number]>('DELETE FROM history_pubs WHERE expires_at <= ?');
    this.sweepStreams = db.prepare<[number]>('DELETE FROM history_streams WHERE meta_expires_at <= ?');
    this.appendTx = db.transaction(
      (channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): StreamPosition => {
        const row = this.streams.read(channel);
        const stream = row && row.meta_expires_at > now ? row : this.restart(channel);
        const offset = this.insert(channel, stream.top + 1, data, info, options, now);
        this.streams.write(channel, { epoch: stream.epoch, top: offset, meta_expires_at: now + options.metaTtlMs });
        return { offset, epoch: stream.epoch };
      },
    );
  }

  /**
   * Runs `fn` in a transaction of the history's database (a savepoint when nested), for the
   * broker's `atomically`. Appends inside read their stream rows from the cache and write each
   * changed one once, at the end of this call. A throw rolls back and clears the cache, so no
   * stream's top in memory is ever ahead of the database. Inside a transaction begun by someone
   * else (which might roll back after this returns), appends bypass the cache.
   */
  transaction<T>(fn: () => T): T {
    if (this.depth === 0) this.owned = !this.db.inTransaction;
    // The enclosing level's rows first: rolling this level back must not take them along.
    else if (this.owned) this.streams.writeChanged();
    this.depth++;
    try {
      return this.db.transaction(() => {
        if (this.depth === 1 && this.owned) this.streams.checkOtherWriters();
        const result = fn();
        if (this.owned) this.streams.writeChanged();
        return result;
      })();
    } catch (err) {
      this.streams.clear();
      throw err;
    } finally {
      this.depth--;
    }
  }

  append(channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): StreamPosition {
    if (this.depth === 0 || !this.owned) return this.appendTx(channel, data, info, options, now);
    const row = this.streams.cached(channel);
    const stream = row && row.meta_expires_at > now ? row : this.restart(channel);
    const offset = this.insert(channel, stream.top + 1, data, info, options, now);
    this.streams.update(channel, { epoch: stream.epoch, top: offset, meta_expires_at: now + options.metaTtlMs });
    return { offset, epoch: stream.epoch };
  }

  read(channel: string, query: HistoryQuery, options: HistoryOptions, now: number): HistoryResult {
    // Reading never creates a stream (nor writes a row): only a publication does.
    // The database's row, not the cache: the read may run inside someone else's transaction.
    const stream = this.streams.read(channel);
    if (!stream || stream.meta_expires_at <= now) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    const position = { offset: stream.top, epoch: stream.epoch };
    // Publications trimmed by a smaller configured size still count as lost.
    // (In a latest-value stream the held offsets have gaps: its size bounds keys, kept on publish.)
    const sizeFloor = options.latest ? 1 : stream.top - options.size + 1;
    const minRow = this.earliestPub.get(channel, now)?.offset ?? null;
    const earliest = Math.max(minRow ?? stream.top + 1, sizeFloor, 1);
    if (query.sinceOffset === undefined || query.limit <= 0) return { position, publications: [], earliest };
    const after = Math.max(query.sinceOffset, earliest - 1);
    // Rows are stepped through one at a time and the read stops at the byte budget, so a large
    // history never loads (or blocks the event loop) beyond one page.
    const publications: Publication[] = [];
    let bytes = 0;
    for (const row of this.selectPubs.iterate(channel, after, now, query.limit)) {
      bytes += Buffer.byteLength(row.data);
      if (query.maxBytes !== undefined && publications.length > 0 && bytes > query.maxBytes) break;
      publications.push(toPublication(row));
    }
    return { position, publications, earliest };
  }

  sweep(now: number): void {
    this.streams.clear();
    this.sweepPubs.run(now);
    this.sweepStreams.run(now);
    this.latestKeys.sweep();
  }

  close(): void {
    // The database is shared with other stores; its owner closes it.
  }

  /** Inserts the publication at `offset` and trims the stream to its size (or replaces its key's); returns `offset`. */
  private insert(channel: string, offset: number, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): number {
    this.insertPub.run(channel, offset, data, info ? JSON.stringify(info) : null, now + options.ttlMs);
    if (options.latest) this.latestKeys.replace(channel, info?.key ?? '', offset, options.size);
    // Nothing to trim while the stream holds no more than its size (offsets start at 1).
    else if (offset > options.size) this.trimBySize.run(channel, offset - options.size);
    return offset;
  }

  /** A stream starting again (missing or expired): a new epoch, no publications. Its row is written with the first append. */
  private restart(channel: string): StreamRow {
    this.deleteStreamPubs.run(channel);
    this.latestKeys.forget(channel);
    return { epoch: newEpoch(), top: 0, meta_expires_at: 0 };
  }
}

function toPublication(row: PubRow): Publication {
  return row.info === null
    ? { offset: row.offset, data: row.data }
    : { offset: row.offset, data: row.data, info: JSON.parse(row.info) as ClientInfo };
}
