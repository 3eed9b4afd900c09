import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { withTimeout } from '../limits/timeout.js';
import { HubError } from '../protocol/errors.js';
import { closeRedis, DEFAULT_REDIS_COMMAND_TIMEOUT_MS, runRedis, toHubError, type RedisSecurity } from '../redis/connection.js';
import { createRedisCluster } from '../redis/cluster.js';
import { ShardSubscribers } from '../redis/shard-subscribers.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, LossyDelivery, PublishOptions, PublishResult } from './broker.js';
import { dispatchChannelMessage, parseControl, RedisStreams } from './redis-streams.js';
import type { HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent } from '../stream/types.js';

export interface RedisClusterBrokerOptions {
  /** Seed nodes, `host:port`; the client learns the rest of the cluster from them. */
  seeds: readonly string[];
  prefix?: string;
  logger?: Logger;
  now?: () => number;
  /** Bound of every Redis call, subscriptions and the first connect included (default 2000). */
  commandTimeoutMs?: number;
  /** Credentials and TLS of every node. */
  security?: RedisSecurity | undefined;
}

/**
 * The Broker on a Redis Cluster. History and the publish script are RedisBroker's (RedisStreams),
 * with every key of a channel and its shard channel `PREFIX:ch:{channel}` in the slot of
 * `{channel}`, so a publish runs on one shard and its SPUBLISH reaches only that shard's
 * subscribers (sharded pub/sub, Redis 7) — classic PUBLISH on a cluster is broadcast to every
 * node, which is what caps a cluster's throughput. Each node keeps one subscriber connection per
 * master that owns a channel it wants (ShardSubscribers). Cross-node commands travel on the
 * shard channel `PREFIX:control`, which every node subscribes.
 *
 * Failure: while a master is down, commands for its slots fail with a temporary error (114); a
 * command whose connection dropped is never re-sent (it may have run), so a publisher never gets
 * a false acknowledgement, only an error to retry (with its idempotency key). Once a replica is
 * promoted, the subscriptions move to it; whatever was lost meanwhile is found by the offsets and
 * recovered from the stream, and writes the old master had not replicated are found as a stream
 * that went back (a new epoch, subscribers told `recovered: false`).
 */
export class RedisClusterBroker implements Broker, HealthChecker, LossyDelivery {
  readonly lossyDelivery = true as const;
  private readonly cmd: Cluster;
  private readonly subs: ShardSubscribers;
  private readonly streams: RedisStreams;
  private readonly prefix: string;
  private readonly controlChannel: string;
  private readonly channelPrefix: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  private handler: BrokerEventHandler | undefined;
  private closed = false;

  constructor(options: RedisClusterBrokerOptions) {
    this.prefix = options.prefix ?? 'switchboard';
    this.controlChannel = `${this.prefix}:control`;
    this.channelPrefix = `${this.prefix}:ch:{`;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
    this.cmd = createRedisCluster(options.seeds, {
      commandTimeoutMs: this.timeoutMs,
      name: 'broker',
      security: options.security,
      ...(this.logger ? { logger: this.logger } : {}),
    });
    this.subs = new ShardSubscribers({
      cluster: this.cmd,
      timeoutMs: this.timeoutMs,
      logger: this.logger,
      security: options.security,
      onMessage: (channel, message) => this.receive(channel, message),
    });
    this.streams = new RedisStreams(this.cmd, {
      prefix: this.prefix,
      now: options.now ?? Date.now,
      logger: this.logger,
      publishCommand: 'SPUBLISH',
      pubChannel: (channel) => this.pubChannel(channel),
      run: (fn) => this.run(fn),
    });
    this.subscribeControl();
  }

  setHandler(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    return this.streams.publish(channel, data, options);
  }

  restartEpoch(channel: string, epoch: string): Promise<void> {
    return this.streams.restartEpoch(channel, epoch);
  }

  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    return this.streams.history(channel, query, options);
  }

  async publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    await this.run(() => this.cmd.spublish(this.pubChannel(channel), `e${JSON.stringify(event)}`));
  }

  async publishControl(command: ControlCommand): Promise<void> {
    await this.run(() => this.cmd.spublish(this.controlChannel, JSON.stringify(command)));
  }

  async subscribe(channel: string): Promise<void> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    try {
      await this.subs.subscribe(this.pubChannel(channel));
    } catch (err) {
      throw toHubError(err, 'redis');
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.closed) return;
    try {
      await this.subs.unsubscribe(this.pubChannel(channel));
    } catch (err) {
      throw toHubError(err, 'redis');
    }
  }

  /** Ready when the cluster is, every wanted channel (control included) is confirmed on its master, and a PING answers. */
  async healthy(): Promise<boolean> {
    if (this.closed || !this.subs.healthy()) return false;
    try {
      const pong = await withTimeout(this.cmd.ping(), Math.min(this.timeoutMs, 1_000), 'ping timed out');
      return pong === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const bound = Math.min(this.timeoutMs, 1_000);
    await Promise.all([this.subs.close(bound), closeRedis(this.cmd, bound)]);
  }

  /** The control channel is wanted for the broker's whole life; retried until it is confirmed. */
  private subscribeControl(): void {
    void this.subs.subscribe(this.controlChannel).catch((err: unknown) => {
      if (this.closed) return;
      this.logger?.warn({ err: (err as Error).message }, 'redis control subscription failed; retrying');
      setTimeout(() => this.subscribeControl(), 500).unref();
    });
  }

  private receive(channelBuf: Buffer, messageBuf: Buffer): void {
    const handler = this.handler;
    if (!handler) return;
    const channel = channelBuf.toString('utf8');
    try {
      const message = messageBuf.toString('utf8');
      if (channel === this.controlChannel) handler.onControl(parseControl(message));
      else if (channel.startsWith(this.channelPrefix) && channel.endsWith('}')) {
        dispatchChannelMessage(handler, channel.slice(this.channelPrefix.length, -1), message);
      }
    } catch (err) {
      this.logger?.error({ err, channel }, 'redis message dropped: malformed, or its handler threw');
    }
  }

  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    return runRedis(this.cmd, this.timeoutMs, 'redis', fn);
  }

  private pubChannel(channel: string): string {
    return `${this.channelPrefix}${channel}}`;
  }
}
