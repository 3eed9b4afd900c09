import type { Logger } from 'pino';
import type { Identity, TokenVerifier } from '../auth/verifier.js';
import type { Broker, BrokerEventHandler, ControlCommand } from '../broker/broker.js';
import { isLossy } from '../broker/broker.js';
import { assertCanSubscribe, ChannelResolver, notificationsChannel, type ResolvedChannel } from '../channels/channels.js';
import type { HubOptions } from '../config/options.js';
import type { Metrics } from '../metrics/metrics.js';
import type { PresenceStore } from '../presence/presence-store.js';
import { UserStatusService } from '../presence/user-status.js';
import { CloseCode, UnsubscribeCode, type CloseCodeValue } from '../protocol/close-codes.js';
import { HubError } from '../protocol/errors.js';
import { ProxyHooks } from '../proxy/proxy-hooks.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import { encodeUnsubscribePush } from '../protocol/pushes.js';
import { ReadReceipts } from '../receipts/read-receipts.js';
import type { Store } from '../store/store.js';
import type { ChannelEvent, Publication, StreamPosition } from '../stream/types.js';
import { TypingThrottle } from '../typing/typing-throttle.js';
import { RawJson } from '../protocol/publish-scan.js';
import { ClientCommands } from './commands.js';
import { Fanout } from './fanout.js';
import { GuardedHooks } from './guarded-hooks.js';
import type { ClientContext, HubHooks, RpcHandler } from './hooks.js';
import { PositionCheck } from './position-check.js';
import { PresenceFlow } from './presence-flow.js';
import { Publisher } from './publisher.js';
import type { DocumentFrames } from './document-frames.js';
import type { Session, SubscribeAnswer } from './session.js';
import { SubscribeFlow } from './subscribe.js';
import type { Subscription } from './subscription.js';
import { SubscriptionRegistry } from './subscriptions.js';

export interface NodeParts {
  options: HubOptions;
  broker: Broker;
  presence: PresenceStore;
  store: Store;
  metrics: Metrics;
  verifier: TokenVerifier;
  hooks: HubHooks;
  logger: Logger;
  /** Webhooks (docs/backend.md), when `webhooks` is configured. */
  webhooks?: Webhooks;
}

/**
 * The heart of one Switchboard process. Sessions (whatever their transport) register here; the
 * Node admits them, routes their commands (hub/commands.ts, hub/subscribe.ts), fans out what the
 * Broker delivers (hub/fanout.ts), and releases everything a session held when it closes. It
 * sees sessions only through the small `Session` interface, and owns no sockets.
 */
export class Node implements BrokerEventHandler {
  readonly options: HubOptions;
  readonly broker: Broker;
  readonly verifier: TokenVerifier;
  readonly resolver: ChannelResolver;
  readonly sessions = new Set<Session>();
  readonly metrics: Metrics;
  readonly registry: SubscriptionRegistry;
  readonly commands: ClientCommands;
  /** Byte budget of one reply or recovery page: a quarter of limits.maxQueueBytes. */
  readonly pageBytes: number;
  /** The proxy hooks (docs/backend.md), when `proxy` is configured. */
  readonly proxy: ProxyHooks | undefined;
  readonly webhooks: Webhooks | undefined;
  /** Collaborative documents over regular connections (`doc` frames), plugged in by the server. */
  documents: DocumentFrames | undefined;
  private readonly fanout: Fanout;
  private readonly subscribing: SubscribeFlow;
  private readonly publisher: Publisher;
  private readonly hooks: GuardedHooks;
  private readonly presence: PresenceFlow;
  private readonly typingThrottle: TypingThrottle;
  private readonly status: UserStatusService;
  private readonly logger: Logger;
  private readonly byUser = new Map<string, Set<Session>>();
  private readonly heartbeat: NodeJS.Timeout;
  private readonly positionCheck: PositionCheck | undefined;
  private readonly positionTimer: NodeJS.Timeout | undefined;
  private readonly presenceSweep: NodeJS.Timeout | undefined;
  private readonly inflight = new Set<Promise<unknown>>();
  /** Streams this node had restarted after seeing them go back (channel + epoch). */
  private readonly restarted = new Set<string>();

