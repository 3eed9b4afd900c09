import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/verifier.js';
import type { Broker, BrokerEventHandler, ControlCommand } from '../broker/broker.js';
import type { HistoryResult, ChannelEvent, Publication, StreamPosition } from '../stream/types.js';
import { isLossy } from '../broker/broker.js';
import type { HubOptions } from '../config/options.js';
import { Connection } from '../connection/connection.js';
import { FlushScheduler } from '../connection/outbound-queue.js';
import { Subscription } from './subscription.js';
import type { PresenceEntry, PresenceStore } from '../presence/presence-store.js';
import { CloseCode, UnsubscribeCode, type CloseCodeValue } from '../protocol/close-codes.js';
import type { Params } from '../protocol/commands.js';
import { APP_ERROR_CODE_MIN, HubError } from '../protocol/errors.js';
import { encodeChannelEvent, encodePublicationPush, encodeReplyWithPublications, encodeUnsubscribePush } from '../protocol/pushes.js';
import { assertCanSubscribe, ChannelResolver, type ResolvedChannel } from '../channels/channels.js';
import type { ClientContext, HubHooks, RpcHandler } from './hooks.js';
import { isRecoverable, recover, type Recovery } from './recovery.js';
import { TypingThrottle, type TypingSignal } from '../typing/typing-throttle.js';
import { ReadReceipts, type ReadState } from '../receipts/read-receipts.js';
import { UserStatusService } from '../presence/user-status.js';
import type { StatusRecord, Store } from '../store/store.js';
import type { Metrics } from '../metrics/metrics.js';

export interface NodeParts {
  options: HubOptions;
  broker: Broker;
  presence: PresenceStore;
  store: Store;
  metrics: Metrics;
  verifier: TokenVerifier;
  hooks: HubHooks;
  logger: Logger;
}

/**
 * The heart of one Switchboard process: the index from channel to local subscriptions, the
 * permission checks, subscribe-with-recovery, and fan-out of what the Broker delivers.
 * Transports hand it Connections; the public Hub wraps it.
 */
export class Node implements BrokerEventHandler {
  readonly options: HubOptions;
  readonly broker: Broker;
  readonly verifier: TokenVerifier;
  readonly scheduler = new FlushScheduler();
  readonly resolver: ChannelResolver;
  readonly connections = new Set<Connection>();
  readonly metrics: Metrics;
  private readonly presenceStore: PresenceStore;
  private readonly typingThrottle: TypingThrottle;
  private readonly reads: ReadReceipts;
  private readonly status: UserStatusService;
  private readonly hooks: HubHooks;
  private readonly logger: Logger;
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly index = new Map<string, Set<Subscription>>();
  private readonly interest = new Map<string, Promise<void>>();
  private readonly rpcs = new Map<string, RpcHandler>();
  private readonly heartbeat: NodeJS.Timeout;
  private positionCheck: NodeJS.Timeout | undefined;
  private checking = false;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(parts: NodeParts) {
    this.options = parts.options;
    this.broker = parts.broker;
    this.verifier = parts.verifier;
    this.presenceStore = parts.presence;
    this.hooks = parts.hooks;
    this.logger = parts.logger;
    this.resolver = new ChannelResolver(parts.options);
    this.metrics = parts.metrics;
    const l = parts.options.limits;
    this.typingThrottle = new TypingThrottle(l.typingThrottleMs, l.typingExpireMs);
    this.reads = new ReadReceipts(parts.broker, parts.store);
    this.status = new UserStatusService(parts.presence, parts.store, (channel, data) => this.publish(channel, data));
    this.broker.setHandler(this);
    const tick = Math.max(25, Math.min(1000, l.pongTimeoutMs / 2, l.connectTimeoutMs / 2));
    this.heartbeat = setInterval(() => this.beat(Date.now()), tick);
    this.heartbeat.unref();
    if (isLossy(this.broker)) {
      this.positionCheck = setInterval(() => void this.checkPositions(), parts.options.positionCheckIntervalMs);
      this.positionCheck.unref();
    }
  }

  // ---- connections -----------------------------------------------------------------------

  register(conn: Connection): void {
    this.connections.add(conn);
  }

  /** Admits a connection whose token was verified: per-user cap, then the onConnect hook. */
  async admit(conn: Connection): Promise<void> {
    const user = conn.user;
    const mine = this.byUser.get(user);
    if (mine && mine.size >= this.options.limits.maxConnectionsPerUser) {
      conn.closeAfterReply(CloseCode.CONNECTION_LIMIT);
      throw new HubError(106, 'too many connections for this user');
    }
    await this.hooks.onConnect?.(this.context(conn));
    if (conn.state === 'closed') return;
    let set = this.byUser.get(user);
    if (!set) {
      set = new Set();
      this.byUser.set(user, set);
    }
    set.add(conn);
    this.background(this.status.connected(user, conn.id));
  }

