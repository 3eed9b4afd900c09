import type { WebhookEventType } from '../config/options.js';
import type { SqliteDatabase } from '../store/sqlite-db.js';
import { newEvent, type FailedWebhookEvent, type MemberKind, type WebhookEvent, type WebhookQueueStatus, type WebhookStore } from './events.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhook_queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_failed (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, error TEXT NOT NULL, failed_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_members (kind TEXT NOT NULL, name TEXT NOT NULL, node TEXT NOT NULL, PRIMARY KEY (kind, name, node));
CREATE INDEX IF NOT EXISTS webhook_members_node ON webhook_members (node);
CREATE TABLE IF NOT EXISTS webhook_active (kind TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (kind, name));
CREATE TABLE IF NOT EXISTS webhook_departing (user TEXT PRIMARY KEY, since INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS webhook_leases (node TEXT PRIMARY KEY, expires INTEGER NOT NULL);
`;

/**
 * The embedded webhook store: SQLite (the file under dataDir, so a SIGKILL or restart loses no
 * queued event; or an in-memory database without dataDir). Each step is one transaction.
 */
export class SqliteWebhookStore implements WebhookStore {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly enabled: ReadonlySet<WebhookEventType>,
  ) {
    db.exec(SCHEMA);
  }

  add(kind: MemberKind, name: string, node: string, now: number): Promise<void> {
    return this.tx(() => {
      this.db.prepare('INSERT OR IGNORE INTO webhook_members (kind, name, node) VALUES (?, ?, ?)').run(kind, name, node);
      if (kind === 'u') this.db.prepare('DELETE FROM webhook_departing WHERE user = ?').run(name);
      if (this.db.prepare('INSERT OR IGNORE INTO webhook_active (kind, name) VALUES (?, ?)').run(kind, name).changes === 1) {
        this.emit(kind === 'u' ? 'user.online' : 'channel.occupied', kind === 'u' ? { user: name } : { channel: name }, now);
      }
    });
  }

  remove(kind: MemberKind, name: string, node: string, now: number): Promise<void> {
    return this.tx(() => {
      this.db.prepare('DELETE FROM webhook_members WHERE kind = ? AND name = ? AND node = ?').run(kind, name, node);
      this.emptied(kind, name, now);
    });
  }

  sweep(node: string, now: number, leaseMs: number, graceMs: number): Promise<void> {
    return this.tx(() => {
      this.db.prepare('INSERT OR REPLACE INTO webhook_leases (node, expires) VALUES (?, ?)').run(node, now + leaseMs);
      const dead = this.db.prepare('SELECT node FROM webhook_leases WHERE expires <= ?').all(now) as Array<{ node: string }>;
      const orphans = this.db
        .prepare('SELECT DISTINCT node FROM webhook_members WHERE node NOT IN (SELECT node FROM webhook_leases)')
        .all() as Array<{ node: string }>;
      for (const { node: gone } of [...dead, ...orphans]) {
        const held = this.db.prepare('SELECT kind, name FROM webhook_members WHERE node = ?').all(gone) as Array<{ kind: MemberKind; name: string }>;
        this.db.prepare('DELETE FROM webhook_members WHERE node = ?').run(gone);
        for (const { kind, name } of held) this.emptied(kind, name, now);
        this.db.prepare('DELETE FROM webhook_leases WHERE node = ?').run(gone);
      }
      const due = this.db.prepare('SELECT user FROM webhook_departing WHERE since <= ? ORDER BY since LIMIT 500').all(now - graceMs) as Array<{ user: string }>;
      for (const { user } of due) {
        this.db.prepare('DELETE FROM webhook_departing WHERE user = ?').run(user);
        if (this.count('u', user) === 0 && this.db.prepare("DELETE FROM webhook_active WHERE kind = 'u' AND name = ?").run(user).changes === 1) {
          this.emit('user.offline', { user }, now);
        }
      }
    });
  }

  enqueue(events: readonly WebhookEvent[]): Promise<void> {
    return this.tx(() => {
      const insert = this.db.prepare('INSERT INTO webhook_queue (event) VALUES (?)');
      for (const event of events) insert.run(JSON.stringify(event));
    });
  }

  head(_node: string, max: number): Promise<string[]> {
    const rows = this.db.prepare('SELECT event FROM webhook_queue ORDER BY seq LIMIT ?').all(max) as Array<{ event: string }>;
    return Promise.resolve(rows.map((r) => r.event));
  }

  ack(_node: string, count: number): Promise<void> {
    return this.tx(() => {
      this.db.prepare('DELETE FROM webhook_queue WHERE seq IN (SELECT seq FROM webhook_queue ORDER BY seq LIMIT ?)').run(count);
    });
  }

  setAside(_node: string, count: number, error: string, now: number): Promise<void> {
    return this.tx(() => {
      const rows = this.db.prepare('SELECT seq, event FROM webhook_queue ORDER BY seq LIMIT ?').all(count) as Array<{ seq: number; event: string }>;
      const insert = this.db.prepare('INSERT OR REPLACE INTO webhook_failed (id, event, error, failed_at) VALUES (?, ?, ?, ?)');
      for (const row of rows) {
        insert.run((JSON.parse(row.event) as WebhookEvent).id, row.event, error, now);
        this.db.prepare('DELETE FROM webhook_queue WHERE seq = ?').run(row.seq);
      }
    });
  }

  failed(limit: number): Promise<FailedWebhookEvent[]> {
    const rows = this.db.prepare('SELECT event, error, failed_at FROM webhook_failed ORDER BY seq LIMIT ?').all(limit) as Array<{
      event: string;
      error: string;
      failed_at: number;
    }>;
    return Promise.resolve(rows.map((r) => ({ event: JSON.parse(r.event) as WebhookEvent, error: r.error, failedAt: r.failed_at })));
  }

  retry(ids: readonly string[] | undefined): Promise<number> {
    let moved = 0;
    return this.tx(() => {
      const rows = this.db.prepare('SELECT id, event FROM webhook_failed ORDER BY seq').all() as Array<{ id: string; event: string }>;
      const wanted = ids ? new Set(ids) : undefined;
      for (const row of rows) {
        if (wanted && !wanted.has(row.id)) continue;
        this.db.prepare('INSERT INTO webhook_queue (event) VALUES (?)').run(row.event);
        this.db.prepare('DELETE FROM webhook_failed WHERE id = ?').run(row.id);
        moved += 1;
      }
    }).then(() => moved);
  }

  status(): Promise<WebhookQueueStatus> {
    const row = this.db
      .prepare('SELECT (SELECT COUNT(*) FROM webhook_queue) AS queued, (SELECT COUNT(*) FROM webhook_failed) AS failed')
      .get() as WebhookQueueStatus;
    return Promise.resolve({ queued: row.queued, failed: row.failed });
  }

  /** A membership just ended: a channel with no subscriber left is vacated; a user starts the grace period. */
  private emptied(kind: MemberKind, name: string, now: number): void {
    if (this.count(kind, name) > 0) return;
    if (kind === 'c') {
      if (this.db.prepare("DELETE FROM webhook_active WHERE kind = 'c' AND name = ?").run(name).changes === 1) this.emit('channel.vacated', { channel: name }, now);
    } else if (this.db.prepare("SELECT 1 FROM webhook_active WHERE kind = 'u' AND name = ?").get(name)) {
      this.db.prepare('INSERT OR IGNORE INTO webhook_departing (user, since) VALUES (?, ?)').run(name, now);
    }
  }

  private count(kind: MemberKind, name: string): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM webhook_members WHERE kind = ? AND name = ?').get(kind, name) as { n: number }).n;
  }

  private emit(type: WebhookEventType, data: Record<string, unknown>, now: number): void {
    if (!this.enabled.has(type)) return;
    this.db.prepare('INSERT INTO webhook_queue (event) VALUES (?)').run(JSON.stringify(newEvent(type, data, now)));
  }

  private tx(fn: () => void): Promise<void> {
    try {
      this.db.transaction(fn)();
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }
}
