import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ClientInfo } from '../stream/types.js';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, runRedis, type RedisClient } from '../redis/connection.js';
import type { ExpiredPresence, PresenceEntry, PresenceStore } from './presence-store.js';

const PRESENCE_LUA = readFileSync(new URL('./redis/presence.lua', import.meta.url), 'utf8');

export interface RedisPresenceStoreOptions {
  redis: RedisClient;
  prefix: string;
  /** An entry not refreshed for this long is gone (its node died). */
  ttlMs: number;
  logger?: Logger;
  /** Bound of every Redis call (default 2000). */
  commandTimeoutMs?: number;
  /**
   * Called when a refresh put back the entries of users Redis had lost entirely (a restart
   * without persistence, a flush, a sweep after an outage longer than the TTL): `presence` for a
   * channel's presence (the node may publish `join` again), `online` for online users (the node
   * may store their status again, also lost with Redis).
   */
  onRestored?: (restored: { kind: 'presence' | 'online'; name: string; users: string[] }) => void;
}

type PresenceScript = (keys: [string, string, string], ...args: Array<string | number>) => Promise<unknown>;
type Kind = 'presence' | 'online';

/** One set this node holds entries in, with what it needs to put them back. */
interface HeldSet {
  kind: Kind;
  name: string;
  keys: [string, string, string];
  /** member → the user and the entry JSON, as added. */
  members: Map<string, { user: string; json: string }>;
}

/** Members per refresh call, channels and entries per sweep. */
const REFRESH_BATCH = 300;
const SWEEP_CHANNELS = 100;
const SWEEP_ENTRIES = 500;

/**
 * Presence shared by every node through Redis. Each node refreshes the entries it added every
 * third of the TTL; the entries of a node that died stop being refreshed and are gone within
 * the TTL, so nobody stays "online" forever after a crash. A refresh writes every entry this node
 * holds back in full (not just its expiry), so presence heals within one refresh after Redis lost
 * it (a restart without persistence, a flush, an outage longer than the TTL).
 *
 * Expired channel entries are hidden at once and removed by `sweepExpired`, which reports the
 * users that left; a per-prefix index (`PREFIX:presence-due`, channel → earliest expiry) tells it
 * which channels to look at.
 */
export class RedisPresenceStore implements PresenceStore {
  private readonly redis: RedisClient;
  private readonly prefix: string;
  private readonly ttlMs: number;
  /** What this node added and has not removed: set key → members, refreshed periodically. */
  private readonly mine = new Map<string, HeldSet>();
  private readonly refresher: NodeJS.Timeout;
  private readonly script: PresenceScript;
  private readonly timeoutMs: number;
  private readonly dueKey: string;
  private refreshing = false;

  constructor(private readonly options: RedisPresenceStoreOptions) {
    this.redis = options.redis;
    this.prefix = options.prefix;
    this.ttlMs = options.ttlMs;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    this.dueKey = `${this.prefix}:presence-due`;
    this.redis.defineCommand('sbPresence', { numberOfKeys: 3, lua: PRESENCE_LUA });
    const run = (this.redis as unknown as { sbPresence: (...a: Array<string | number>) => Promise<unknown> }).sbPresence.bind(this.redis);
    this.script = (keys, ...args) => run(...keys, ...args);
    this.refresher = setInterval(() => void this.refresh(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.refresher.unref();
  }

  async add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    return { userJoined: (await this.put('presence', channel, entry.client, entry.user, JSON.stringify(entry))) === 1 };
  }

  async remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }> {
    const keys = this.keys('presence', channel);
    this.forget(keys, entry.client);
    return { userLeft: (await this.call('presence', keys, 'remove', entry.client, entry.user)) === 1 };
  }

  async get(channel: string): Promise<Record<string, PresenceEntry>> {
    const flat = (await this.call('presence', this.keys('presence', channel), 'get')) as string[];
    const out: Record<string, PresenceEntry> = {};
    for (let i = 0; i < flat.length; i += 2) out[flat[i]!] = JSON.parse(flat[i + 1]!) as PresenceEntry;
    return out;
  }

  async connectUser(user: string, client: string): Promise<{ first: boolean }> {
    return { first: (await this.put('online', user, client, user, JSON.stringify({ user, client }))) === 1 };
  }

  async disconnectUser(user: string, client: string): Promise<{ last: boolean }> {
    const keys = this.keys('online', user);
    this.forget(keys, client);
    return { last: (await this.call('online', keys, 'remove', client, user)) === 1 };
  }

  async onlineUsers(users: readonly string[]): Promise<Set<string>> {
    const online = new Set<string>();
    const found = await Promise.all(users.map((user) => this.call('online', this.keys('online', user), 'get') as Promise<string[]>));
    users.forEach((user, i) => {
      if (found[i]!.length > 0) online.add(user);
    });
    return online;
  }

