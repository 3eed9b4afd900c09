import type { PresenceEntry, PresenceStore } from './presence-store.js';

/** Presence of one process, held in memory; it dies with the process, as it should. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly channels = new Map<string, Map<string, PresenceEntry>>();

  async add(channel: string, entry: PresenceEntry): Promise<void> {
    let entries = this.channels.get(channel);
    if (!entries) {
      entries = new Map();
      this.channels.set(channel, entries);
    }
    entries.set(entry.client, entry);
  }

  async remove(channel: string, client: string): Promise<void> {
    const entries = this.channels.get(channel);
    if (!entries) return;
    entries.delete(client);
    if (entries.size === 0) this.channels.delete(channel);
  }

  async get(channel: string): Promise<Record<string, PresenceEntry>> {
    return Object.fromEntries(this.channels.get(channel) ?? []);
  }

  async close(): Promise<void> {
    this.channels.clear();
  }
}
