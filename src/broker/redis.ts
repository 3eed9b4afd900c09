import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { newEpoch } from '../stream/epoch.js';
import { HubError } from '../protocol/errors.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, LossyDelivery, PublishOptions, PublishResult } from './broker.js';
import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent, Publication } from '../stream/types.js';

const PUBLISH_LUA = readFileSync(new URL('./redis/publish.lua', import.meta.url), 'utf8');
const HISTORY_LUA = readFileSync(new URL('./redis/history.lua', import.meta.url), 'utf8');

export interface RedisBrokerOptions {
  url: string;
  /** Prefix of every key and pub/sub channel, so several deployments can share one Redis. */
  prefix?: string;
  logger?: Logger;
  /** Clock for history TTLs (tests); defaults to Date.now. */
  now?: () => number;
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
 * Commands fail at once with a temporary error (114) while Redis is unreachable, never queue.
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
  /** Resolves when the command connection is first ready; until then commands wait for it. */
  private readonly firstReady: Promise<void>;
  private everReady = false;

  constructor(options: RedisBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.prefix = options.prefix ?? 'switchboard';
    this.controlChannel = `${this.prefix}:control`;
    const common: RedisOptions = {
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    };
    this.cmd = new Redis(options.url, { ...common, enableOfflineQueue: false });
    // The subscriber keeps its queue: SUBSCRIBEs sent while Redis is away go out on reconnect,
    // and ioredis re-subscribes every channel by itself after a reconnect.
    this.sub = new Redis(options.url, { ...common, autoResubscribe: true });
    this.firstReady = new Promise((resolve) => this.cmd.once('ready', () => resolve()));
    this.cmd.defineCommand('sbPublish', { numberOfKeys: 3, lua: PUBLISH_LUA });
    this.cmd.defineCommand('sbHistory', { numberOfKeys: 2, lua: HISTORY_LUA });
    const log = options.logger;
    for (const conn of [this.cmd, this.sub]) conn.on('error', (err: Error) => log?.warn({ err: err.message }, 'redis connection error'));
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel.toString('utf8'), message.toString('utf8')));
    void this.sub.subscribe(this.controlChannel).catch((err: unknown) => log?.warn({ err }, 'redis control subscribe failed'));
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

  async publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    await this.run(() => this.cmd.publish(this.pubChannel(channel), `e${JSON.stringify(event)}`));
  }

  async publishControl(command: ControlCommand): Promise<void> {
    await this.run(() => this.cmd.publish(this.controlChannel, JSON.stringify(command)));
  }

  async subscribe(channel: string): Promise<void> {
    await this.sub.subscribe(this.pubChannel(channel));
  }

  async unsubscribe(channel: string): Promise<void> {
    await this.sub.unsubscribe(this.pubChannel(channel));
  }

  async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    if (options.size <= 0) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    const reply = (await this.run(() =>
      (this.cmd as unknown as RedisScripts).sbHistory(
        this.key('stream', channel),
        this.key('meta', channel),
        newEpoch(),
        options.metaTtlMs,
        query.sinceOffset ?? -1,
        query.limit,
        options.ttlMs,
        this.now(),
      ),
    )) as HistoryReply;
    const [epoch, top, earliest, entries] = reply;
    return { position: { offset: Number(top), epoch }, earliest: Number(earliest), publications: entries.map(toPublication) };
  }

  async healthy(): Promise<boolean> {
    if (this.closed || this.cmd.status !== 'ready' || this.sub.status !== 'ready') return false;
    try {
      return (await this.cmd.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([this.cmd.quit(), this.sub.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  private receive(channel: string, message: string): void {
    const handler = this.handler;
    if (!handler) return;
    if (channel === this.controlChannel) {
      handler.onControl(JSON.parse(message) as ControlCommand);
      return;
    }
    const name = channel.slice(this.prefix.length + 4); // `${prefix}:ch:`
    if (message[0] === 'p') {
      // p<offset>\n<epoch>\n<info>\n<data>
      const a = message.indexOf('\n');
      const b = message.indexOf('\n', a + 1);
      const c = message.indexOf('\n', b + 1);
      const pub: Publication = { offset: Number(message.slice(1, a)), data: message.slice(c + 1) };
      const info = message.slice(b + 1, c);
      if (info !== '') pub.info = JSON.parse(info) as ClientInfo;
      handler.onPublication(name, pub, message.slice(a + 1, b));
    } else if (message[0] === 'e') {
      handler.onEvent(name, JSON.parse(message.slice(1)) as ChannelEvent);
    }
  }

  /** Runs a command; Redis being unreachable becomes a temporary error for the client. */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new HubError(114, 'broker is closed');
    try {
      if (!this.everReady) {
        await withTimeout(this.firstReady, FIRST_CONNECT_TIMEOUT_MS, 'no connection yet');
        this.everReady = true;
      }
      return await fn();
    } catch (err) {
      if (err instanceof HubError) throw err;
      throw new HubError(114, `redis unavailable: ${(err as Error).message}`);
    }
  }

  private key(kind: string, channel: string): string {
    // The hash tag keeps a channel's stream, meta and idempotency keys in one Redis Cluster slot.
    return `${this.prefix}:${kind}:{${channel}}`;
  }

  private pubChannel(channel: string): string {
    return `${this.prefix}:ch:${channel}`;
  }
}

/** How long commands issued at startup wait for the first connection. */
const FIRST_CONNECT_TIMEOUT_MS = 5_000;

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface RedisScripts {
  sbPublish(...args: Array<string | number>): Promise<unknown>;
  sbHistory(...args: Array<string | number>): Promise<unknown>;
}

function toPublication([id, fields]: StreamEntry): Publication {
  const pub: Publication = { offset: Number(id.slice(2)), data: '' };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'd') pub.data = fields[i + 1]!;
    else if (fields[i] === 'i' && fields[i + 1] !== '') pub.info = JSON.parse(fields[i + 1]!) as ClientInfo;
  }
  return pub;
}
