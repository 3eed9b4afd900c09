import { withTimeout } from '../limits/timeout.js';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { newEpoch } from '../stream/epoch.js';
import { HubError } from '../protocol/errors.js';
import { closeRedis, createRedisConnection, DEFAULT_REDIS_COMMAND_TIMEOUT_MS, firstReady, runRedis, toHubError } from '../redis/connection.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, LossyDelivery, PublishOptions, PublishResult } from './broker.js';
import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent, Publication } from '../stream/types.js';

const PUBLISH_LUA = readFileSync(new URL('./redis/publish.lua', import.meta.url), 'utf8');
const HISTORY_LUA = readFileSync(new URL('./redis/history.lua', import.meta.url), 'utf8');
const RESTART_EPOCH_LUA = readFileSync(new URL('./redis/restart-epoch.lua', import.meta.url), 'utf8');

export interface RedisBrokerOptions {
  url: string;
  /** Prefix of every key and pub/sub channel, so several deployments can share one Redis. */
  prefix?: string;
  logger?: Logger;
  /** Clock for history TTLs (tests); defaults to Date.now. */
  now?: () => number;
  /** Bound of every Redis call, subscriptions and the first connect included (default 2000). */
  commandTimeoutMs?: number;
}

type StreamEntry = [id: string, fields: string[]];
type HistoryReply = [epoch: string, top: number, earliest: number, entries: StreamEntry[]];

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
export class RedisBroker implements Broker, HealthChecker, LossyDelivery {
  readonly lossyDelivery = true as const;
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

  constructor(options: RedisBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.prefix = options.prefix ?? 'switchboard';
    this.controlChannel = `${this.prefix}:control`;
    this.timeoutMs = options.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS;
    this.logger = options.logger;
    const conn = { commandTimeoutMs: this.timeoutMs, logger: options.logger };
    this.cmd = createRedisConnection(options.url, { ...conn, name: 'broker' });
    this.sub = createRedisConnection(options.url, { ...conn, name: 'broker-subscriber' });
    this.cmd.defineCommand('sbPublish', { numberOfKeys: 3, lua: PUBLISH_LUA });
    this.cmd.defineCommand('sbHistory', { numberOfKeys: 2, lua: HISTORY_LUA });
    this.cmd.defineCommand('sbRestartEpoch', { numberOfKeys: 1, lua: RESTART_EPOCH_LUA });
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

  async publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    const h = options.history;
    const reply = (await this.run(() =>
      (this.cmd as unknown as RedisScripts).sbPublish(
        this.key('stream', channel),
        this.key('meta', channel),
        options.idempotencyKey === undefined ? '' : `${this.key('idem', channel)}:${options.idempotencyKey}`,
        data,
        options.info ? JSON.stringify(options.info) : '',
        h.size,
        h.ttlMs,
        h.metaTtlMs,
        newEpoch(),
        this.pubChannel(channel),
        options.idempotencyTtlMs ?? 120_000,
        this.now(),
      ),
    )) as [number, string, number];
    return { offset: Number(reply[0]), epoch: reply[1], duplicate: reply[2] === 1 };
  }

  async restartEpoch(channel: string, epoch: string): Promise<void> {
    const restarted = await this.run(() =>
      (this.cmd as unknown as RedisScripts).sbRestartEpoch(this.key('meta', channel), epoch, newEpoch()),
    );
    if (restarted === 1) this.logger?.warn({ channel, epoch }, 'stream went back (a failover lost writes): new epoch');
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

  async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    if (options.size <= 0) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    const reply = (await this.run(() =>
      (this.cmd as unknown as RedisScripts).sbHistory(
        this.key('stream', channel),
        this.key('meta', channel),
        query.sinceOffset ?? -1,
        query.limit,
        options.ttlMs,
        this.now(),
        options.size,
        query.maxBytes ?? -1,
      ),
    )) as HistoryReply;
    const [epoch, top, earliest, entries] = reply;
    return { position: { offset: Number(top), epoch }, earliest: Number(earliest), publications: entries.map(toPublication) };
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
    if (channel === this.controlChannel) {
      const command = JSON.parse(message) as ControlCommand | null;
      if (typeof command !== 'object' || command === null || typeof command.kind !== 'string') throw new Error('malformed control command');
      handler.onControl(command);
      return;
    }
    if (!channel.startsWith(`${this.prefix}:ch:`)) return;
    const name = channel.slice(this.prefix.length + 4); // `${prefix}:ch:`
    if (message[0] === 'p') {
      // p<offset>\n<epoch>\n<info>\n<data>
      const a = message.indexOf('\n');
      const b = a < 0 ? -1 : message.indexOf('\n', a + 1);
      const c = b < 0 ? -1 : message.indexOf('\n', b + 1);
      const digits = message.slice(1, a);
      const offset = Number(digits);
      if (c < 0 || !/^\d{1,16}$/.test(digits) || !Number.isSafeInteger(offset)) throw new Error('malformed publication');
      const pub: Publication = { offset, data: message.slice(c + 1) };
      const info = message.slice(b + 1, c);
      if (info !== '') pub.info = JSON.parse(info) as ClientInfo;
      handler.onPublication(name, pub, message.slice(a + 1, b));
    } else if (message[0] === 'e') {
      handler.onEvent(name, JSON.parse(message.slice(1)) as ChannelEvent);
    }
  }

  /**
   * Runs a command; Redis being unreachable, stalled (past the command timeout) or answering an
   * error becomes a temporary error for the client.
   */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    return runRedis(this.cmd, this.timeoutMs, 'redis', fn);
  }

  private key(kind: string, channel: string): string {
    // The hash tag keeps a channel's stream, meta and idempotency keys in one Redis Cluster slot.
    return `${this.prefix}:${kind}:{${channel}}`;
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

interface RedisScripts {
  sbPublish(...args: Array<string | number>): Promise<unknown>;
  sbHistory(...args: Array<string | number>): Promise<unknown>;
  sbRestartEpoch(...args: Array<string | number>): Promise<unknown>;
}

function toPublication([id, fields]: StreamEntry): Publication {
  const pub: Publication = { offset: Number(id.slice(2)), data: '' };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'd') pub.data = fields[i + 1]!;
    else if (fields[i] === 'i' && fields[i + 1] !== '') pub.info = JSON.parse(fields[i + 1]!) as ClientInfo;
  }
  return pub;
}
