import type { StreamPosition } from '../stream/types.js';
import type { StatusRecord, Store } from './store.js';

/** The Store of an in-memory hub: gone with the process. */
export class MemoryStore implements Store {
  private readonly reads = new Map<string, Map<string, StreamPosition>>();
  private readonly status = new Map<string, StatusRecord>();

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    let byUser = this.reads.get(channel);
    if (!byUser) {
      byUser = new Map();
      this.reads.set(channel, byUser);
    }
    const current = byUser.get(user);
    const next = current && current.epoch === position.epoch && current.offset >= position.offset ? current : { ...position };
    byUser.set(user, next);
    return next;
  }

  async lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return this.reads.get(channel)?.get(user);
  }

  async readers(channel: string): Promise<Record<string, StreamPosition>> {
    return Object.fromEntries(this.reads.get(channel) ?? []);
  }

  async setStatus(user: string, record: StatusRecord): Promise<void> {
    this.status.set(user, record);
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    for (const user of users) out[user] = this.status.get(user) ?? { status: 'offline', lastSeen: 0 };
    return out;
  }

  async close(): Promise<void> {
    this.reads.clear();
    this.status.clear();
  }
}
