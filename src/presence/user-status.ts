import type { Logger } from 'pino';
import type { StatusRecord, Store, UserStatus } from '../store/store.js';
import type { PresenceStore } from './presence-store.js';

/** Users whose ids fit in a channel name get a `status:<user>` channel. */
const CHANNEL_SAFE = /^[A-Za-z0-9_.\-@=,/~]{1,200}$/;

export function statusChannel(user: string): string | undefined {
  return CHANNEL_SAFE.test(user) ? `status:${user}` : undefined;
}

/**
 * User status: `online` when a user's first connection arrives (on any node), `offline` with
 * `lastSeen` when the last one goes, and `away`/`busy`/`online` as the user sets it. Every
 * change is stored and published on the user's `status:<user>` channel.
 */
export class UserStatusService {
  constructor(
    private readonly presence: PresenceStore,
    private readonly store: Store,
    private readonly publish: (channel: string, data: unknown) => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  connected(user: string, client: string): void {
    if (user === '') return;
    void this.presence
      .connectUser(user, client)
      .then(({ first }) => (first ? this.set(user, 'online') : undefined))
      .catch((err: unknown) => this.logger.warn({ err, user }, 'status update failed'));
  }

  disconnected(user: string, client: string): void {
    if (user === '') return;
    void this.presence
      .disconnectUser(user, client)
      .then(({ last }) => (last ? this.set(user, 'offline') : undefined))
      .catch((err: unknown) => this.logger.warn({ err, user }, 'status update failed'));
  }

  async set(user: string, status: UserStatus): Promise<StatusRecord> {
    const record: StatusRecord = { status, lastSeen: Date.now() };
    await this.store.setStatus(user, record);
    const channel = statusChannel(user);
    if (channel) await this.publish(channel, { user, ...record });
    return record;
  }

  get(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.store.statuses(users);
  }
}
