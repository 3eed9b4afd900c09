/** A fault-injecting PresenceStore (see test/support/fault-switch.ts for the faults). */
import { MemoryPresenceStore } from '../../src/presence/memory.js';
import type { PresenceEntry, PresenceStore } from '../../src/presence/presence-store.js';
import type { ClientInfo } from '../../src/stream/types.js';
import { Faults } from './fault-switch.js';

export const PRESENCE_METHODS = ['add', 'remove', 'get', 'connectUser', 'disconnectUser', 'onlineUsers', 'close'] as const;
export type PresenceMethod = (typeof PRESENCE_METHODS)[number];

/** A PresenceStore that forwards to `inner` (default: MemoryPresenceStore) through faults. */
export class FaultyPresenceStore implements PresenceStore {
  readonly faults = new Faults<PresenceMethod>(PRESENCE_METHODS, ['close']);

  constructor(readonly inner: PresenceStore = new MemoryPresenceStore()) {}

  add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    return this.faults.run(
      'add',
      [channel, entry],
      () => this.inner.add(channel, entry),
      () => ({ userJoined: false }),
    );
  }

  remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }> {
    return this.faults.run(
      'remove',
      [channel, entry],
      () => this.inner.remove(channel, entry),
      () => ({ userLeft: false }),
    );
  }

  get(channel: string): Promise<Record<string, PresenceEntry>> {
    return this.faults.run(
      'get',
      [channel],
      () => this.inner.get(channel),
      () => ({}),
    );
  }

  connectUser(user: string, client: string): Promise<{ first: boolean }> {
    return this.faults.run(
      'connectUser',
      [user, client],
      () => this.inner.connectUser(user, client),
      () => ({ first: false }),
    );
  }

  disconnectUser(user: string, client: string): Promise<{ last: boolean }> {
    return this.faults.run(
      'disconnectUser',
      [user, client],
      () => this.inner.disconnectUser(user, client),
      () => ({ last: false }),
    );
  }

  onlineUsers(users: readonly string[]): Promise<Set<string>> {
    return this.faults.run(
      'onlineUsers',
      [users],
      () => this.inner.onlineUsers(users),
      () => new Set<string>(),
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
