import { readFileSync } from 'node:fs';
import type { StreamPosition } from '../stream/types.js';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, runRedis, type RedisClient } from '../redis/connection.js';
import { DEFAULT_STORE_RETENTION_MS, type StatusRecord, type Store, type StoreRetentionOptions } from './store.js';

const MARK_READ_LUA = readFileSync(new URL('./redis/mark-read.lua', import.meta.url), 'utf8');

export interface RedisStoreOptions extends StoreRetentionOptions {
  /** Bound of every Redis call (default 2000). */
  commandTimeoutMs?: number;
}

/**
 * The Store shared by every node through Redis: read positions in one hash per channel
 * (moved forward atomically by a script), with a sorted set of when each user last wrote there;
 * statuses in one key per user. They are as durable as the Redis behind them: run it with AOF
 * persistence when unread counts must survive a Redis restart.
 *
 * Retention: every write sets the key's TTL to the retention, so a channel nobody marked read for
 * that long, or a user whose status did not change, is forgotten by Redis itself; within a
 * channel, users who have not written for the retention are dropped by later writes.
 * Statuses written by earlier versions in the one `PREFIX:status` hash are still read, moved
 * out user by user as they change, and that hash gets the retention as its TTL.
 */
export class RedisStore implements Store {
  private readonly retentionMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private legacyExpirySet = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    options: RedisStoreOptions = {},
  ) {
    this.retentionMs = options.retentionMs ?? DEFAULT_STORE_RETENTION_MS;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    this.now = options.now ?? Date.now;
    this.redis.defineCommand('sbMarkRead', { numberOfKeys: 2, lua: MARK_READ_LUA });
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    const run = (this.redis as unknown as { sbMarkRead: (...a: Array<string | number>) => Promise<string> }).sbMarkRead.bind(this.redis);
    const keys = [this.readsKey(channel), `${this.prefix}:reads-at:{${channel}}`];
    return parse(await this.call(() => run(...keys, user, position.offset, position.epoch, this.retentionMs, this.now())))!;
  }

  async lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return parse(await this.call(() => this.redis.hget(this.readsKey(channel), user)));
  }

  async readers(channel: string): Promise<Record<string, StreamPosition>> {
    const all = await this.call(() => this.redis.hgetall(this.readsKey(channel)));
    const out: Record<string, StreamPosition> = {};
    for (const [user, value] of Object.entries(all)) out[user] = parse(value)!;
    return out;
  }

  async setStatus(user: string, record: StatusRecord): Promise<void> {
    const legacy = this.legacyKey();
    await this.call(() =>
      Promise.all([this.redis.set(this.statusKey(user), JSON.stringify(record), 'PX', this.retentionMs), this.redis.hdel(legacy, user)]),
    );
    if (!this.legacyExpirySet) {
      this.legacyExpirySet = true;
      // Redis 7: only if it has no TTL yet. Older servers refuse NX; the hash then just stays.
      await this.call(() => this.redis.call('PEXPIRE', legacy, this.retentionMs, 'NX')).catch(() => undefined);
    }
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const out: Record<string, StatusRecord> = {};
    if (users.length === 0) return out;
    const [values, legacy] = await this.call(() =>
      Promise.all([Promise.all(users.map((u) => this.redis.get(this.statusKey(u)))), this.redis.hmget(this.legacyKey(), ...users)]),
    );
    users.forEach((user, i) => {
      const v = values[i] ?? legacy[i];
      out[user] = v ? (JSON.parse(v) as StatusRecord) : { status: 'offline', lastSeen: 0 };
    });
    return out;
  }

  async close(): Promise<void> {
    // The connection belongs to the hub.
  }

  private readsKey(channel: string): string {
    return `${this.prefix}:reads:{${channel}}`;
  }

  private statusKey(user: string): string {
    return `${this.prefix}:status:{${user}}`;
  }

  private legacyKey(): string {
    return `${this.prefix}:status`;
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, this.timeoutMs, 'store', fn);
  }
}

function parse(value: string | null | undefined): StreamPosition | undefined {
  if (!value) return undefined;
  const sep = value.indexOf(':');
  return { offset: Number(value.slice(0, sep)), epoch: value.slice(sep + 1) };
}
