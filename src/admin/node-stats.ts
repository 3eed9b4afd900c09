import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Node } from '../hub/node.js';
import type { Metrics } from '../metrics/metrics.js';
import { runRedis, type RedisClient } from '../redis/connection.js';

/** One second of this node, as the overview charts it. */
export interface Sample {
  /** Unix ms. */
  at: number;
  connections: number;
  users: number;
  channels: number;
  publicationsPerSecond: number;
  deliveriesPerSecond: number;
  errorsPerSecond: number;
  /** Connections closed as slow consumers (4001) since the node started. */
  slowConsumerDrops: number;
  errors: number;
  queuedBytes: number;
  rssBytes: number;
}

export interface ConnectionInfo {
  id: string;
  user: string;
  transport: 'websocket' | 'sse';
  node: string;
  name?: string;
  channels: string[];
}

/** What one node tells the others (through Redis) and the overview. */
export interface NodeSnapshot {
  id: string;
  version: string;
  startedAt: number;
  sample: Sample;
  connections: ConnectionInfo[];
  /** True when the node has more connections than it listed. */
  truncated: boolean;
}

/** Samples kept: ten minutes at one a second. */
export const SAMPLE_WINDOW = 600;
/** Connections one node lists in its snapshot. */
const MAX_LISTED_CONNECTIONS = 500;
const SNAPSHOT_TTL_MS = 6_000;

/**
 * Samples this node every second (rates from the Prometheus counters of metrics/metrics.ts) and,
 * with Redis, writes a snapshot of itself every two seconds, expiring after six, so the admin
 * UI of any node lists every live node and its connections. Timers are unref'd.
 */
export class NodeStats {
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  readonly startedAt = Date.now();
  private readonly samples: Sample[] = [];
  private last: { at: number; publications: number; deliveries: number; errors: number } | undefined;
  private readonly timer: NodeJS.Timeout;
  private ticks = 0;

  constructor(
    private readonly node: Node,
    private readonly metrics: Metrics,
    private readonly version: string,
    private readonly redis: RedisClient | undefined,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    private readonly logger?: Logger,
  ) {
    this.timer = setInterval(() => void this.tick(), 1_000);
    this.timer.unref();
    void this.tick();
  }

  /** The samples of the last ten minutes, oldest first. */
  history(): readonly Sample[] {
    return this.samples;
  }

  /** This node now. */
  local(): NodeSnapshot {
    const sessions = [...this.node.sessions];
    return {
      id: this.id,
      version: this.version,
      startedAt: this.startedAt,
      sample: this.samples.at(-1) ?? this.sampleNow(0, { publications: 0, deliveries: 0, errors: 0, slowConsumers: 0 }),
      connections: sessions.slice(0, MAX_LISTED_CONNECTIONS).map((s) => ({
        id: s.id,
        user: s.user,
        transport: s.transportKind,
        node: this.id,
        ...(s.clientName ? { name: s.clientName } : {}),
        channels: [...this.node.registry.of(s).keys()].sort(),
      })),
      truncated: sessions.length > MAX_LISTED_CONNECTIONS,
    };
  }

  /** Every live node: this one now, the others from their last snapshot in Redis. */
  async all(): Promise<NodeSnapshot[]> {
    const mine = this.local();
    if (!this.redis) return [mine];
    const redis = this.redis;
    const others = await runRedis(redis, this.timeoutMs, 'redis', async () => {
      const ids = (await redis.zrangebyscore(this.registryKey(), Date.now(), '+inf')).filter((id) => id !== this.id);
      if (ids.length === 0) return [];
      const texts = await redis.mget(...ids.map((id) => this.key(id)));
      return texts.flatMap((t) => (t ? [JSON.parse(t) as NodeSnapshot] : []));
    });
    return [mine, ...others].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Round trip to Redis in ms, or an error; undefined without Redis. */
  async redisHealth(): Promise<{ ok: boolean; latencyMs?: number; error?: string } | undefined> {
    if (!this.redis) return undefined;
    const redis = this.redis;
    const started = performance.now();
    try {
      await runRedis(redis, Math.min(this.timeoutMs, 1_000), 'redis', () => redis.ping());
      return { ok: true, latencyMs: Math.round((performance.now() - started) * 10) / 10 };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (!this.redis) return;
    const redis = this.redis;
    await runRedis(redis, Math.min(this.timeoutMs, 1_000), 'redis', () =>
      redis.multi().del(this.key(this.id)).zrem(this.registryKey(), this.id).exec(),
    ).catch(() => undefined);
  }

  private async tick(): Promise<void> {
    try {
      const totals = await this.metrics.totals();
      const now = Date.now();
      const seconds = this.last ? Math.max(0.001, (now - this.last.at) / 1000) : 1;
      const sample = this.sampleNow(seconds, totals);
      this.last = { at: now, publications: totals.publications, deliveries: totals.deliveries, errors: totals.errors };
      this.samples.push(sample);
      if (this.samples.length > SAMPLE_WINDOW) this.samples.shift();
      if (this.redis && this.ticks++ % 2 === 0) await this.publish();
    } catch (err) {
      this.logger?.debug({ err }, 'admin stats sample failed');
    }
  }

  private sampleNow(seconds: number, t: { publications: number; deliveries: number; errors: number; slowConsumers: number }): Sample {
    const stats = this.node.stats();
    const users = new Set<string>();
    for (const s of this.node.sessions) users.add(s.user);
    const rate = (now: number, before: number | undefined): number =>
      before === undefined ? 0 : Math.round(((now - before) / seconds) * 10) / 10;
    return {
      at: Date.now(),
      connections: stats.connections,
      users: users.size,
      channels: stats.channels,
      publicationsPerSecond: rate(t.publications, this.last?.publications),
      deliveriesPerSecond: rate(t.deliveries, this.last?.deliveries),
      errorsPerSecond: rate(t.errors, this.last?.errors),
      slowConsumerDrops: t.slowConsumers,
      errors: t.errors,
      queuedBytes: stats.queuedBytes,
      rssBytes: process.memoryUsage().rss,
    };
  }

  private async publish(): Promise<void> {
    const redis = this.redis!;
    const text = JSON.stringify(this.local());
    await runRedis(redis, this.timeoutMs, 'redis', () =>
      redis
        .multi()
        .set(this.key(this.id), text, 'PX', SNAPSHOT_TTL_MS)
        .zadd(this.registryKey(), Date.now() + SNAPSHOT_TTL_MS, this.id)
        .zremrangebyscore(this.registryKey(), '-inf', Date.now())
        .exec(),
    );
  }

  private registryKey(): string {
    return `${this.prefix}:{admin}:nodes`;
  }

  private key(id: string): string {
    return `${this.prefix}:{admin}:node:${id}`;
  }
}
