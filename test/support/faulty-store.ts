/** A fault-injecting Store (see test/support/fault-switch.ts for the faults). */
import { MemoryStore } from '../../src/store/memory.js';
import type { StatusRecord, Store } from '../../src/store/store.js';
import type { StreamPosition } from '../../src/stream/types.js';
import { Faults } from './fault-switch.js';

export const STORE_METHODS = ['markRead', 'lastRead', 'readers', 'setStatus', 'statuses', 'close'] as const;
export type StoreMethod = (typeof STORE_METHODS)[number];

/** A Store that forwards to `inner` (default: MemoryStore) through faults. */
export class FaultyStore implements Store {
  readonly faults = new Faults<StoreMethod>(STORE_METHODS, ['close']);

  constructor(readonly inner: Store = new MemoryStore()) {}

  markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    return this.faults.run(
      'markRead',
      [user, channel, position],
      () => this.inner.markRead(user, channel, position),
      () => ({ ...position }),
    );
  }

  lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return this.faults.run(
      'lastRead',
      [user, channel],
      () => this.inner.lastRead(user, channel),
      () => undefined,
    );
  }

  readers(channel: string): Promise<Record<string, StreamPosition>> {
    return this.faults.run(
      'readers',
      [channel],
      () => this.inner.readers(channel),
      () => ({}),
    );
  }

  setStatus(user: string, record: StatusRecord): Promise<void> {
    return this.faults.run(
      'setStatus',
      [user, record],
      () => this.inner.setStatus(user, record),
      () => undefined,
    );
  }

  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.faults.run(
      'statuses',
      [users],
      () => this.inner.statuses(users),
      () => Object.fromEntries(users.map((u) => [u, { status: 'offline', lastSeen: 0 } satisfies StatusRecord])),
    );
  }

  close(): Promise<void> {
    return this.faults.run(
      'close',
      [],
      () => this.inner.close(),
      () => undefined,
    );
  }
}
