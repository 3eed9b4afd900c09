import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { StreamPosition } from '../stream/types.js';
import { HubError } from '../protocol/errors.js';
import type { StatusRecord, Store } from './store.js';

const MARK_READ_LUA = readFileSync(new URL('./redis/mark-read.lua', import.meta.url), 'utf8');

/**
 * The Store shared by every node through Redis: read positions in one hash per channel
 * (moved forward atomically by a script), statuses in one hash. They are as durable as the
 * Redis behind them: run it with AOF persistence when unread counts must survive a Redis restart.
 */
export class RedisStore implements Store {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    this.redis.defineCommand('sbMarkRead', { numberOfKeys: 1, lua: MARK_READ_LUA });
  }

  async markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    const run = (this.redis as unknown as { sbMarkRead: (...a: Array<string | number>) => Promise<string> }).sbMarkRead.bind(this.redis);
    return parse(await this.call(() => run(this.readsKey(channel), user, position.offset, position.epoch, 0)))!;
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
    await this.call(() => this.redis.hset(`${this.prefix}:status`, user, JSON.stringify(record)));
  }

  async statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    const values = await this.call(() => this.redis.hmget(`${this.prefix}:status`, ...users));
    const out: Record<string, StatusRecord> = {};
    users.forEach((user, i) => {
      const v = values[i];
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

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new HubError(114, `store unavailable: ${(err as Error).message}`);
    }
  }
}

function parse(value: string | null | undefined): StreamPosition | undefined {
  if (!value) return undefined;
  const sep = value.indexOf(':');
  return { offset: Number(value.slice(0, sep)), epoch: value.slice(sep + 1) };
}
