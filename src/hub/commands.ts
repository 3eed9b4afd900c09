import { keepsCallOrder, type Broker } from '../broker/broker.js';
import { assertCanSubscribe, type ChannelResolver, type ResolvedChannel } from '../channels/channels.js';
import type { HubOptions } from '../config/options.js';
import { KeyedBuckets } from '../limits/keyed-buckets.js';
import { TokenBucket } from '../limits/token-bucket.js';
import type { PresenceEntry, PresenceStore } from '../presence/presence-store.js';
import type { UserStatusService } from '../presence/user-status.js';
import type { Params } from '../protocol/commands.js';
import { HubError } from '../protocol/errors.js';
import { RawJson } from '../protocol/publish-scan.js';
import type { ReadReceipts, ReadState } from '../receipts/read-receipts.js';
import type { StatusRecord } from '../store/store.js';
import type { HistoryResult, StreamPosition } from '../stream/types.js';
import type { TypingSignal, TypingThrottle } from '../typing/typing-throttle.js';
import type { GuardedHooks } from './guarded-hooks.js';
import type { ClientContext } from './hooks.js';
import type { Publisher } from './publisher.js';
import { isLatestValue, latestPerKey } from './latest.js';
import { givenPosition, startsCurrentStream } from './recovery.js';
import type { Session } from './session.js';
import type { SubscriptionRegistry } from './subscriptions.js';

export interface CommandParts {
  options: HubOptions;
  resolver: ChannelResolver;
  broker: Broker;
  hooks: GuardedHooks;
  registry: SubscriptionRegistry;
  publisher: Publisher;
  presence: PresenceStore;
  reads: ReadReceipts;
  status: UserStatusService;
  typing: TypingThrottle;
  /** Byte budget of one reply (a quarter of limits.maxQueueBytes). */
  pageBytes: number;
  context(session: Session): ClientContext;
  /** After a client publication was accepted (webhooks); never throws. */
  published?(ch: ResolvedChannel, session: Session, data: unknown, position: StreamPosition): Promise<void>;
}

export const EPOCH_MISMATCH = 'since.epoch: not the channel’s current epoch (its history was reset); read again without since';

/**
 * The client commands other than connect and subscribe: publish, history, presence, typing,
 * read receipts, status and RPC. Each checks the session's rights first (the same rules, hook
 * included, as subscribing), then does its one job.
 */
export class ClientCommands {
  private readonly publishBytes = new WeakMap<Session, TokenBucket>();
  private readonly channelInfos = new WeakMap<Session, Map<string, unknown>>();
  private readonly channelBytes: KeyedBuckets;

  /** Whether publishes started one after another keep their order in the broker (else each waits). */
  private readonly orderedBroker: boolean;

  constructor(private readonly parts: CommandParts) {
    this.orderedBroker = keepsCallOrder(parts.broker);
    this.channelBytes = new KeyedBuckets(parts.options.limits.channelPublishBytesRate);
  }

  stop(): void {
    this.channelBytes.stop();
  }

  /** The right to read a channel (subscribe, history, presence, read receipts): rules, then the hook. */
  async authorize(session: Session, channel: string): Promise<ResolvedChannel> {
    const ch = this.parts.resolver.resolve(channel);
    assertCanSubscribe(ch, session.user, session.identity?.channels ?? []);
    const info = await this.parts.hooks.subscribe(this.parts.context(session), ch.name, ch.options);
    if (info !== undefined) {
      let mine = this.channelInfos.get(session);
      if (!mine) this.channelInfos.set(session, (mine = new Map()));
      mine.set(ch.name, info);
    }
    return ch;
  }

  /** The channel info the subscribe proxy last gave `session` for `channel`. */
  channelInfo(session: Session, channel: string): unknown {
    return this.channelInfos.get(session)?.get(channel);
  }

  async publish(session: Session, params: Params<'publish'>): Promise<StreamPosition> {
    const { hooks } = this.parts;
    const ch = this.publishTarget(session, params);
    if (ch.options.clientPublish === 'any') await this.authorize(session, ch.name);
    assertKeyAllowed(ch, params);
    // Hooks and the proxy see data as a JSON value; the fast path's raw text is parsed for them.
    const given = params.data instanceof RawJson && !hooks.publishIsPassThrough(ch.options) ? params.data.value() : params.data;
    const data = await hooks.publish(this.parts.context(session), ch.name, ch.options, given, params.idempotencyKey);
    return this.store(session, ch, data, params);
  }

