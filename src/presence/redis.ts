import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClientInfo } from '../stream/types.js';
import { HubError } from '../protocol/errors.js';
import type { PresenceEntry, PresenceStore } from './presence-store.js';

const PRESENCE_LUA = readFileSync(new URL('./redis/presence.lua', import.meta.url), 'utf8');

export interface RedisPresenceStoreOptions {
  redis: Redis;
  prefix: string;
  /** An entry not refreshed for this long is gone (its node died). */
  ttlMs: number;
  logger?: Logger;
}

type PresenceScript = (keys: [string, string, string], ...args: Array<string | number>) => Promise<unknown>;

/**
 * Presence shared by every node through Redis. Each node refreshes the entries it added every
 * third of the TTL; the entries of a node that died stop being refreshed and are gone within
 * the TTL, so nobody stays "online" forever after a crash.
 */
export class RedisPresenceStore implements PresenceStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly ttlMs: number;
  /** What this node added and has not removed: set key → members, refreshed periodically. */
  private readonly mine = new Map<string, { keys: [string, string, string]; members: Set<string> }>();
  private readonly refresher: NodeJS.Timeout;
  private readonly script: PresenceScript;

  constructor(private readonly options: RedisPresenceStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.ttlMs = options.ttlMs;
    this.redis.defineCommand('sbPresence', { numberOfKeys: 3, lua: PRESENCE_LUA });
    const run = (this.redis as unknown as { sbPresence: (...a: Array<string | number>) => Promise<unknown> }).sbPresence.bind(this.redis);
    this.script = (keys, ...args) => run(...keys, ...args);
    this.refresher = setInterval(() => void this.refresh(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.refresher.unref();
  }

  async add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    const keys = this.keys('presence', channel);
    const joined = await this.call(keys, 'add', entry.client, entry.user, JSON.stringify(entry), Date.now() + this.ttlMs);
    this.remember(keys, entry.client, true);
    return { userJoined: joined === 1 };
  }

  async remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }> {
    const keys = this.keys('presence', channel);
    this.remember(keys, entry.client, false);
    return { userLeft: (await this.call(keys, 'remove', entry.client, entry.user)) === 1 };
  }

  async get(channel: string): Promise<Record<string, PresenceEntry>> {
    const flat = (await this.call(this.keys('presence', channel), 'get')) as string[];
    const out: Record<string, PresenceEntry> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = JSON.parse(flat[i + 1]!) as PresenceEntry;
    return out;
  }

  async connectUser(user: string, client: string): Promise<{ first: boolean }> {
    const keys = this.keys('online', user);
    const first = await this.call(keys, 'add', client, user, JSON.stringify({ user, client }), Date.now() + this.ttlMs);
    this.remember(keys, client, true);
    return { first: first === 1 };
  }

  async disconnectUser(user: string, client: string): Promise<{ last: boolean }> {
    const keys = this.keys('online', user);
    this.remember(keys, client, false);
    return { last: (await this.call(keys, 'remove', client, user)) === 1 };
  }

  async onlineUsers(users: readonly string[]): Promise<Set<string>> {
    const online = new Set<string>();
    for (const user of users) {
      const flat = (await this.call(this.keys('online', user), 'get')) as string[];
      if (flat.length > 0) online.add(user);
    }
    return online;
  }

  async close(): Promise<void> {
    clearInterval(this.refresher);
    this.mine.clear();
  }

  /** Pushes the expiry of everything this node holds forward. */
  private async refresh(): Promise<void> {
    const expiresAt = Date.now() + this.ttlMs;
    for (const { keys, members } of [...this.mine.values()]) {
      if (members.size === 0) continue;
      try {
        await this.call(keys, 'touch', expiresAt, ...members);
      } catch (err) {
        this.options.logger?.warn({ err }, 'presence refresh failed');
      }
    }
  }

  private remember(keys: [string, string, string], member: string, held: boolean): void {
    let set = this.mine.get(keys[0]);
    if (!set) {
      if (!held) return;
      set = { keys, members: new Set() };
      this.mine.set(keys[0], set);
    }
    if (held) set.members.add(member);
    else {
      set.members.delete(member);
      if (set.members.size === 0) this.mine.delete(keys[0]);
    }
  }

  private async call(keys: [string, string, string], op: string, ...args: Array<string | number>): Promise<unknown> {
    try {
      // Keys live twice the TTL past their last change, so an abandoned set cleans itself up.
      return await this.script(keys, op, Date.now(), this.ttlMs * 2, ...args);
    } catch (err) {
      throw new HubError(114, `presence unavailable: ${(err as Error).message}`);
    }
  }

  private keys(kind: 'presence' | 'online', name: string): [string, string, string] {
    const base = `${this.prefix}:${kind}:{${name}}`;
    return [`${base}:entries`, `${base}:expiry`, `${base}:users`];
  }
}
