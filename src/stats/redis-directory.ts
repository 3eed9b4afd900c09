import { withTimeout } from '../limits/timeout.js';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DEFAULT_REDIS_COMMAND_TIMEOUT_MS, runRedis, type RedisClient } from '../redis/connection.js';
import type { ChannelDirectory } from './channel-directory.js';

/**
 * Nodes joined by Redis: each node writes a snapshot of its channel counts to a hash of its own
 * every `intervalMs` (expiring after three missed writes, so a dead node drops out), and
 * readers sum the snapshots of every live node. Counts may lag by up to one interval.
 * On a Redis Cluster (`oneSlot`) the registry and the snapshots share the hash tag `{PREFIX}`,
 * so each write (one MULTI over both) runs on one shard.
 */
export class RedisChannelDirectory implements ChannelDirectory {
  readonly nodeId = randomUUID();
  private readonly timer: NodeJS.Timeout;
  private readonly registry: string;
  private readonly base: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly local: () => Map<string, number>,
    private readonly intervalMs: number,
    private readonly logger?: Logger,
    /** Bound of every Redis call (default 2000). */
    private readonly timeoutMs: number = DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    layout: { oneSlot?: boolean } = {},
  ) {
    this.base = layout.oneSlot ? `{${prefix}}` : prefix;
    this.registry = `${this.base}:nodes`;
    this.timer = setInterval(() => void this.write(), intervalMs);
    this.timer.unref();
    void this.write();
  }

  async channels(): Promise<Map<string, number>> {
    await this.write();
    const totals = new Map<string, number>();
    for (const node of await this.liveNodes()) {
      const counts = await this.call(() => this.redis.hgetall(this.key(node)));
      for (const [channel, n] of Object.entries(counts)) totals.set(channel, (totals.get(channel) ?? 0) + Number(n));
    }
    return totals;
  }

  async nodes(): Promise<number> {
    return (await this.liveNodes()).length;
  }

  /** Bounded: a stalled Redis only delays it by the command timeout (the snapshot then expires on its own). */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await withTimeout(
      this.call(() => this.redis.multi().del(this.key(this.nodeId)).zrem(this.registry, this.nodeId).exec()),
      Math.min(this.timeoutMs, 1_000),
      'close timed out',
    ).catch(() => undefined);
  }

  private async liveNodes(): Promise<string[]> {
    return this.call(() => this.redis.zrangebyscore(this.registry, Date.now(), '+inf'));
  }

  /** Replaces this node's snapshot and renews its registration. */
  private async write(): Promise<void> {
    const counts = this.local();
    const expiresAt = Date.now() + this.intervalMs * 3;
    const tx = this.redis.multi().del(this.key(this.nodeId));
    if (counts.size > 0) tx.hset(this.key(this.nodeId), Object.fromEntries(counts));
    tx.pexpire(this.key(this.nodeId), this.intervalMs * 3)
      .zadd(this.registry, expiresAt, this.nodeId)
      .zremrangebyscore(this.registry, '-inf', Date.now());
    try {
      await this.call(() => tx.exec());
    } catch (err) {
      this.logger?.debug({ err }, 'channel snapshot failed');
    }
  }

  private key(node: string): string {
    return `${this.base}:node:${node}:channels`;
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return runRedis(this.redis, this.timeoutMs, 'redis', fn);
  }
}