  /** Forgets a closed connection and everything it held. */
  release(conn: Connection, code: CloseCodeValue): void {
    this.connections.delete(conn);
    this.metrics.disconnected(code);
    const set = this.byUser.get(conn.user);
    if (set?.delete(conn)) {
      if (set.size === 0) this.byUser.delete(conn.user);
      this.background(this.status.disconnected(conn.user, conn.id));
    }
    for (const sub of conn.subscriptions.values()) this.dropSubscription(sub);
    conn.subscriptions.clear();
  }

  connectionsOf(user: string): ReadonlySet<Connection> {
    return this.byUser.get(user) ?? new Set();
  }

  // ---- subscribe and recovery ------------------------------------------------------------

  /** Subscribes and replies itself, so that recovered publications precede live ones. */
  async subscribe(conn: Connection, params: Params<'subscribe'>, id: number): Promise<undefined> {
    const opened = await this.openSubscription(conn, params.channel, params.since);
    if (!opened) return undefined;
    const { sub, recovery } = opened;
    const result: Record<string, unknown> = { position: recovery.position, recoverable: isRecoverable(sub.channel) };
    if (recovery.recovered !== undefined) result.recovered = recovery.recovered;
    conn.sendText(encodeReplyWithPublications(id, result, recovery.publications));
    await this.activate(sub, recovery.position);
    return undefined;
  }

  /**
   * First half of a subscribe: checks, then a pending subscription (buffering live
   * publications) and the recovery read. Resolves undefined if the connection or the
   * subscription went away meanwhile. The caller sends the recovered publications, then calls
   * `activate`, with nothing in between.
   */
  async openSubscription(
    conn: Connection,
    channel: string,
    since: StreamPosition | undefined,
  ): Promise<{ sub: Subscription; recovery: Recovery } | undefined> {
    const ch = await this.authorizeSubscribe(conn, channel);
    if (conn.subscriptions.has(ch.name)) throw new HubError(105);
    if (conn.subscriptions.size >= this.options.limits.maxChannelsPerConnection) {
      throw new HubError(106, 'too many channels for this connection');
    }
    const sub = new Subscription(conn, ch);
    conn.subscriptions.set(ch.name, sub);
    let recovery: Recovery;
    try {
      await this.addInterest(sub);
      recovery = await recover(this.broker, ch, since, this.options.limits.recoveryMaxPublications);
    } catch (err) {
      if (conn.subscriptions.get(ch.name) === sub) {
        conn.subscriptions.delete(ch.name);
        this.dropSubscription(sub);
      }
      throw err;
    }
    if (conn.closed || conn.subscriptions.get(ch.name) !== sub) return undefined;
    return { sub, recovery };
  }

  /** The right to subscribe (built-in rules, then the hook); resolves the channel. */
  async authorizeSubscribe(conn: Connection, channel: string): Promise<ResolvedChannel> {
    const ch = this.resolver.resolve(channel);
    assertCanSubscribe(ch, conn.user, conn.identity?.channels ?? []);
    await this.hooks.onSubscribe?.(this.context(conn), ch.name);
    return ch;
  }

  /**
   * Second half of a subscribe: live from `position` on, buffered publications first (all done
   * before it returns). The promise is the presence join, when the namespace keeps presence.
   */
  activate(sub: Subscription, position: StreamPosition): Promise<void> {
    sub.offset = position.offset;
    sub.epoch = position.epoch;
    const buffered = sub.buffered ?? [];
    sub.buffered = null;
    for (const b of buffered) this.deliver(sub, b.pub, b.frame, b.epoch);
    return sub.channel.options.presence ? this.join(sub.connection, sub.channel) : Promise.resolve();
  }

  async unsubscribe(conn: Connection, channel: string): Promise<void> {
    const sub = conn.subscriptions.get(channel);
    if (!sub) throw new HubError(112);
    conn.subscriptions.delete(channel);
    this.dropSubscription(sub);
  }

  /** Ends a subscription from the server side and tells the client. */
  private kickSubscription(sub: Subscription, code: number, reason: string, resubscribe: boolean): void {
    const conn = sub.connection;
    if (conn.subscriptions.get(sub.channel.name) !== sub) return;
    conn.subscriptions.delete(sub.channel.name);
    this.dropSubscription(sub);
    conn.push(resubscribe ? 'resubscribe' : 'unsubscribe', Buffer.from(encodeUnsubscribePush(sub.channel.name, code, reason, resubscribe)));
  }

