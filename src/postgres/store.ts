import type { StreamPosition } from '../stream/types.js';
import {
  DEFAULT_STORE_RETENTION_MS,
  sweepInterval,
  type StatusRecord,
  type Store,
  type StoreRetentionOptions,
  type UserStatus,
} from '../store/store.js';
import { ident, type Queryable } from './pool.js';

export interface PgStoreOptions extends StoreRetentionOptions {
  schema: string;
}

/**
 * The Store in PostgreSQL (`store: "postgres"`): read positions and statuses shared by every
 * node and as durable as the database, so unread counts survive any Redis loss. Each row
 * carries when it was last written (ms); a periodic sweep deletes rows older than the retention.
 * Every call goes through the bounded pool (errors 114 when PostgreSQL is unavailable).
 */
export class PgStore implements Store {
  private readonly s: string;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly db: Queryable,
    options: PgStoreOptions,
  ) {
    this.s = ident(options.schema);
    this.retentionMs = options.retentionMs ?? DEFAULT_STORE_RETENTION_MS;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.prune().catch(() => undefined), sweepInterval(options, this.retentionMs));
    this.sweeper.unref();
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    // Within one epoch a position only moves forward; a new epoch replaces it.
    const { rows } = await this.db.query<{ offset: string; epoch: string }>(
      `INSERT INTO ${this.s}.switchboard_reads AS r (channel, user_id, epoch, "offset", written_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (channel, user_id) DO UPDATE SET
         "offset" = CASE WHEN r.epoch = excluded.epoch THEN GREATEST(r."offset", excluded."offset") ELSE excluded."offset" END,
         epoch = excluded.epoch,
         written_at = excluded.written_at
       RETURNING "offset", epoch`,
      [channel, user, position.epoch, position.offset, this.now()],
    );
    return { offset: Number(rows[0]!.offset), epoch: rows[0]!.epoch };
  }

  async lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    const { rows } = await this.db.query<{ offset: string; epoch: string }>(
      `SELECT "offset", epoch FROM ${this.s}.switchboard_reads WHERE channel = $1 AND user_id = $2`,
      [channel, user],
    );
    return rows[0] ? { offset: Number(rows[0].offset), epoch: rows[0].epoch } : undefined;
  }

  async readers(channel: string): Promise<Record<string, StreamPosition>> {
    const { rows } = await this.db.query<{ user_id: string; offset: string; epoch: string }>(
      `SELECT user_id, "offset", epoch FROM ${this.s}.switchboard_reads WHERE channel = $1`,
      [channel],
    );
    const out: Record<string, StreamPosition> = {};
    for (const row of rows) out[row.user_id] = { offset: Number(row.offset), epoch: row.epoch };
    return out;
  }

  async setStatus(user: string, record: StatusRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO ${this.s}.switchboard_statuses (user_id, status, last_seen, written_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id) DO UPDATE SET status = excluded.status, last_seen = excluded.last_seen, written_at = excluded.written_at`,
      [user, record.status, record.lastSeen, this.now()],
    );
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    if (users.length === 0) return out;
    const { rows } = await this.db.query<{ user_id: string; status: UserStatus; last_seen: string }>(
      `SELECT user_id, status, last_seen FROM ${this.s}.switchboard_statuses WHERE user_id = ANY($1::text[])`,
      [users],
    );
    const found = new Map(rows.map((r) => [r.user_id, r]));
    for (const user of users) {
      const row = found.get(user);
      out[user] = row ? { status: row.status, lastSeen: Number(row.last_seen) } : { status: 'offline', lastSeen: 0 };
    }
    return out;
  }

  /** Deletes the rows not written within the retention; resolves with how many. */
  async prune(): Promise<number> {
    const before = this.now() - this.retentionMs;
    const reads = await this.db.query(`DELETE FROM ${this.s}.switchboard_reads WHERE written_at < $1`, [before]);
    const statuses = await this.db.query(`DELETE FROM ${this.s}.switchboard_statuses WHERE written_at < $1`, [before]);
    return (reads.rowCount ?? 0) + (statuses.rowCount ?? 0);
  }

  async close(): Promise<void> {
    // The pool belongs to the PostgreSQL service.
    clearInterval(this.sweeper);
  }
}
