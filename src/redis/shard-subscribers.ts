import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { withTimeout } from '../limits/timeout.js';
import { closeRedis, createRedisConnection, firstReady, type RedisSecurity } from './connection.js';
import { masterOf, slotOf } from './cluster.js';

export interface ShardSubscribersOptions {
  cluster: Cluster;
  /** Bound of every subscribe and of the first connect. */
  timeoutMs: number;
  logger?: Logger | undefined;
  /** Credentials and TLS of the cluster's nodes. */
  security?: RedisSecurity | undefined;
  /** Every message of every shard channel subscribed here. */
  onMessage: (channel: Buffer, message: Buffer) => void;
}

/** One subscriber connection to one master, with the shard channels it serves here. */
interface Shard {
  node: string;
  conn: Redis;
  channels: Set<string>;
  /** Channels whose SSUBSCRIBE this connection confirmed since it last connected. */
  confirmed: Set<string>;
  /** Counts connects, so a late confirmation from an earlier one is ignored. */
  generation: number;
  retry: NodeJS.Timeout | undefined;
}

/** How often the channels are checked against the slot map (and after every slot refresh). */
const RECONCILE_MS = 500;
const RESUBSCRIBE_RETRY_MS = 500;

/**
 * Sharded pub/sub on a Redis Cluster: one subscriber connection per master that owns a channel
 * this node wants, each channel SSUBSCRIBEd on the master of its slot (the node ref-counts
 * channels, so this sees each one once). After every reconnect a shard SSUBSCRIBEs its channels
 * again and confirms them; when the slot map changes (a failover promoted a replica, slots
 * migrated) the channels move to their new master, and the connection they left is replaced.
 * Delivery is at most once, as with plain pub/sub: whatever was published while a channel moved
 * is found by the offsets (or the position check) and recovered from the stream.
 *
 * ioredis' own sharded subscribers (`shardedSubscribers: true`) resubscribe silently; these are
 * this module's own so that readiness can tell whether every channel is really subscribed.
 */
export class ShardSubscribers {
  private readonly shards = new Map<string, Shard>();
  /** Channel → the master it is subscribed on (or being subscribed on). */
  private readonly owner = new Map<string, string>();
  /** Channel → its slot (CRC16 once per channel, not on every check). */
  private readonly slots = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private readonly onRefresh = (): void => this.reconcile();
  private closed = false;

  constructor(private readonly o: ShardSubscribersOptions) {
    this.timer = setInterval(() => this.reconcile(), RECONCILE_MS);
    this.timer.unref();
    o.cluster.on('refresh', this.onRefresh);
  }