  private async addInterest(sub: Subscription): Promise<void> {
    const name = sub.channel.name;
    let set = this.index.get(name);
    if (!set) {
      set = new Set();
      this.index.set(name, set);
    }
    set.add(sub);
    let ready = this.interest.get(name);
    if (!ready) {
      ready = this.broker.subscribe(name);
      this.interest.set(name, ready);
      ready.catch(() => {
        if (this.interest.get(name) === ready) this.interest.delete(name);
      });
    }
    await ready;
  }

  private dropSubscription(sub: Subscription): void {
    const name = sub.channel.name;
    const set = this.index.get(name);
    if (set?.delete(sub) && set.size === 0) {
      this.index.delete(name);
      const ready = this.interest.get(name);
      this.interest.delete(name);
      void (ready ?? Promise.resolve())
        .then(() => (this.index.has(name) ? undefined : this.broker.unsubscribe(name)))
        .catch((err: unknown) => this.logger.warn({ err, channel: name }, 'broker unsubscribe failed'));
    }
    if (sub.channel.options.presence && sub.active) this.background(this.leave(sub.connection, sub.channel));
    if (sub.channel.options.typing) {
      const stop = this.typingThrottle.forget(name, sub.connection.user);
      if (stop) this.background(this.sendTyping(stop));
    }
  }

  // ---- fan-out ---------------------------------------------------------------------------

  onPublication(channel: string, pub: Publication, epoch: string): void {
    const subs = this.index.get(channel);
    if (!subs) return;
    // Encoded once; the same bytes go to every subscriber.
    const frame = Buffer.from(encodePublicationPush(channel, pub));
    for (const sub of subs) {
      if (sub.buffered) sub.buffered.push({ pub, frame, epoch });
      else this.deliver(sub, pub, frame, epoch);
    }
    this.metrics.delivered(subs.size);
  }

  private deliver(sub: Subscription, pub: Publication, frame: Buffer, epoch: string): void {
    if (pub.offset > 0) {
      if (pub.offset <= sub.offset && epoch === sub.epoch) return; // already sent by recovery
      if (pub.offset !== sub.offset + 1 || epoch !== sub.epoch) {
        this.kickSubscription(sub, UnsubscribeCode.INSUFFICIENT_STATE, 'missed publications: resubscribe with since', true);
        return;
      }
      sub.offset = pub.offset;
    }
    sub.connection.deliver(sub, pub, frame);
  }

  onEvent(channel: string, event: ChannelEvent): void {
    const subs = this.index.get(channel);
    if (!subs) return;
    // A user does not see their own join or typing (from any of their connections).
    const from = event.kind === 'read' ? undefined : event.kind === 'typing' ? event.user : event.info.user;
    const frame = Buffer.from(encodeChannelEvent(channel, event));
    for (const sub of subs) {
      if (sub.active && sub.connection.user !== from) sub.connection.push(event.kind, frame);
    }
  }

  onControl(command: ControlCommand): void {
    const conns = [...this.connectionsOf(command.user)];
    if (command.kind === 'disconnect') {
      for (const conn of conns) conn.close(command.code as CloseCodeValue, command.reason);
    } else {
      for (const conn of conns) {
        const sub = conn.subscriptions.get(command.channel);
        if (sub) this.kickSubscription(sub, UnsubscribeCode.SERVER, 'unsubscribed by server', false);
      }
    }
  }

  /** Closes every connection of a user (4501, terminal), on every node. */
  disconnectUser(user: string, reason: string): Promise<void> {
    return this.broker.publishControl({ kind: 'disconnect', user, code: CloseCode.KICKED, reason });
  }

  /** Ends a user's subscription to a channel (unsubscribe push 2000), on every node. */
  unsubscribeUser(user: string, channel: string): Promise<void> {
    return this.broker.publishControl({ kind: 'unsubscribe', user, channel });
  }

  // ---- publish, history, presence, rpc ---------------------------------------------------

  async publishFromClient(conn: Connection, params: Params<'publish'>): Promise<StreamPosition> {
    const ch = this.resolver.resolve(params.channel);
    const mode = ch.options.clientPublish;
    if (mode === 'none') throw new HubError(103, 'clients may not publish in this namespace');
    if (mode === 'subscribers' && !conn.subscriptions.get(ch.name)?.active) {
      throw new HubError(103, 'subscribe to the channel to publish in it');
    }
    assertCanSubscribe(ch, conn.user, conn.identity?.channels ?? []);
    let data = params.data;
    if (this.hooks.onPublish) {
      const replaced = await this.hooks.onPublish(this.context(conn), ch.name, data);
      if (replaced !== undefined) data = replaced;
    }
    return this.publishResolved(ch, data, params.idempotencyKey, { user: conn.user, client: conn.id });
  }

