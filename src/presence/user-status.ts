import { encodeUserId, MAX_CHANNEL_BYTES } from '../channels/channels.js';
import type { StatusRecord, Store, UserStatus } from '../store/store.js';
import type { PresenceStore } from './presence-store.js';

/** A user's `status:<user>` channel, the id encoded as in every channel name; undefined past the name limit. */
export function statusChannel(user: string): string | undefined {
  const name = `status:${encodeUserId(user)}`;
  return user !== '' && Buffer.byteLength(name) <= MAX_CHANNEL_BYTES ? name : undefined;
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
  ) {}

  async connected(user: string, client: string): Promise<void> {
    if (user === '') return;
    const { first } = await this.presence.connectUser(user, client);
    if (first) await this.set(user, 'online');
  }

  async disconnected(user: string, client: string): Promise<void> {
    if (user === '') return;
    const { last } = await this.presence.disconnectUser(user, client);
    if (last) await this.set(user, 'offline');
  }

  /** A user whose presence Redis had lost is online again: stored as online unless it kept a status. */
  async restored(user: string): Promise<void> {
    const record = (await this.store.statuses([user]))[user];
    if (!record || record.status === 'offline') await this.set(user, 'online');
  }

  async set(user: string, status: UserStatus): Promise<StatusRecord> {
    const record: StatusRecord = { status, lastSeen: Date.now() };
    await this.store.setStatus(user, record);
    const channel = statusChannel(user);
    if (channel) await this.publish(channel, { user, ...record });
    return record;
  }

  /**
   * Stored statuses, corrected by presence: a user whose node died while they were online has
   * no live connection left once presence expires, and reads as offline.
   */
  async get(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const [records, online] = await Promise.all([this.store.statuses(users), this.presence.onlineUsers(users)]);
    for (const user of users) {
      const r = records[user]!;
      if (r.status !== 'offline' && !online.has(user)) records[user] = { status: 'offline', lastSeen: r.lastSeen };
    }
    return records;
  }
}