  constructor(parts: NodeParts) {
    const { options, broker, logger } = parts;
    const l = options.limits;
    this.options = options;
    this.broker = broker;
    this.verifier = parts.verifier;
    this.webhooks = parts.webhooks;
    this.logger = logger;
    this.metrics = parts.metrics;
    this.resolver = new ChannelResolver(options);
    this.pageBytes = Math.floor(l.maxQueueBytes / 4);
    this.proxy = options.proxy ? new ProxyHooks(options.proxy, logger) : undefined;
    this.hooks = new GuardedHooks(parts.hooks, l.hookTimeoutMs, logger, this.proxy);
    this.typingThrottle = new TypingThrottle(l.typingThrottleMs, l.typingExpireMs);
    this.publisher = new Publisher(broker, l, parts.metrics);
    this.status = new UserStatusService(parts.presence, parts.store, (channel, data) => this.publish(channel, data));
    this.registry = new SubscriptionRegistry(broker, logger, options.redisCommandTimeoutMs * 2 + 1_000);
    this.presence = new PresenceFlow({
      presence: parts.presence,
      broker,
      registry: this.registry,
      resolver: this.resolver,
      webhooks: this.webhooks,
      channelInfo: (session, channel) => this.commands.channelInfo(session, channel),
      sessionsOf: (user) => this.sessionsOf(user),
      background: (work) => this.background(work),
    });
    const kick = this.kick.bind(this);
    // A catching-up subscription's buffer counts with its session's queue against limits.maxQueueBytes.
    const wentBack = this.wentBack.bind(this);
    this.fanout = new Fanout(this.registry, parts.metrics, l.maxQueueBytes, kick, wentBack);
    this.subscribing = new SubscribeFlow({
      broker,
      registry: this.registry,
      fanout: this.fanout,
      logger,
      limits: {
        maxPublications: l.recoveryMaxPublications,
        pageBytes: this.pageBytes,
        maxChannels: l.maxChannelsPerConnection,
        slowConsumerMs: l.slowConsumerMs,
      },
      kick,
      live: (sub) => {
        // channel.occupied is queued before the presence.join it comes with.
        const occupied = this.webhooks?.channelLive(sub.channel.name);
        if (sub.channel.options.presence) this.background(this.presence.join(sub.session, sub.channel, occupied));
      },
      background: (work) => this.background(work),
    });
    this.commands = new ClientCommands({
      options,
      resolver: this.resolver,
      broker,
      hooks: this.hooks,
      registry: this.registry,
      publisher: this.publisher,
      presence: parts.presence,
      reads: new ReadReceipts(broker, parts.store),
      status: this.status,
      typing: this.typingThrottle,
      pageBytes: this.pageBytes,
      context: (session) => this.context(session),
      ...(this.webhooks ? { published: (ch, session, data, position) => this.published(ch, session, data, position) } : {}),
    });
    broker.setHandler(this);
    const tick = Math.max(25, Math.min(1000, l.pongTimeoutMs / 2, l.connectTimeoutMs / 2, l.slowConsumerMs / 2));
    this.heartbeat = setInterval(() => this.beat(Date.now()), tick);
    this.heartbeat.unref();
    if (isLossy(broker)) {
      this.positionCheck = new PositionCheck(broker, this.registry, logger, kick, wentBack);
      this.positionTimer = setInterval(() => void this.positionCheck?.run(), options.positionCheckIntervalMs);
      this.positionTimer.unref();
    }
    if (parts.presence.sweepExpired) {
      this.presenceSweep = setInterval(
        () => this.background(this.presence.sweep()),
        Math.max(1000, (options.presenceTtlSeconds * 1000) / 3),
      );
      this.presenceSweep.unref();
    }
  }

