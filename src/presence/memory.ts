import type { ClientInfo } from '../stream/types.js';
import type { ExpiredPresence, PresenceEntry, PresenceStore } from './presence-store.js';

/**
 * Presence of one process, held in memory. It dies with the process, as it should: after a
 * crash nobody it knew is still shown online.
 */
export class MemoryPresenceStore implements PresenceStore {
  private readonly channels = new Map<string, Map<string, PresenceEntry>>();
  private readonly users = new Map<string, Set<string>>();

  async add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    let entries = this.channels.get(channel);
    if (!entries) {
      entries = new Map();
      this.channels.set(channel, entries);
    }
    const userJoined = !hasUser(entries, entry.user);
    entries.set(entry.client, entry);
    return { userJoined };
  }

  async remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }> {
    const entries = this.channels.get(channel);
    if (!entries?.delete(entry.client)) return { userLeft: false };
    if (entries.size === 0) this.channels.delete(channel);
    return { userLeft: !hasUser(entries, entry.user) };
  }

  async get(channel: string): Promise<Record<string, PresenceEntry>> {
    return Object.fromEntries(this.channels.get(channel) ?? []);
  }

  async connectUser(user: string, client: string): Promise<{ first: boolean }> {
    let clients = this.users.get(user);
    if (!clients) {
      clients = new Set();
      this.users.set(user, clients);
    }
    clients.add(client);
    return { first: clients.size === 1 };
  }

  async disconnectUser(user: string, client: string): Promise<{ last: boolean }> {
    const clients = this.users.get(user);
    if (!clients?.delete(client)) return { last: false };
    if (clients.size > 0) return { last: false };
    this.users.delete(user);
    return { last: true };
  }

  async onlineUsers(users: readonly string[]): Promise<Set<string>> {
    return new Set(users.filter((u) => this.users.has(u)));
  }

  /** Nothing expires here: entries live exactly as long as their connections in this process. */
  async sweepExpired(): Promise<ExpiredPresence[]> {
    return [];
  }

  async close(): Promise<void> {
    this.channels.clear();
    this.users.clear();
  }
}

function hasUser(entries: Map<string, PresenceEntry>, user: string): boolean {
  for (const e of entries.values()) if (e.user === user) return true;
  return false;
}
