import { withTimeout } from '../limits/timeout.js';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { HubError } from '../protocol/errors.js';
import {
  closeRedis,
  createRedisConnection,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  firstReady,
  runRedis,
  toHubError,
  type SentinelTarget,
} from '../redis/connection.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, LossyDelivery, OrderedPublishes, PublishOptions, PublishResult } from './broker.js';
import { dispatchChannelMessage, parseControl, RedisStreams } from './redis-streams.js';
import type { HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent } from '../stream/types.js';

export interface RedisBrokerOptions {
  /** A redis:// URL, or the sentinels to ask for the master. */
  url: string | SentinelTarget;
  /** Prefix of every key and pub/sub channel, so several deployments can share one Redis. */
  prefix?: string;
  logger?: Logger;
  /** Clock for history TTLs (tests); defaults to Date.now. */
  now?: () => number;
  /** Bound of every Redis call, subscriptions and the first connect included (default 2000). */
  commandTimeoutMs?: number;
}

/**
 * The Broker for several nodes: Redis streams hold history, one Lua script per publish makes
 * offset + append + PUBLISH atomic, and each node holds one subscriber connection with one
 * SUBSCRIBE per channel that has local subscribers (the Node ref-counts them).
 *
 * Redis pub/sub is at most once: a node that misses a message sees the offset gap on the next
 * one (or in the Node's periodic position check) and its clients recover from the stream.
 * Commands fail at once with a temporary error (114) while Redis is unreachable, never queue,
 * and within `commandTimeoutMs` when it stalls. Subscriptions are this class's own: after every
 * (re)connect of the subscriber it SUBSCRIBEs the control channel and every channel of interest
 * again and waits for the confirmation; until then `healthy()` is false.
 */
export class RedisBroker implements Broker, HealthChecker, LossyDelivery, OrderedPublishes {
  readonly lossyDelivery = true as const;
  /** One command connection: scripts run in the order they were issued (runRedis issues at once when connected). */
  readonly keepsCallOrder = true as const;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly prefix: string;
  private handler: BrokerEventHandler | undefined;
  private readonly controlChannel: string;
  private closed = false;
  private readonly now: () => number;
  private readonly timeoutMs: number;
  private readonly logger: Logger | undefined;
  /** Channels this node wants (the Node's interest), resubscribed after every reconnect. */
  private readonly wanted = new Set<string>();
  /** True once the control channel (and `wanted`) is confirmed subscribed on the current connection. */
  private subscribed = false;
  /** Counts subscriber connections, so a late confirmation of an old one is ignored. */
  private generation = 0;
  private resubscribeTimer: NodeJS.Timeout | undefined;
  private readonly streams: RedisStreams;