  // ---- sessions --------------------------------------------------------------------------

  /** Who a connection is: its token verified, or the connect proxy's answer (docs/backend.md). */
  identify(session: Session, token: string | undefined): Promise<Identity> {
    if (this.proxy?.authenticates(token !== undefined && token !== '')) return this.proxy.connect(this.context(session));
    return this.verifier.verify(token);
  }

  register(session: Session): void {
    this.sessions.add(session);
  }

  /**
   * Admits a session whose token was verified: the per-user cap (anonymous sessions are not one
   * user, so only the global and per-IP caps apply to them), then the onConnect hook.
   */
  async admit(session: Session): Promise<void> {
    const user = session.user;
    if (user !== '' && (this.byUser.get(user)?.size ?? 0) >= this.options.limits.maxConnectionsPerUser) {
      throw new HubError(106, 'too many connections for this user');
    }
    await this.hooks.connect(this.context(session));
    if (session.closed) throw new HubError(110, 'connection closed');
    if (user !== '' && (this.byUser.get(user)?.size ?? 0) >= this.options.limits.maxConnectionsPerUser) {
      throw new HubError(106, 'too many connections for this user');
    }
    let set = this.byUser.get(user);
    if (!set) {
      set = new Set();
      this.byUser.set(user, set);
    }
    set.add(session);
    this.webhooks?.userConnected(user);
    this.background(this.status.connected(user, session.id));
  }

  /** Forgets a closed session and everything it held; each step runs even if another throws. */
  release(session: Session, code: CloseCodeValue): void {
    try {
      this.sessions.delete(session);
      this.metrics.disconnected(code);
      const set = this.byUser.get(session.user);
      if (set?.delete(session)) {
        if (set.size === 0) this.byUser.delete(session.user);
        this.webhooks?.userDisconnected(session.user);
        this.background(this.status.disconnected(session.user, session.id));
      }
    } finally {
      try {
        this.documents?.release(session);
      } catch (err) {
        this.logger.warn({ err }, 'document teardown failed');
      }
      for (const sub of this.registry.removeAll(session)) {
        try {
          this.afterRemoval(sub, code);
        } catch (err) {
          this.logger.warn({ err, channel: sub.channel.name }, 'subscription teardown failed');
        }
      }
    }
  }

  sessionsOf(user: string): ReadonlySet<Session> {
    return this.byUser.get(user) ?? new Set();
  }

  /**
   * After a token refresh: ends (2000) the subscriptions the new identity no longer grants, and
   * the documents it may no longer read, so a refresh narrows a session as well as extending it.
   */
  reauthorize(session: Session): void {
    try {
      this.documents?.reauthorize(session);
    } catch (err) {
      this.logger.warn({ err }, 'document reauthorization failed');
    }
    for (const sub of [...this.registry.of(session).values()]) {
      try {
        assertCanSubscribe(sub.channel, session.user, session.identity?.channels ?? []);
      } catch {
        this.kick(sub, UnsubscribeCode.SERVER, 'no longer permitted by the refreshed token', false);
      }
    }
  }

  // ---- subscriptions ---------------------------------------------------------------------

  /** Authorizes, then subscribes through the one subscribe path; `answer` speaks the transport. */
  async subscribe(
    session: Session,
    channel: string,
    since: StreamPosition | undefined,
    answer: SubscribeAnswer,
  ): Promise<Subscription | undefined> {
    const ch = await this.commands.authorize(session, channel);
    if (session.closed) return undefined;
    return this.subscribing.subscribe(session, ch, since, answer);
  }

  /** Subscribes to a channel already authorized (SSE checks every channel before its stream starts). */
  subscribeResolved(
    session: Session,
    ch: ResolvedChannel,
    since: StreamPosition | undefined,
    answer: SubscribeAnswer,
  ): Promise<Subscription | undefined> {
    return this.subscribing.subscribe(session, ch, since, answer);
  }