  /** Stores and pushes a notification on the user's `notifications:#<user>` channel. */
  notify(user: string, data: unknown, idempotencyKey?: string): Promise<StreamPosition> {
    return this.publish(`notifications:#${user}`, data, idempotencyKey);
  }

  /** Server-side publish: no permission checks. */
  async publish(channel: string, data: unknown, idempotencyKey?: string): Promise<StreamPosition> {
    return this.publishResolved(this.resolver.resolve(channel), data, idempotencyKey);
  }

  private async publishResolved(
    ch: ResolvedChannel,
    data: unknown,
    idempotencyKey: string | undefined,
    info?: { user: string; client: string },
  ): Promise<StreamPosition> {
    const encoded = JSON.stringify(data);
    if (encoded === undefined) throw new HubError(107, 'data: must be JSON');
    const result = await this.broker.publish(ch.name, encoded, {
      history: ch.history,
      ...(info ? { info } : {}),
      ...(idempotencyKey !== undefined ? { idempotencyKey, idempotencyTtlMs: this.options.limits.idempotencyWindowMs } : {}),
    });
    if (!result.duplicate) this.metrics.published(info ? 'client' : 'server');
    return { offset: result.offset, epoch: result.epoch };
  }

  async history(conn: Connection, params: Params<'history'>, id: number): Promise<string> {
    const ch = this.resolver.resolve(params.channel);
    assertCanSubscribe(ch, conn.user, conn.identity?.channels ?? []);
    await this.hooks.onSubscribe?.(this.context(conn), ch.name);
    const read = await this.readHistory(ch, params.since, params.limit);
    return encodeReplyWithPublications(id, { position: read.position }, read.publications);
  }

  /** History of a channel: after `since`, or the latest `limit` publications. */
  async readHistory(ch: ResolvedChannel, since: StreamPosition | undefined, limit: number | undefined): Promise<HistoryResult> {
    if (ch.history.size === 0) throw new HubError(108, 'history is off in this namespace');
    const max = Math.min(limit ?? this.options.limits.historyMaxLimit, this.options.limits.historyMaxLimit);
    if (since) {
      const read = await this.broker.history(ch.name, { sinceOffset: Math.max(0, since.offset), limit: max }, ch.history);
      if (read.position.epoch !== since.epoch) throw new HubError(107, 'since.epoch: does not match the stream');
      return read;
    }
    const top = await this.broker.history(ch.name, { limit: 0 }, ch.history);
    return this.broker.history(ch.name, { sinceOffset: Math.max(0, top.position.offset - max), limit: max }, ch.history);
  }

  async presence(conn: Connection, channel: string): Promise<Record<string, PresenceEntry>> {
    const ch = this.resolver.resolve(channel);
    assertCanSubscribe(ch, conn.user, conn.identity?.channels ?? []);
    return this.presenceOf(ch);
  }

  /** Presence of a channel, without permission checks (server side). */
  async presenceOf(ch: ResolvedChannel): Promise<Record<string, PresenceEntry>> {
    if (!ch.options.presence) throw new HubError(108, 'presence is off in this namespace');
    return this.presenceStore.get(ch.name);
  }

  /** Presence join; the join push goes out only for the user's first connection in the channel. */
  private async join(conn: Connection, ch: ResolvedChannel): Promise<void> {
    const entry: PresenceEntry = { user: conn.user, client: conn.id };
    if (conn.identity?.info !== undefined) entry.connInfo = conn.identity.info;
    const { userJoined } = await this.presenceStore.add(ch.name, entry);
    if (ch.options.joinLeave && userJoined) await this.broker.publishEvent(ch.name, { kind: 'join', info: entry });
  }

  /** Presence leave; the leave push goes out only when the user's last connection left. */
  private async leave(conn: Connection, ch: ResolvedChannel): Promise<void> {
    try {
      const info = { user: conn.user, client: conn.id };
      const { userLeft } = await this.presenceStore.remove(ch.name, info);
      if (ch.options.joinLeave && userLeft) await this.broker.publishEvent(ch.name, { kind: 'leave', info });
    } catch (err) {
      this.logger.warn({ err, channel: ch.name }, 'presence leave failed');
    }
  }

  // ---- typing, read receipts, status -----------------------------------------------------