  /**
   * The publish fast path: when no hook or proxy has a say (subscribe rights and the data
   * alike), the checks run and the broker call is made before this returns, so consecutive
   * calls reach the broker in order. Undefined when the publish must take publish() instead.
   */
  publishNow(session: Session, params: Params<'publish'>): Promise<StreamPosition> | undefined {
    const { hooks } = this.parts;
    if (!this.orderedBroker) return undefined;
    try {
      const ch = this.publishTarget(session, params);
      if (!hooks.publishIsPassThrough(ch.options)) return undefined;
      if (ch.options.clientPublish === 'any') {
        if (!hooks.subscribeIsRulesOnly(ch.options)) return undefined;
        assertCanSubscribe(ch, session.user, session.identity?.channels ?? []);
      }
      assertKeyAllowed(ch, params);
      return this.store(session, ch, params.data, params);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The channel of a client publish, once the namespace lets this session publish in it (the `any` mode's authorize aside). */
  private publishTarget(session: Session, params: Params<'publish'>): ResolvedChannel {
    const ch = this.parts.resolver.resolve(params.channel);
    const mode = ch.options.clientPublish;
    if (mode === 'none') throw new HubError(103, 'clients may not publish in this namespace');
    if (mode === 'subscribers') {
      // Subscribed, even while a large recovery is still paging in (the SDK flushes its offline queue then).
      if (!this.parts.registry.get(session, ch.name)) throw new HubError(103, 'subscribe to the channel to publish in it');
      assertCanSubscribe(ch, session.user, session.identity?.channels ?? []);
    }
    return ch;
  }

  /** Encodes, meters and stores an accepted client publication; the broker call is made synchronously. */
  private store(session: Session, ch: ResolvedChannel, data: unknown, params: Params<'publish'>): Promise<StreamPosition> {
    const { publisher, published } = this.parts;
    const encoded = publisher.encode(data);
    this.takeBytes(session, ch.name, Buffer.byteLength(encoded));
    const info = { user: session.user, client: session.id, ...(params.key !== undefined ? { key: params.key } : {}) };
    return publisher.publish(ch, encoded, params.idempotencyKey, info, published && ((at) => published(ch, session, data, at)));
  }

  /**
   * An ephemeral client event: to the channel's other subscribers on every node, never stored,
   * no offset. The sender must be subscribed (its subscription was authorized, hook included)
   * in a namespace with `clientEvents`; the publish hook does not run for events.
   */
  async emit(session: Session, params: Params<'emit'>): Promise<void> {
    const sub = this.parts.registry.get(session, params.channel);
    if (!sub?.active) throw new HubError(112, 'subscribe to the channel to emit in it');
    const ch = sub.channel;
    if (!ch.options.clientEvents) throw new HubError(108, 'client events are off in this namespace (clientEvents)');
    if (ch.options.clientPublish === 'none') throw new HubError(103, 'clients may not publish in this namespace');
    const data = this.parts.publisher.encode(params.data);
    const event = { kind: 'emit' as const, user: session.user, client: session.id, data };
    await this.parts.broker.publishEvent(ch.name, params.key === undefined ? event : { ...event, key: params.key });
  }

  /** Bytes of client publications, per session and per channel: past either rate, 111 (retry later). */
  private takeBytes(session: Session, channel: string, bytes: number): void {
    const l = this.parts.options.limits;
    const now = Date.now();
    let mine = this.publishBytes.get(session);
    if (!mine) {
      mine = new TokenBucket(l.publishBytesRate.perSecond, l.publishBytesRate.burst, now);
      this.publishBytes.set(session, mine);
    }
    if (!mine.take(now, bytes)) throw new HubError(111, 'publishing too many bytes: limits.publishBytesRate');
    if (!this.channelBytes.take(channel, now, bytes)) throw new HubError(111, 'channel takes too many bytes: limits.channelPublishBytesRate');
  }

  /** In a latest-value namespace, each page holds the latest publication per key (`latest: true`). */
  async history(session: Session, params: Params<'history'>): Promise<HistoryResult & { latest?: true }> {
    const ch = await this.authorize(session, params.channel);
    const read = await this.readHistory(ch, params.since, params.limit);
    return isLatestValue(ch) ? { ...read, publications: latestPerKey(read.publications), latest: true } : read;
  }

  /**
   * History of a channel: after `since`, or the latest `limit` publications (in a latest-value
   * namespace: the newest of each key, from the least recently changed), oldest first, at most one page of bytes (a reply may hold fewer than asked: continue with since = the last
   * offset until it reaches `position.offset`).
   */
  async readHistory(ch: ResolvedChannel, since: StreamPosition | undefined, limit: number | undefined): Promise<HistoryResult> {
    const { broker, options, pageBytes } = this.parts;
    if (ch.history.size === 0) throw new HubError(108, 'history is off in this namespace');
    const maxLimit = options.limits.historyMaxLimit;
    if (limit !== undefined && limit > maxLimit) throw new HubError(107, `limit: must be at most ${maxLimit}`);
    const max = limit ?? maxLimit;
    const now = Date.now();
    if (since) {
      if (!Number.isSafeInteger(since.offset) || since.offset < 0) throw new HubError(107, 'since.offset: must be a non-negative integer');
      const read = await broker.history(ch.name, { sinceOffset: since.offset, limit: max, maxBytes: pageBytes }, ch.history);
      const young = startsCurrentStream(ch.name, since, now, ch.history.metaTtlMs);
      if (read.position.epoch === '' && young) return { ...read, position: since };
      if (read.position.epoch !== since.epoch && !young) throw new HubError(107, EPOCH_MISMATCH);
      return read;
    }
    const top = await broker.history(ch.name, { limit: 0 }, ch.history);
    if (top.position.epoch === '') return { ...top, position: givenPosition(ch.name, top.position, now) };
    // A latest-value stream holds the newest per key at offsets with gaps: every key, from the start.
    const from = isLatestValue(ch) ? 0 : Math.max(0, top.position.offset - max);
    return broker.history(ch.name, { sinceOffset: from, limit: max, maxBytes: pageBytes }, ch.history);
  }

  async presence(session: Session, channel: string): Promise<Record<string, PresenceEntry>> {
    const clients = await this.presenceOf(await this.authorize(session, channel));
    // A reply must fit the session's queue: past one page it is refused, never a disconnect.
    if (Buffer.byteLength(JSON.stringify(clients)) > this.parts.pageBytes) {
      throw new HubError(106, `presence of ${Object.keys(clients).length} clients is larger than one reply (limits.maxQueueBytes / 4)`);
    }
    return clients;
  }

  /** Presence of a channel, without permission checks (server side). */
  async presenceOf(ch: ResolvedChannel): Promise<Record<string, PresenceEntry>> {
    if (!ch.options.presence) throw new HubError(108, 'presence is off in this namespace');
    return this.parts.presence.get(ch.name);
  }

  async typing(session: Session, params: Params<'typing'>): Promise<void> {
    const sub = this.parts.registry.get(session, params.channel);
    if (!sub?.active) throw new HubError(112, 'subscribe to the channel to type in it');
    if (!sub.channel.options.typing) throw new HubError(108, 'typing is off in this namespace');
    const signal = this.parts.typing.signal(sub.channel.name, session.user, session.id, params.typing, Date.now());
    if (signal) await this.sendTyping(signal);
  }

  sendTyping(signal: TypingSignal): Promise<void> {
    const { channel, user, client, typing } = signal;
    return this.parts.broker.publishEvent(channel, { kind: 'typing', user, client, typing });
  }

  async markRead(session: Session, params: Params<'markRead'>): Promise<ReadState> {
    const ch = await this.authorize(session, params.channel);
    const { moved, ...state } = await this.parts.reads.markRead(session.user, ch, params.offset);
    if (ch.options.readReceipts && moved) {
      await this.parts.broker.publishEvent(ch.name, { kind: 'read', user: session.user, offset: state.lastRead });
    }
    return state;
  }

  async readState(session: Session, channel: string): Promise<ReadState> {
    return this.parts.reads.readState(session.user, await this.authorize(session, channel));
  }

  async readers(session: Session, channel: string): Promise<Record<string, number>> {
    return this.parts.reads.readers(await this.authorize(session, channel));
  }

  setStatus(session: Session, status: Params<'setStatus'>['status']): Promise<StatusRecord> {
    if (session.user === '') throw new HubError(101, 'anonymous connections have no status');
    return this.parts.status.set(session.user, status);
  }

  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.parts.status.get(users);
  }

  rpc(session: Session, method: string, data: unknown): Promise<unknown> {
    return this.parts.hooks.rpc(this.parts.context(session), method, data);
  }
}

function assertKeyAllowed(ch: ResolvedChannel, params: Params<'publish'>): void {
  if (params.key !== undefined && !isLatestValue(ch)) throw new HubError(107, 'key: only in latest-value namespaces (delivery: "latest")');
}
