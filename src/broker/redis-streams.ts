import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { newEpoch } from '../stream/epoch.js';
import type { RedisClient } from '../redis/connection.js';
import type { BrokerEventHandler, PublishOptions, PublishResult } from './broker.js';
import type { ClientInfo, HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent, Publication } from '../stream/types.js';

const PUBLISH_LUA = readFileSync(new URL('./redis/publish.lua', import.meta.url), 'utf8');
const HISTORY_LUA = readFileSync(new URL('./redis/history.lua', import.meta.url), 'utf8');
const RESTART_EPOCH_LUA = readFileSync(new URL('./redis/restart-epoch.lua', import.meta.url), 'utf8');

type StreamEntry = [id: string, fields: string[]];
type HistoryReply = [epoch: string, top: number, earliest: number, entries: StreamEntry[]];

interface RedisScripts {
  sbPublish(...args: Array<string | number>): Promise<unknown>;
  sbHistory(...args: Array<string | number>): Promise<unknown>;
  sbRestartEpoch(...args: Array<string | number>): Promise<unknown>;
}

export interface RedisStreamsOptions {
  prefix: string;
  now: () => number;
  logger: Logger | undefined;
  /** `PUBLISH` on one Redis, `SPUBLISH` (sharded pub/sub, to the channel's shard) on a cluster. */
  publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** The pub/sub channel of a channel (hash-tagged like its keys on a cluster). */
  pubChannel: (channel: string) => string;
  /** Runs a command with the broker's bound and error mapping. */
  run: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * A channel's history in Redis, shared by the single-Redis and the cluster broker: one Lua
 * script per publish makes offset + append + publish atomic. Every key of a channel carries the
 * hash tag `{channel}`, and on a cluster so does its pub/sub channel, so each script runs on the
 * one shard that owns the channel.
 */
export class RedisStreams {
  private readonly scripts: RedisScripts;

  constructor(
    cmd: RedisClient,
    private readonly o: RedisStreamsOptions,
  ) {
    // No numberOfKeys on publish: the key count comes first, 2 or 3 (with an idempotency key).
    cmd.defineCommand('sbPublish', { lua: PUBLISH_LUA });
    cmd.defineCommand('sbHistory', { numberOfKeys: 2, lua: HISTORY_LUA });
    cmd.defineCommand('sbRestartEpoch', { numberOfKeys: 1, lua: RESTART_EPOCH_LUA });
    this.scripts = cmd as unknown as RedisScripts;
  }

  async publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    const h = options.history;
    const keys = [this.key('stream', channel), this.key('meta', channel)];
    if (options.idempotencyKey !== undefined) keys.push(`${this.key('idem', channel)}:${options.idempotencyKey}`);
    const reply = (await this.o.run(() =>
      this.scripts.sbPublish(
        keys.length,
        ...keys,
        data,
        options.info ? JSON.stringify(options.info) : '',
        h.size,
        h.ttlMs,
        h.metaTtlMs,
        newEpoch(),
        this.o.pubChannel(channel),
        options.idempotencyTtlMs ?? 120_000,
        this.o.now(),
        this.o.publishCommand,
        h.latest ? '1' : '',
        options.info?.key ?? '',
      ),
    )) as [number, string, number];
    return { offset: Number(reply[0]), epoch: reply[1], duplicate: reply[2] === 1 };
  }

  async restartEpoch(channel: string, epoch: string): Promise<void> {
    const restarted = await this.o.run(() => this.scripts.sbRestartEpoch(this.key('meta', channel), epoch, newEpoch()));
    if (restarted === 1) this.o.logger?.warn({ channel, epoch }, 'stream went back (a failover lost writes): new epoch');
  }

  async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    if (options.size <= 0) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    const reply = (await this.o.run(() =>
      this.scripts.sbHistory(
        this.key('stream', channel),
        this.key('meta', channel),
        query.sinceOffset ?? -1,
        query.limit,
        options.ttlMs,
        this.o.now(),
        options.size,
        query.maxBytes ?? -1,
        options.latest ? '1' : '',
      ),
    )) as HistoryReply;
    const [epoch, top, earliest, entries] = reply;
    return { position: { offset: Number(top), epoch }, earliest: Number(earliest), publications: entries.map(toPublication) };
  }

  private key(kind: string, channel: string): string {
    // The hash tag keeps a channel's stream, meta and idempotency keys in one Redis Cluster slot.
    return `${this.o.prefix}:${kind}:{${channel}}`;
  }
}

/**
 * Hands one message of a channel's pub/sub channel to the handler: `p<offset>\n<epoch>\n<info>\n<data>`
 * (a publication) or `e<JSON>` (an event). Throws on a malformed message.
 */
export function dispatchChannelMessage(handler: BrokerEventHandler, name: string, message: string): void {
  if (message[0] === 'p') {
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

/** Parses a control command (throws on a malformed one). */
export function parseControl(message: string): Parameters<BrokerEventHandler['onControl']>[0] {
  const command = JSON.parse(message) as Parameters<BrokerEventHandler['onControl']>[0] | null;
  if (typeof command !== 'object' || command === null || typeof command.kind !== 'string') throw new Error('malformed control command');
  return command;
}

function toPublication([id, fields]: StreamEntry): Publication {
  const pub: Publication = { offset: Number(id.slice(2)), data: '' };
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'd') pub.data = fields[i + 1]!;
    else if (fields[i] === 'i' && fields[i + 1] !== '') pub.info = JSON.parse(fields[i + 1]!) as ClientInfo;
  }
  return pub;
}
