import type { StreamPosition } from '../stream/types.js';
import type { SqliteDatabase } from '../store/sqlite-db.js';

/**
 * Results of publishes made with an idempotency key, remembered for the key's window so a
 * retry returns the first result instead of publishing again. Keys are scoped per channel.
 */
export interface IdempotencyLog {
  get(channel: string, key: string, now: number): StreamPosition | undefined;
  put(channel: string, key: string, position: StreamPosition, expiresAt: number): void;
  sweep(now: number): void;
}

export class MemoryIdempotencyLog implements IdempotencyLog {
  private readonly entries = new Map<string, { position: StreamPosition; expiresAt: number }>();

  get(channel: string, key: string, now: number): StreamPosition | undefined {
    const entry = this.entries.get(scoped(channel, key));
    return entry && entry.expiresAt > now ? entry.position : undefined;
  }

  put(channel: string, key: string, position: StreamPosition, expiresAt: number): void {
    this.entries.set(scoped(channel, key), { position, expiresAt });
  }

  sweep(now: number): void {
    for (const [k, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(k);
  }
}

export class SqliteIdempotencyLog implements IdempotencyLog {
  private readonly select;
  private readonly upsert;
  private readonly purge;

  constructor(db: SqliteDatabase) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS idempotency_keys (
        channel TEXT NOT NULL,
        key TEXT NOT NULL,
        offset INTEGER NOT NULL,
        epoch TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (channel, key)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS idempotency_keys_expiry ON idempotency_keys (expires_at);
    `);
    this.select = db.prepare<[string, string, number], StreamPosition>(
      'SELECT offset, epoch FROM idempotency_keys WHERE channel = ? AND key = ? AND expires_at > ?',
    );
    this.upsert = db.prepare<[string, string, number, string, number]>(
      'INSERT INTO idempotency_keys (channel, key, offset, epoch, expires_at) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (channel, key) DO UPDATE SET offset = excluded.offset, epoch = excluded.epoch, expires_at = excluded.expires_at',
    );
    this.purge = db.prepare<[number]>('DELETE FROM idempotency_keys WHERE expires_at <= ?');
  }

  get(channel: string, key: string, now: number): StreamPosition | undefined {
    return this.select.get(channel, key, now);
  }

  put(channel: string, key: string, position: StreamPosition, expiresAt: number): void {
    this.upsert.run(channel, key, position.offset, position.epoch, expiresAt);
  }

  sweep(now: number): void {
    this.purge.run(now);
  }
}

function scoped(channel: string, key: string): string {
  return `${channel}\u0000${key}`;
}