  constructor(options: RedisBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.prefix = options.prefix ?? 'switchboard';
    this.controlChannel = `${this.prefix}:control`;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
    const conn = { commandTimeoutMs: this.timeoutMs, logger: options.logger };
    // Publishes of one turn (each one Lua call) share one write to Redis.
    this.cmd = createRedisConnection(options.url, { ...conn, name: 'broker', autoPipelining: true });
    this.sub = createRedisConnection(options.url, { ...conn, name: 'broker-subscriber' });
    this.streams = new RedisStreams(this.cmd, {
      prefix: this.prefix,
      now: this.now,
      logger: this.logger,
      publishCommand: 'PUBLISH',
      pubChannel: (channel) => this.pubChannel(channel),
      run: (fn) => this.run(fn),
    });
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel, message));
    this.sub.on('ready', () => this.resubscribe());
    this.sub.on('close', () => {
      this.subscribed = false;
      this.generation++;
    });
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

  async publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    await this.run(() => this.cmd.publish(this.pubChannel(channel), `e${JSON.stringify(event)}`));
  }

  async publishControl(command: ControlCommand): Promise<void> {
    await this.run(() => this.cmd.publish(this.controlChannel, JSON.stringify(command)));
  }

  async subscribe(channel: string): Promise<void> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    this.wanted.add(channel);
    try {
      await firstReady(this.sub, this.timeoutMs);
      await withTimeout(this.sub.subscribe(this.pubChannel(channel)), this.timeoutMs, 'subscribe timed out');
    } catch (err) {
      // Not wanted after all; if the SUBSCRIBE still lands later, take it back.
      this.wanted.delete(channel);
      if (this.sub.status === 'ready') this.sub.unsubscribe(this.pubChannel(channel)).catch(() => undefined);
      throw toHubError(err, 'redis');
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.wanted.delete(channel);
    if (this.closed) return;
    try {
      await withTimeout(this.sub.unsubscribe(this.pubChannel(channel)), this.timeoutMs, 'unsubscribe timed out');
    } catch (err) {
      throw toHubError(err, 'redis');
    }
  }

  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    return this.streams.history(channel, query, options);
  }

  /**
   * Ready when both connections are up, the control subscription is confirmed, and both answer a
   * PING within a short bound (a stalled Redis answers false quickly, never hangs).
   */
  async healthy(): Promise<boolean> {
    if (this.closed || !this.subscribed || this.cmd.status !== 'ready' || this.sub.status !== 'ready') return false;
    try {
      const [a] = await withTimeout(
        Promise.all([this.cmd.ping(), this.sub.ping()]),
        Math.min(this.timeoutMs, HEALTH_TIMEOUT_MS),
        'ping timed out',
      );
      return a === 'PONG';
    } catch {
      return false;
    }
  }

  /** Bounded whatever Redis does: QUIT with a timeout, then a hard disconnect. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    clearTimeout(this.resubscribeTimer);
    const bound = Math.min(this.timeoutMs, CLOSE_TIMEOUT_MS);
    await Promise.all([closeRedis(this.cmd, bound), closeRedis(this.sub, bound)]);
  }

  /** After each (re)connect of the subscriber: control + every wanted channel, confirmed. */
  private resubscribe(): void {
    clearTimeout(this.resubscribeTimer);
    if (this.closed || this.sub.status !== 'ready') return;
    const generation = this.generation;
    const channels = [this.controlChannel, ...[...this.wanted].map((c) => this.pubChannel(c))];
    const batches: string[][] = [];
    for (let i = 0; i < channels.length; i += SUBSCRIBE_BATCH) batches.push(channels.slice(i, i + SUBSCRIBE_BATCH));
    const all = Promise.all(batches.map((batch) => this.sub.subscribe(...batch)));
    withTimeout(all, this.timeoutMs, 'subscribe timed out').then(
      () => {
        if (generation === this.generation && !this.closed) this.subscribed = true;
      },
      (err: unknown) => {
        if (generation !== this.generation || this.closed) return;
        this.logger?.warn({ err: (err as Error).message }, 'redis subscribe failed; retrying');
        this.resubscribeTimer = setTimeout(() => this.resubscribe(), RESUBSCRIBE_RETRY_MS);
        this.resubscribeTimer.unref();
      },
    );
  }

  /** Never throws: a malformed message or a throwing handler is logged and dropped. */
  private receive(channelBuf: Buffer, messageBuf: Buffer): void {
    const handler = this.handler;
    if (!handler) return;
    const channel = channelBuf.toString('utf8');
    try {
      this.dispatch(handler, channel, messageBuf.toString('utf8'));
    } catch (err) {
      this.logger?.error({ err, channel }, 'redis message dropped: malformed, or its handler threw');
    }
  }

  private dispatch(handler: BrokerEventHandler, channel: string, message: string): void {
    if (channel === this.controlChannel) handler.onControl(parseControl(message));
    else if (channel.startsWith(`${this.prefix}:ch:`)) dispatchChannelMessage(handler, channel.slice(this.prefix.length + 4), message); // `${prefix}:ch:`
  }

  /**
   * Runs a command; Redis being unreachable, stalled (past the command timeout) or answering an
   * error becomes a temporary error for the client.
   */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    return runRedis(this.cmd, this.timeoutMs, 'redis', fn);
  }

  private pubChannel(channel: string): string {
    return `${this.prefix}:ch:${channel}`;
  }
}

/** Most a readiness probe waits for its PINGs (less if the command timeout is shorter). */
const HEALTH_TIMEOUT_MS = 1_000;
/** Most close() waits for QUIT before it drops the connections. */
const CLOSE_TIMEOUT_MS = 1_000;
const RESUBSCRIBE_RETRY_MS = 500;
/** Channels per SUBSCRIBE when resubscribing after a reconnect. */
const SUBSCRIBE_BATCH = 1_000;
