import type { StreamPosition } from '../stream/types.js';
import { DEFAULT_STORE_RETENTION_MS, sweepInterval, type StatusRecord, type Store, type StoreRetentionOptions } from './store.js';

/** The Store of an in-memory hub: gone with the process; what is not written for the retention goes sooner. */
export class MemoryStore implements Store {
  private readonly reads = new Map<string, Map<string, { position: StreamPosition; at: number }>>();
  private readonly status = new Map<string, { record: StatusRecord; at: number }>();
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: StoreRetentionOptions = {}) {
    this.retentionMs = options.retentionMs ?? DEFAULT_STORE_RETENTION_MS;
    this.now = options.now ?? Date.now;
    this.sweeper = setInterval(() => void this.prune(), sweepInterval(options, this.retentionMs));
    this.sweeper.unref();
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    let byUser = this.reads.get(channel);
    if (!byUser) {
      byUser = new Map();
      this.reads.set(channel, byUser);
    }
    const current = byUser.get(user)?.position;
    const next = current && current.epoch === position.epoch && current.offset >= position.offset ? current : { ...position };
    byUser.set(user, { position: next, at: this.now() });
    return next;
  }

  async lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return this.reads.get(channel)?.get(user)?.position;
  }

  async readers(channel: string): Promise<Record<string, StreamPosition>> {
    const out: Record<string, StreamPosition> = {};
    for (const [user, { position }] of this.reads.get(channel) ?? []) out[user] = position;
    return out;
  }

  async setStatus(user: string, record: StatusRecord): Promise<void> {
    this.status.set(user, { record, at: this.now() });
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    for (const user of users) out[user] = this.status.get(user)?.record ?? { status: 'offline', lastSeen: 0 };
    return out;
  }

  /** Deletes what was not written within the retention; resolves with how many. */
  async prune(): Promise<number> {
    const before = this.now() - this.retentionMs;
    let removed = 0;
    for (const [channel, byUser] of this.reads) {
      for (const [user, { at }] of byUser) if (at < before && byUser.delete(user)) removed++;
      if (byUser.size === 0) this.reads.delete(channel);
    }
    for (const [user, { at }] of this.status) if (at < before && this.status.delete(user)) removed++;
    return removed;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.reads.clear();
    this.status.clear();
  }
}
