import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, Publication, StreamPosition } from '../stream/types.js';
import type { SqliteDatabase } from '../store/sqlite-db.js';
import { newEpoch } from '../stream/epoch.js';
import type { HistoryLog } from './history-log.js';
import { SqliteLatestKeys } from './sqlite-latest-keys.js';

interface StreamRow {
  epoch: string;
  top: number;
  meta_expires_at: number;
}

interface PubRow {
  offset: number;
  data: string;
  info: string | null;
}

/** History in the embedded SQLite file: offsets, epochs and publications survive a restart. */
export class SqliteHistoryLog implements HistoryLog {
  private readonly getStream;
  private readonly putStream;
  private readonly deleteStreamPubs;
  private readonly insertPub;
  private readonly trimBySize;
  private readonly selectPubs;
  private readonly earliestPub;
  private readonly sweepPubs;
  private readonly sweepStreams;
  private readonly appendTx;
  private readonly latestKeys: SqliteLatestKeys;

  constructor(private readonly db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS history_streams (
        channel TEXT PRIMARY KEY,
        epoch TEXT NOT NULL,
        top INTEGER NOT NULL,
        meta_expires_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS history_pubs (
        channel TEXT NOT NULL,
        offset INTEGER NOT NULL,
        data TEXT NOT NULL,
        info TEXT,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (channel, offset)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS history_pubs_expiry ON history_pubs (expires_at);
    `);
    this.latestKeys = new SqliteLatestKeys(db);
    this.getStream = db.prepare<[string], StreamRow>('SELECT epoch, top, meta_expires_at FROM history_streams WHERE channel = ?');
    this.putStream = db.prepare<[string, string, number, number]>(
      'INSERT INTO history_streams (channel, epoch, top, meta_expires_at) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (channel) DO UPDATE SET epoch = excluded.epoch, top = excluded.top, meta_expires_at = excluded.meta_expires_at',
    );
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
        const stream = this.stream(channel, options, now);
        const offset = stream.top + 1;
        this.insertPub.run(channel, offset, data, info ? JSON.stringify(info) : null, now + options.ttlMs);
        if (options.latest) this.latestKeys.replace(channel, info?.key ?? '', offset, options.size);
        else this.trimBySize.run(channel, offset - options.size);
        this.putStream.run(channel, stream.epoch, offset, now + options.metaTtlMs);
        return { offset, epoch: stream.epoch };
      },
    );
  }

  append(channel: string, data: string, info: ClientInfo | undefined, options: HistoryOptions, now: number): StreamPosition {
    return this.appendTx(channel, data, info, options, now);
  }

  read(channel: string, query: HistoryQuery, options: HistoryOptions, now: number): HistoryResult {
    // Reading never creates a stream (nor writes a row): only a publication does.
    const stream = this.getStream.get(channel);
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
    this.sweepPubs.run(now);
    this.sweepStreams.run(now);
    this.latestKeys.sweep();
  }

  close(): void {
    // The database is shared with other stores; its owner closes it.
  }

  /** The live stream of a channel for an append, creating it (new epoch, no publications) when missing or expired. */
  private stream(channel: string, options: HistoryOptions, now: number): StreamRow {
    const row = this.getStream.get(channel);
    if (row && row.meta_expires_at > now) return row;
    const fresh: StreamRow = { epoch: newEpoch(), top: 0, meta_expires_at: now + options.metaTtlMs };
    this.deleteStreamPubs.run(channel);
    this.latestKeys.forget(channel);
    this.putStream.run(channel, fresh.epoch, fresh.top, fresh.meta_expires_at);
    return fresh;
  }
}

function toPublication(row: PubRow): Publication {
  return row.info === null
    ? { offset: row.offset, data: row.data }
    : { offset: row.offset, data: row.data, info: JSON.parse(row.info) as ClientInfo };
}