  async typing(conn: Connection, params: Params<'typing'>): Promise<void> {
    const sub = conn.subscriptions.get(params.channel);
    if (!sub?.active) throw new HubError(112, 'subscribe to the channel to type in it');
    if (!sub.channel.options.typing) throw new HubError(108, 'typing is off in this namespace');
    const signal = this.typingThrottle.signal(sub.channel.name, conn.user, conn.id, params.typing, Date.now());
    if (signal) await this.sendTyping(signal);
  }

  private sendTyping(signal: TypingSignal): Promise<void> {
    const { channel, user, client, typing } = signal;
    return this.broker.publishEvent(channel, { kind: 'typing', user, client, typing });
  }

  async markRead(conn: Connection, params: Params<'markRead'>): Promise<ReadState> {
    const ch = await this.authorizeSubscribe(conn, params.channel);
    const { moved, ...state } = await this.reads.markRead(conn.user, ch, params.offset);
    if (ch.options.readReceipts && moved)
      await this.broker.publishEvent(ch.name, { kind: 'read', user: conn.user, offset: state.lastRead });
    return state;
  }

  async readState(conn: Connection, channel: string): Promise<ReadState> {
    return this.reads.readState(conn.user, await this.authorizeSubscribe(conn, channel));
  }

  async readers(conn: Connection, channel: string): Promise<Record<string, number>> {
    return this.reads.readers(await this.authorizeSubscribe(conn, channel));
  }

  setStatus(conn: Connection, status: Params<'setStatus'>['status']): Promise<StatusRecord> {
    if (conn.user === '') throw new HubError(101, 'anonymous connections have no status');
    return this.status.set(conn.user, status);
  }

  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.status.get(users);
  }

  registerRpc(name: string, handler: RpcHandler): void {
    this.rpcs.set(name, handler);
  }

  async callRpc(conn: Connection, method: string, data: unknown): Promise<unknown> {
    const handler = this.rpcs.get(method);
    if (!handler) throw new HubError(104, `rpc method not found: ${method}`);
    try {
      return (await handler(this.context(conn), data)) ?? null;
    } catch (err) {
      if (err instanceof HubError && (err.code >= APP_ERROR_CODE_MIN || err.code === 103)) throw err;
      this.logger.error({ err, method }, 'rpc handler failed');
      throw new HubError(100);
    }
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** One timer for every connection: connect deadlines, pings, pong deadlines, token expiry. */
  private beat(now: number): void {
    for (const conn of this.connections) conn.beat(now);
    for (const stop of this.typingThrottle.expire(now)) this.background(this.sendTyping(stop));
  }

  stats(): { connections: number; queuedBytes: number; channels: number } {
    let queuedBytes = 0;
    for (const conn of this.connections) queuedBytes += conn.queuedBytes;
    return { connections: this.connections.size, queuedBytes, channels: this.index.size };
  }

  /** Channels with local subscribers, and how many each has. */
  channelCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [name, subs] of this.index) counts.set(name, subs.size);
    return counts;
  }

  /**
   * Finds subscriptions that missed publications without a later one revealing it: behind the
   * stream top now and still behind the top seen one check earlier (so publications merely in
   * flight are not mistaken for losses), or on another epoch. Those resubscribe with recovery.
   */
  async checkPositions(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const [name, subs] of [...this.index]) {
        const ch = subs.values().next().value?.channel;
        if (!ch || ch.history.size === 0) continue;
        let top: StreamPosition;
        try {
          top = (await this.broker.history(name, { limit: 0 }, ch.history)).position;
        } catch (err) {
          this.logger.debug({ err, channel: name }, 'position check failed');
          continue;
        }
        for (const sub of subs) {
          if (!sub.active) continue;
          const lost = sub.epoch !== top.epoch || (sub.behindTop !== 0 && sub.offset < sub.behindTop);
          if (lost) this.kickSubscription(sub, UnsubscribeCode.INSUFFICIENT_STATE, 'missed publications: resubscribe with since', true);
          else sub.behindTop = sub.offset < top.offset ? top.offset : 0;
        }
      }
    } finally {
      this.checking = false;
    }
  }

  /** Runs work nobody waits for (presence, status, typing updates); failures are logged. */
  private background(work: Promise<unknown>): void {
    const tracked = work
      .catch((err: unknown) => this.logger.warn({ err }, 'background update failed'))
      .finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  /** Waits for background updates started so far (graceful shutdown, before the broker closes). */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.positionCheck);
  }

  context(conn: Connection): ClientContext {
    const ctx: ClientContext = { user: conn.user, client: conn.id, transport: conn.transport.kind, headers: conn.handshake.headers };
    if (conn.identity?.info !== undefined) ctx.info = conn.identity.info;
    return ctx;
  }
}
