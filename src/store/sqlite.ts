import type { StreamPosition } from '../stream/types.js';
import type { SqliteDatabase } from './sqlite-db.js';
import {
  DEFAULT_STORE_RETENTION_MS,
  sweepInterval,
  type StatusRecord,
  type Store,
  type StoreRetentionOptions,
  type UserStatus,
} from './store.js';

/**
 * The Store of the embedded default: read positions and statuses survive a restart. Each row
 * carries when it was last written (`updated_at`, ms); a periodic sweep deletes rows older than
 * the retention.
 */
export class SqliteStore implements Store {
  private readonly upsertRead;
  private readonly selectRead;
  private readonly selectReaders;
  private readonly upsertStatus;
  private readonly selectStatus;
  private readonly deleteOldReads;
  private readonly deleteOldStatuses;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(db: SqliteDatabase, options: StoreRetentionOptions = {}) {
    this.retentionMs = options.retentionMs ?? DEFAULT_STORE_RETENTION_MS;
    this.now = options.now ?? Date.now;
    db.exec(`
      CREATE TABLE IF NOT EXISTS read_positions (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        offset INTEGER NOT NULL,
        epoch TEXT NOT NULL,
        updated_at INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (channel, user)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS user_status (
        user TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        last_seen INTEGER NOT NULL,
        updated_at INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
    `);
    // Tables of earlier versions: add the column, counting their rows as written now.
    for (const table of ['read_positions', 'user_status']) {
      const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all();
      if (!columns.some((c) => c.name === 'updated_at')) {
        db.transaction(() => {
          db.exec(`ALTER TABLE ${table} ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0`);
          db.prepare(`UPDATE ${table} SET updated_at = ?`).run(this.now());
        })();
      }
    }
    db.exec(`
      CREATE INDEX IF NOT EXISTS read_positions_updated_at ON read_positions (updated_at);
      CREATE INDEX IF NOT EXISTS user_status_updated_at ON user_status (updated_at);
    `);
    // Within one epoch a position only moves forward; a new epoch replaces it.
    this.upsertRead = db.prepare<[string, string, number, string, number], StreamPosition>(
      `INSERT INTO read_positions (user, channel, offset, epoch, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (channel, user) DO UPDATE SET
         offset = CASE WHEN epoch = excluded.epoch THEN MAX(offset, excluded.offset) ELSE excluded.offset END,
         epoch = excluded.epoch,
         updated_at = excluded.updated_at
       RETURNING offset, epoch`,
    );
    this.selectRead = db.prepare<[string, string], StreamPosition>(
      'SELECT offset, epoch FROM read_positions WHERE user = ? AND channel = ?',
    );
    this.selectReaders = db.prepare<[string], StreamPosition & { user: string }>(
      'SELECT user, offset, epoch FROM read_positions WHERE channel = ?',
    );
    this.upsertStatus = db.prepare<[string, string, number, number]>(
      `INSERT INTO user_status (user, status, last_seen, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (user) DO UPDATE SET status = excluded.status, last_seen = excluded.last_seen, updated_at = excluded.updated_at`,
    );
    this.selectStatus = db.prepare<[string], { status: UserStatus; last_seen: number }>(
      'SELECT status, last_seen FROM user_status WHERE user = ?',
    );
    this.deleteOldReads = db.prepare<[number]>('DELETE FROM read_positions WHERE updated_at < ?');
    this.deleteOldStatuses = db.prepare<[number]>('DELETE FROM user_status WHERE updated_at < ?');
    this.sweeper = setInterval(() => void this.prune().catch(() => undefined), sweepInterval(options, this.retentionMs));
    this.sweeper.unref();
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    return this.upsertRead.get(user, channel, position.offset, position.epoch, this.now())!;
  }

  async lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return this.selectRead.get(user, channel);
  }

  async readers(channel: string): Promise<Record<string, StreamPosition>> {
    const out: Record<string, StreamPosition> = {};
    for (const row of this.selectReaders.all(channel)) out[row.user] = { offset: row.offset, epoch: row.epoch };
    return out;
  }

  async setStatus(user: string, record: StatusRecord): Promise<void> {
    this.upsertStatus.run(user, record.status, record.lastSeen, this.now());
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    for (const user of users) {
      const row = this.selectStatus.get(user);
      out[user] = row ? { status: row.status, lastSeen: row.last_seen } : { status: 'offline', lastSeen: 0 };
    }
    return out;
  }

  /** Deletes the rows not written within the retention; resolves with how many. */
  async prune(): Promise<number> {
    const before = this.now() - this.retentionMs;
    return this.deleteOldReads.run(before).changes + this.deleteOldStatuses.run(before).changes;
  }

  async close(): Promise<void> {
    // The database is shared; its owner closes it.
    clearInterval(this.sweeper);
  }
}