  /**
   * Removes expired channel entries (see PresenceStore.sweepExpired): the channels due in the
   * index, each swept by one script, so concurrent sweepers never report the same removal twice.
   */
  async sweepExpired(): Promise<ExpiredPresence[]> {
    const now = Date.now();
    const due = await runRedis(this.redis, this.timeoutMs, 'presence', () =>
      this.redis.zrangebyscore(this.dueKey, '-inf', now, 'LIMIT', 0, SWEEP_CHANNELS),
    );
    const out: ExpiredPresence[] = [];
    for (const channel of due) {
      const reply = (await this.call('presence', this.keys('presence', channel), 'sweep', SWEEP_ENTRIES)) as Array<string | number>;
      for (let i = 1; i < reply.length; i += 2) {
        try {
          out.push({ channel, info: JSON.parse(String(reply[i])) as PresenceEntry, userLeft: Number(reply[i + 1]) === 1 });
        } catch {
          // A malformed entry is removed all the same; nobody to report.
        }
      }
      const next = Number(reply[0]);
      await runRedis(this.redis, this.timeoutMs, 'presence', () =>
        next < 0 ? this.redis.zrem(this.dueKey, channel) : this.redis.zadd(this.dueKey, next, channel),
      );
    }
    return out;
  }

  async close(): Promise<void> {
    clearInterval(this.refresher);
    this.mine.clear();
  }

  /**
   * Writes everything this node holds back with a new expiry: entries that are gone (Redis
   * restarted, flushed, or swept them after an outage longer than the TTL) are added again with
   * their per-user counts, so presence heals within one refresh.
   */
  private async refresh(): Promise<void> {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const expiresAt = Date.now() + this.ttlMs;
      const calls: Array<Promise<unknown>> = [];
      for (const set of [...this.mine.values()]) {
        const members = [...set.members];
        for (let i = 0; i < members.length; i += REFRESH_BATCH) {
          const args = members.slice(i, i + REFRESH_BATCH).flatMap(([member, { user, json }]) => [member, user, json]);
          calls.push(this.call(set.kind, set.keys, 'refresh', expiresAt, ...args).then((users) => this.restored(set, users)));
        }
        if (set.kind === 'presence') calls.push(this.markDue(set.name, expiresAt));
      }
      const failed = (await Promise.allSettled(calls)).find((r) => r.status === 'rejected');
      if (failed) this.options.logger?.warn({ err: (failed as PromiseRejectedResult).reason as unknown }, 'presence refresh failed');
    } finally {
      this.refreshing = false;
    }
  }

  private restored(set: HeldSet, users: unknown): void {
    if (!Array.isArray(users) || users.length === 0 || !this.options.onRestored) return;
    try {
      this.options.onRestored({ kind: set.kind, name: set.name, users: users.map(String) });
    } catch (err) {
      this.options.logger?.warn({ err }, 'presence onRestored failed');
    }
  }

  /** Adds an entry this node holds. Remembered before the call, so a remove issued meanwhile wins. */
  private async put(kind: Kind, name: string, member: string, user: string, json: string): Promise<unknown> {
    const keys = this.keys(kind, name);
    let set = this.mine.get(keys[0]);
    if (!set) {
      set = { kind, name, keys, members: new Map() };
      this.mine.set(keys[0], set);
    }
    const held = { user, json };
    set.members.set(member, held);
    const expiresAt = Date.now() + this.ttlMs;
    try {
      const result = await this.call(kind, keys, 'add', member, user, json, expiresAt);
      if (kind === 'presence') await this.markDue(name, expiresAt).catch(() => undefined); // the next refresh retries
      return result;
    } catch (err) {
      // Failed (maybe after all applied, then it expires): the node does not hold it.
      if (this.mine.get(keys[0])?.members.get(member) === held) this.forget(keys, member);
      throw err;
    }
  }

  private forget(keys: [string, string, string], member: string): void {
    const set = this.mine.get(keys[0]);
    if (set?.members.delete(member) && set.members.size === 0) this.mine.delete(keys[0]);
  }

  /** The channel is due for a sweep at `at` at the latest (ZADD LT: an earlier time stays). */
  private markDue(channel: string, at: number): Promise<unknown> {
    return runRedis(this.redis, this.timeoutMs, 'presence', () => this.redis.zadd(this.dueKey, 'LT', at, channel));
  }

  private async call(kind: Kind, keys: [string, string, string], op: string, ...args: Array<string | number>): Promise<unknown> {
    // Keys live twice the TTL past their last change, so an abandoned set cleans itself up.
    // Channel entries past expiry wait a TTL for the sweep (it reports leaves); online ones go at once.
    const grace = kind === 'presence' ? this.ttlMs : 0;
    return runRedis(this.redis, this.timeoutMs, 'presence', () => this.script(keys, op, Date.now(), this.ttlMs * 2, grace, ...args));
  }

  private keys(kind: Kind, name: string): [string, string, string] {
    const base = `${this.prefix}:${kind}:{${name}}`;
    return [`${base}:entries`, `${base}:expiry`, `${base}:users`];
  }
}
