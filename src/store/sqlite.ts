import type { StreamPosition } from '../stream/types.js';
import type { SqliteDatabase } from './sqlite-db.js';
import type { StatusRecord, Store, UserStatus } from './store.js';

/** The Store of the embedded default: read positions and statuses survive a restart. */
export class SqliteStore implements Store {
  private readonly upsertRead;
  private readonly selectRead;
  private readonly selectReaders;
  private readonly upsertStatus;
  private readonly selectStatus;

  constructor(db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS read_positions (
        user TEXT NOT NULL,
        channel TEXT NOT NULL,
        offset INTEGER NOT NULL,
        epoch TEXT NOT NULL,
        PRIMARY KEY (channel, user)
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS user_status (
        user TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        last_seen INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
    // Within one epoch a position only moves forward; a new epoch replaces it.
    this.upsertRead = db.prepare<[string, string, number, string], StreamPosition>(
      `INSERT INTO read_positions (user, channel, offset, epoch) VALUES (?, ?, ?, ?)
       ON CONFLICT (channel, user) DO UPDATE SET
         offset = CASE WHEN epoch = excluded.epoch THEN MAX(offset, excluded.offset) ELSE excluded.offset END,
         epoch = excluded.epoch
       RETURNING offset, epoch`,
    );
    this.selectRead = db.prepare<[string, string], StreamPosition>(
      'SELECT offset, epoch FROM read_positions WHERE user = ? AND channel = ?',
    );
    this.selectReaders = db.prepare<[string], StreamPosition & { user: string }>(
      'SELECT user, offset, epoch FROM read_positions WHERE channel = ?',
    );
    this.upsertStatus = db.prepare<[string, string, number]>(
      'INSERT INTO user_status (user, status, last_seen) VALUES (?, ?, ?) ON CONFLICT (user) DO UPDATE SET status = excluded.status, last_seen = excluded.last_seen',
    );
    this.selectStatus = db.prepare<[string], { status: UserStatus; last_seen: number }>(
      'SELECT status, last_seen FROM user_status WHERE user = ?',
    );
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    return this.upsertRead.get(user, channel, position.offset, position.epoch)!;
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
    this.upsertStatus.run(user, record.status, record.lastSeen);
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    for (const user of users) {
      const row = this.selectStatus.get(user);
      out[user] = row ? { status: row.status, lastSeen: row.last_seen } : { status: 'offline', lastSeen: 0 };
    }
    return out;
  }

  async close(): Promise<void> {
    // The database is shared; its owner closes it.
  }
}