  /** SSUBSCRIBEs on the channel's master and waits for the confirmation (bounded). */
  async subscribe(channel: string): Promise<void> {
    if (this.closed) throw new Error('subscribers are closed');
    await firstReady(this.o.cluster, this.o.timeoutMs);
    const node = masterOf(this.o.cluster, this.slot(channel));
    if (node === undefined) throw new Error('no master known for the channel');
    const shard = this.assign(channel, node, false);
    try {
      await firstReady(shard.conn, this.o.timeoutMs);
      const generation = shard.generation;
      await withTimeout(shard.conn.ssubscribe(channel), this.o.timeoutMs, 'ssubscribe timed out');
      if (shard.generation === generation && this.owner.get(channel) === node) shard.confirmed.add(channel);
    } catch (err) {
      this.release(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    const shard = this.release(channel);
    if (shard && shard.conn.status === 'ready') {
      await withTimeout(shard.conn.sunsubscribe(channel), this.o.timeoutMs, 'sunsubscribe timed out');
    }
  }

  /** Every channel confirmed on a connected master that (as far as the slot map says) owns it. */
  healthy(): boolean {
    if (this.closed || this.o.cluster.status !== 'ready') return false;
    for (const [channel, node] of this.owner) {
      const shard = this.shards.get(node);
      if (!shard || shard.conn.status !== 'ready' || !shard.confirmed.has(channel)) return false;
      if (masterOf(this.o.cluster, this.slot(channel)) !== node) return false;
    }
    return true;
  }

  /** Subscriber connections open now (one per master that serves a wanted channel). */
  get connections(): number {
    return this.shards.size;
  }

  async close(bound: number): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.o.cluster.off('refresh', this.onRefresh);
    const shards = [...this.shards.values()];
    this.shards.clear();
    this.owner.clear();
    this.slots.clear();
    await Promise.all(shards.map((s) => this.drop(s, bound)));
  }

  /** Moves the channels whose slot has a new master; replaces a connection they left. */
  private reconcile(): void {
    if (this.closed || this.o.cluster.status !== 'ready') return;
    const moved: Array<[string, string]> = [];
    for (const [channel, node] of this.owner) {
      const now = masterOf(this.o.cluster, this.slot(channel));
      if (now !== undefined && now !== node) moved.push([channel, now]);
    }
    if (moved.length === 0) return;
    // A master that lost slots unsubscribes their channels itself (a push ioredis does not
    // expect), and a dead one never answers: start each affected connection afresh.
    const left = new Set(moved.map(([channel]) => this.owner.get(channel)!));
    for (const node of left) {
      const shard = this.shards.get(node);
      if (!shard) continue;
      this.shards.delete(node);
      void this.drop(shard, this.o.timeoutMs);
      for (const channel of shard.channels) this.owner.delete(channel);
      for (const channel of shard.channels) {
        const to = masterOf(this.o.cluster, this.slot(channel)) ?? node;
        this.o.logger?.info({ channel, from: node, to }, 'shard channel moves to its new master');
        this.assign(channel, to, true);
      }
    }
  }

  /**
   * Records the channel on the node's connection (created when needed), which SSUBSCRIBEs it on
   * ready; `now`: at once if it is ready already.
   */
  private assign(channel: string, node: string, now: boolean): Shard {
    const shard = this.shards.get(node) ?? this.open(node);
    this.owner.set(channel, node);
    shard.channels.add(channel);
    if (now && shard.conn.status === 'ready') this.resubscribe(shard, [channel]);
    return shard;
  }

  private slot(channel: string): number {
    let slot = this.slots.get(channel);
    if (slot === undefined) this.slots.set(channel, (slot = slotOf(channel)));
    return slot;
  }

  private release(channel: string): Shard | undefined {
    const node = this.owner.get(channel);
    this.owner.delete(channel);
    this.slots.delete(channel);
    const shard = node === undefined ? undefined : this.shards.get(node);
    if (!shard) return undefined;
    shard.channels.delete(channel);
    shard.confirmed.delete(channel);
    if (shard.channels.size === 0) {
      this.shards.delete(shard.node);
      void this.drop(shard, this.o.timeoutMs);
      return undefined;
    }
    return shard;
  }

  private open(node: string): Shard {
    const conn = createRedisConnection(`redis://${node}`, {
      commandTimeoutMs: this.o.timeoutMs,
      ...(this.o.logger ? { logger: this.o.logger } : {}),
      name: `broker-subscriber ${node}`,
      security: this.o.security,
    });
    const shard: Shard = { node, conn, channels: new Set(), confirmed: new Set(), generation: 0, retry: undefined };
    conn.on('smessageBuffer', (channel: Buffer, message: Buffer) => this.o.onMessage(channel, message));
    conn.on('ready', () => this.resubscribe(shard, [...shard.channels]));
    conn.on('close', () => {
      shard.generation++;
      shard.confirmed.clear();
    });
    this.shards.set(node, shard);
    return shard;
  }

  /** SSUBSCRIBEs channels on a connected shard, one command each (a command takes one slot). */
  private resubscribe(shard: Shard, channels: string[]): void {
    clearTimeout(shard.retry);
    if (this.closed || this.shards.get(shard.node) !== shard || channels.length === 0) return;
    const generation = shard.generation;
    const all = Promise.all(channels.map((c) => shard.conn.ssubscribe(c)));
    withTimeout(all, this.o.timeoutMs, 'ssubscribe timed out').then(
      () => {
        if (generation !== shard.generation) return;
        for (const c of channels) if (shard.channels.has(c)) shard.confirmed.add(c);
      },
      (err: unknown) => {
        if (generation !== shard.generation || this.closed || this.shards.get(shard.node) !== shard) return;
        this.o.logger?.warn({ err: (err as Error).message, node: shard.node }, 'redis ssubscribe failed; retrying');
        shard.retry = setTimeout(() => this.resubscribe(shard, [...shard.channels]), RESUBSCRIBE_RETRY_MS);
        shard.retry.unref();
      },
    );
  }

  private async drop(shard: Shard, bound: number): Promise<void> {
    clearTimeout(shard.retry);
    shard.generation++;
    await closeRedis(shard.conn, Math.min(bound, 1_000));
  }
}