  unsubscribe(session: Session, channel: string): void {
    const sub = this.registry.get(session, channel);
    if (!sub || !this.registry.remove(sub)) throw new HubError(112);
    this.afterRemoval(sub);
  }

  /** Ends a subscription from the server side and tells the client. */
  private kick(sub: Subscription, code: number, reason: string, resubscribe: boolean): void {
    if (!this.registry.remove(sub)) return;
    try {
      this.afterRemoval(sub);
    } finally {
      sub.session.push(
        resubscribe ? 'resubscribe' : 'unsubscribe',
        Buffer.from(encodeUnsubscribePush(sub.channel.name, code, reason, resubscribe)),
      );
    }
  }

  /**
   * The stream of `channel` went back in `epoch`: a failover lost writes, so offsets are being
   * reused. The broker starts a new epoch, so that no position of the old one recovers into
   * reused offsets — also positions of clients that are offline now. Once per channel and epoch.
   */
  private wentBack(channel: string, epoch: string): void {
    const key = `${channel}\n${epoch}`;
    if (!isLossy(this.broker) || this.restarted.has(key)) return;
    if (this.restarted.size > 10_000) this.restarted.clear();
    this.restarted.add(key);
    this.background(this.broker.restartEpoch(channel, epoch));
  }

  /**
   * Presence leave and typing stop for a subscription just removed from the registry. A session
   * closed by a graceful shutdown (4000) leaves presence without a `leave` push: its user did not
   * leave, and reconnects elsewhere in a moment. (The presence.leave webhook still goes out, so a
   * backend's join/leave stays paired when the user comes back on another node.)
   */
  private afterRemoval(sub: Subscription, code?: CloseCodeValue): void {
    // channel.vacated is queued after the presence.leave it comes with.
    if (sub.channel.options.presence && sub.active) {
      const announce = code !== CloseCode.SHUTDOWN;
      this.background(this.presence.leave(sub.session, sub.channel, announce).finally(() => this.webhooks?.channelGone(sub.channel.name)));
    } else if (sub.active) this.webhooks?.channelGone(sub.channel.name);
    if (sub.channel.options.typing) {
      const stop = this.typingThrottle.forget(sub.channel.name, sub.session.user);
      if (stop) this.background(this.commands.sendTyping(stop));
    }
  }

  // ---- what the broker delivers ----------------------------------------------------------

  onPublication(channel: string, pub: Publication, epoch: string): void {
    this.fanout.onPublication(channel, pub, epoch);
  }

  onEvent(channel: string, event: ChannelEvent): void {
    this.fanout.onEvent(channel, event);
  }

  onControl(command: ControlCommand): void {
    for (const session of [...this.sessionsOf(command.user)]) {
      if (command.kind === 'disconnect') {
        session.close(command.code as CloseCodeValue, command.reason);
      } else {
        const sub = this.registry.get(session, command.channel);
        if (sub) this.kick(sub, UnsubscribeCode.SERVER, 'unsubscribed by server', false);
      }
    }
  }

  /** Closes every session of a user (4501, terminal), on every node. */
  disconnectUser(user: string, reason: string): Promise<void> {
    return this.broker.publishControl({ kind: 'disconnect', user, code: CloseCode.KICKED, reason });
  }

  /** Ends a user's subscription to a channel (unsubscribe push 2000), on every node. */
  unsubscribeUser(user: string, channel: string): Promise<void> {
    return this.broker.publishControl({ kind: 'unsubscribe', user, channel });
  }

  // ---- server-side publish ---------------------------------------------------------------

  /** Server-side publish: no permission checks; data bounded by limits.maxMessageBytes. */
  async publish(channel: string, data: unknown, idempotencyKey?: string): Promise<StreamPosition> {
    const ch = this.resolver.resolve(channel);
    const { offset, epoch } = await this.publisher.publish(ch, this.publisher.encode(data), idempotencyKey);
    return { offset, epoch };
  }

  /** Stores and pushes a notification on the user's `notifications:#<user>` channel. */
  async notify(user: string, data: unknown, idempotencyKey?: string): Promise<StreamPosition> {
    return this.publish(notificationsChannel(user), data, idempotencyKey);
  }

  registerRpc(name: string, handler: RpcHandler): void {
    this.hooks.registerRpc(name, handler);
  }

  statuses(users: readonly string[]): ReturnType<ClientCommands['statuses']> {
    return this.commands.statuses(users);
  }

  // ---- presence --------------------------------------------------------------------------

  /**
   * Presence put back after Redis lost it (restart without persistence, outage past the TTL):
   * online users get their status stored and published again; users back in a channel's
   * presence are announced with `join` (hub/presence-flow.ts).
   */
  restored(kind: 'presence' | 'online', name: string, users: readonly string[]): void {
    if (kind === 'online') {
      for (const user of users) if (user !== '') this.background(this.status.restored(user));
      return;
    }
    this.presence.restored(name, users);
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** One timer for every session: deadlines, pings, token expiry, sustained lag; typing expiry. */
  private beat(now: number): void {
    for (const session of [...this.sessions]) {
      try {
        session.beat(now);
      } catch (err) {
        this.logger.warn({ err, client: session.id }, 'heartbeat failed');
      }
    }
    for (const stop of this.typingThrottle.expire(now)) this.background(this.commands.sendTyping(stop));
  }

  stats(): { connections: number; queuedBytes: number; channels: number } {
    let queuedBytes = 0;
    for (const session of this.sessions) queuedBytes += session.queuedBytes;
    return { connections: this.sessions.size, queuedBytes, channels: this.registry.channelCount };
  }

  channelCounts(): Map<string, number> {
    return this.registry.channelCounts();
  }

  /** Runs a position check now (tests; the timer runs it every positionCheckIntervalMs). */
  checkPositions(): Promise<void> {
    return this.positionCheck?.run() ?? Promise.resolve();
  }

  /** Runs work nobody waits for (presence, status, typing, recovery pages); failures are logged. */
  background(work: Promise<unknown>): void {
    const tracked = work
      .catch((err: unknown) => this.logger.warn({ err }, 'background update failed'))
      .finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  /** Waits for background work started so far, until `deadline` (graceful shutdown). */
  async settle(deadline: number = Number.POSITIVE_INFINITY): Promise<void> {
    while (this.inflight.size > 0 && Date.now() < deadline) {
      const left = deadline - Date.now();
      await Promise.race([Promise.all([...this.inflight]), new Promise((r) => setTimeout(r, Math.min(left, 1_000)).unref())]);
    }
  }

  stop(): void {
    clearInterval(this.heartbeat);
    clearInterval(this.positionTimer);
    clearInterval(this.presenceSweep);
    this.commands.stop();
  }

  /** A client publication was accepted: the `publication` webhook, where the namespace asks for it. */
  private async published(ch: ResolvedChannel, session: Session, data: unknown, position: StreamPosition): Promise<void> {
    if (!this.webhooks) return;
    const value = data instanceof RawJson ? data.value() : data;
    const event = { channel: ch.name, offset: position.offset, epoch: position.epoch, data: value, user: session.user, client: session.id };
    try {
      await this.webhooks.publication(ch.options, event);
    } catch (err) {
      this.logger.warn({ err, channel: ch.name }, 'publication webhook not queued');
    }
  }

  /** Logs a command that failed with something other than a HubError (answered 100). */
  commandFailed(method: string, client: string, err: unknown): void {
    this.logger.error({ err, method, client }, 'command failed');
  }

  context(session: Session): ClientContext {
    const ctx: ClientContext = { user: session.user, client: session.id, transport: session.transportKind, headers: session.headers };
    if (session.identity?.info !== undefined) ctx.info = session.identity.info;
    if (session.clientName !== undefined) ctx.name = session.clientName;
    return ctx;
  }
}
