import { Backoff } from './backoff.js';
import { requestHistory, requestPresence } from './channel-requests.js';
import { resolveClientOptions, type ClientOptions } from './client-options.js';
import type { Inbound } from './codec.js';
import { ClientErrorCode, ConnectionState, DEFAULTS, SubscriptionState, type ConnectionStateValue } from './constants.js';
import { ClientDocuments } from './client-documents.js';
import type { DocumentOptions, DocumentProvider } from './document.js';
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { OfflineQueue } from './offline-queue.js';
import { PublishPipeline } from './publish-pipeline.js';
import { RateLimiter } from './rate-limiter.js';
import type { ReplyCallback } from './reply-table.js';
import { Socket, type Session } from './socket.js';
import { Notifications } from './notifications.js';
import { requestSetStatus, requestStatuses, StatusWatches } from './status.js';
import { Subscription, type SubscriptionHost } from './subscription.js';
import { ServerSubscriptions, type ServerSubscriptionEvents } from './server-subscriptions.js';
import type {
  ConnectedInfo,
  HistoryOptions,
  HistoryResult,
  PresenceResult,
  PublishOptions,
  PublishResult,
  SettableStatus,
  StateChange,
  StatusEvent,
  StatusRecord,
  SubscriptionHandlers,
} from './types.js';
import { badArgument, checkChannel } from './validation.js';

export type { ClientOptions };

/** The client's events; those of server-side subscriptions are listed in ServerSubscriptionEvents. */
export interface ClientEvents extends ServerSubscriptionEvents {
  state: [StateChange];
  connected: [ConnectedInfo];
  /** Problems that do not end the client: a refused token refresh, a rate-limited publish being retried, … */
  error: [ClientError];
}

export interface RpcOptions {
  timeoutMs?: number;
}

interface Waiter {
  go(): void;
  fail(err: ClientError): void;
}

/**
 * The Switchboard client: one logical connection (reconnecting across `urls`), its
 * subscriptions (recovered after every reconnect), RPC, and an offline queue of publishes that
 * are applied exactly once.
 *
 * ```ts
 * const client = new SwitchboardClient('wss://hub.example/ws', { getToken: fetchToken });
 * client.on('state', (s) => console.log(s.state, s.reason));
 * const sub = client.subscribe('chat:general', { onPublication: (p) => render(p.data) });
 * client.connect();
 * await sub.publish({ text: 'hi' });
 * ```
 */
export class SwitchboardClient {
  readonly urls: readonly string[];
  private readonly socket: Socket;
  private readonly emitter = new Emitter<ClientEvents>();
  private readonly subs = new Map<string, Subscription>();
  private readonly publishes: PublishPipeline;
  private readonly timeoutMs: number;
  private readonly typingThrottleMs: number;
  /** Delays of subscribe retries and publish pauses after temporary refusals. */
  private readonly retryBackoff: Backoff;
  private readonly waiters = new Set<Waiter>();
  private readonly rate: RateLimiter | undefined;
  private readonly rateFromServer: boolean;
  private connectedBefore = false;
  private readonly host: SubscriptionHost;
  /** The user of the last connect reply (kept while disconnected). */
  private lastUser: string | undefined;
  private notificationsObj: Notifications | undefined;
  private readonly statusWatches: StatusWatches;
  private readonly serverSubs: ServerSubscriptions;
  private readonly docs: ClientDocuments;

  constructor(url: string | readonly string[], options: ClientOptions = {}) {
    const resolved = resolveClientOptions(url, options);
    this.urls = resolved.urls;
    const { backoff, maxInflight, maxMessageBytes } = resolved;
    this.timeoutMs = resolved.timeoutMs;
    this.typingThrottleMs = resolved.typingThrottleMs;
    // The queue and the rate limiter check offlineQueueSize and commandRate, in this order.
    const queue = new OfflineQueue(options.offlineQueueSize ?? DEFAULTS.offlineQueueSize);
    this.retryBackoff = new Backoff(backoff, options.random);
    if (options.commandRate !== null) this.rate = new RateLimiter(options.commandRate ?? DEFAULTS.commandRate);
    this.rateFromServer = options.commandRate === undefined;

    const socketOptions: ConstructorParameters<typeof Socket>[0] = {
      urls: this.urls,
      backoff,
      timeoutMs: this.timeoutMs,
      maxFrameBytes: Math.min(DEFAULTS.maxFrameBytes, maxMessageBytes),
      maxMessageBytes,
    };
    if (options.token !== undefined) socketOptions.token = options.token;
    if (options.getToken !== undefined) socketOptions.getToken = options.getToken;
    if (options.name !== undefined) socketOptions.name = options.name;
    if (options.random !== undefined) socketOptions.random = options.random;
    if (options.WebSocket !== undefined) socketOptions.WebSocket = options.WebSocket;
    if (options.codec !== undefined) socketOptions.codec = options.codec;
    if (options.protocolVersion !== undefined) socketOptions.protocolVersion = options.protocolVersion;
    this.socket = new Socket(socketOptions, {
      connected: (session) => this.onConnected(session),
      connectParams: () => this.serverSubs.connectParams(),
      transportLost: () => this.onTransportLost(),
      stateChange: (state, previous, reason, code) => this.onSocketState(state, previous, reason, code),
      push: (msg) => this.onPush(msg),
      error: (err) => this.emitter.emit('error', err),
    });

    const socket = this.socket;
    this.publishes = new PublishPipeline(
      {
        get connected() {
          return socket.connected;
        },
        send: (method: string, params: unknown, callback: ReplyCallback) => socket.send(method, params, callback),
        reportError: (err: ClientError) => this.emitter.emit('error', err),
      },
      { queue, maxInflight, maxMessageBytes, rate: this.rate, retryBackoff: this.retryBackoff },
    );
    this.host = {
      get connected() {
        return socket.connected;
      },
      send: (method: string, params: unknown, callback: ReplyCallback) => this.send(method, params, callback),
      call: (method: string, params: unknown, timeoutMs?: number) => this.call(method, params, timeoutMs),
      publish: (channel: string, data: unknown, opts?: PublishOptions) => this.publish(channel, data, opts),
      emit: (method: string, params: unknown) => socket.sendWithoutReply(method, params),
      removeSubscription: (sub: Subscription) => {
        if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
      },
      retryDelay: () => this.retryBackoff.next(),
      reportError: (err: ClientError) => this.emitter.emit('error', err),
      typingThrottleMs: this.typingThrottleMs,
    };
    this.statusWatches = new StatusWatches(this.featureHost());
    this.serverSubs = new ServerSubscriptions(this.subs, this.host, (event, ...args) =>
      (this.emitter as Emitter<ServerSubscriptionEvents>).emit(event, ...args),
    );
    this.docs = new ClientDocuments({
      get connected() {
        return socket.connected;
      },
      binary: options.codec === 'msgpack',
      send: (method, params, callback) => this.send(method, params, callback),
      reportError: (err: ClientError) => this.emitter.emit('error', err),
    });
  }

  /**
   * Syncs `ydoc` with the document `name` (a channel of a `document: true` namespace) over this
   * connection, again after every reconnect (docs/collab.md). One provider per name: `destroy()`
   * it before making another.
   */
  document(name: string, ydoc: import('yjs').Doc, options: DocumentOptions = {}): DocumentProvider {
    return this.docs.open(name, ydoc, options);
  }

  /** What the status watches and notifications use: calls, subscriptions, error reports. */
  private featureHost(): ConstructorParameters<typeof Notifications>[0] {
    const socket = this.socket;
    return {
      get connected() {
        return socket.connected;
      },
      call: (method: string, params: unknown, timeoutMs?: number) => this.call(method, params, timeoutMs),
      subscribe: <T>(channel: string, handlers: SubscriptionHandlers<T>) => this.subscribe<T>(channel, handlers),
      reportError: (err: ClientError) => this.emitter.emit('error', err),
    };
  }

  // ---- connection --------------------------------------------------------------------------

  get state(): ConnectionStateValue {
    return this.socket.state;
  }

  /** The server's id for the current connection (undefined while not connected). */
  get clientId(): string | undefined {
    return this.socket.session?.client;
  }

  /** The user the server knows this connection as (undefined while not connected). */
  get user(): string | undefined {
    return this.socket.session?.user;
  }

  /** Starts connecting (and reconnecting, until `disconnect()` or a terminal close). */
  connect(): void {
    this.socket.connect();
  }

  /**
   * Closes the connection and stops reconnecting. Subscriptions are kept and resubscribe on
   * the next `connect()`; queued publishes wait for it too (see `clearOfflineQueue`).
   */
  disconnect(): void {
    this.socket.disconnect();
  }

  /** Resolves when connected (at once if it is); rejects if the client stops trying, or after `timeoutMs`. */
  ready(timeoutMs?: number): Promise<void> {
    if (this.socket.connected) return Promise.resolve();
    if (this.socket.state === ConnectionState.Disconnected) return Promise.reject(ClientError.notConnected('ready'));
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: Waiter = {
        go: () => {
          clearTimeout(timer);
          resolve();
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(ClientError.timeout('connect', timeoutMs));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  on<K extends keyof ClientEvents>(event: K, listener: (...args: ClientEvents[K]) => void): () => void {
    return this.emitter.on(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: (...args: ClientEvents[K]) => void): void {
    this.emitter.off(event, listener);
  }

  /** Same as `on('state', listener)`. */
  onStateChange(listener: (change: StateChange) => void): () => void {
    return this.emitter.on('state', listener);
  }

  // ---- subscriptions -----------------------------------------------------------------------

  /**
   * Subscribes to a channel (now if connected, else as soon as the connection is up) and keeps
   * the subscription across reconnects. Throws ALREADY_SUBSCRIBED if this client has one.
   */
  subscribe<T = unknown>(channel: string, handlers: SubscriptionHandlers<T> = {}): Subscription<T> {
    checkChannel(channel);
    if (this.subs.has(channel)) {
      throw new ClientError(ClientErrorCode.ALREADY_SUBSCRIBED, `subscribe: already subscribed to ${channel} (use getSubscription)`);
    }
    const sub = new Subscription<T>(this.host, channel, handlers);
    this.subs.set(channel, sub as Subscription);
    if (this.socket.connected) sub._connected();
    return sub;
  }

  getSubscription<T = unknown>(channel: string): Subscription<T> | undefined {
    return this.subs.get(channel) as Subscription<T> | undefined;
  }

  get subscriptions(): Subscription[] {
    return [...this.subs.values()];
  }

  /**
   * The subscriptions the server made at connect (the connect proxy's `channels`, a JWT `subs`
   * claim): recovered on every reconnect through `connect`; their publications come as
   * `publication` events of the client (docs/client.md).
   */
  get serverSubscriptions(): Subscription[] {
    return this.serverSubs.list();
  }

  // ---- publish and the offline queue -------------------------------------------------------

  /**
   * Publishes into a channel; resolves with its position once the server acknowledged it. Sent
   * at once when connected; otherwise queued (bounded by `offlineQueueSize`) and sent in order
   * after the next connect, after the subscriptions. Every publish carries an idempotency key
   * (generated unless given), and one whose acknowledgement was lost is sent again with the same
   * key, so the server applies it exactly once.
   */
  publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.publishes.publish(channel, data, options);
  }

  /** Publishes waiting to be sent plus those sent and not yet acknowledged. */
  get pendingPublishes(): number {
    return this.publishes.pending;
  }

  /** Rejects (with CLOSED) every publish still waiting to be sent. Those in flight are unaffected. */
  clearOfflineQueue(): void {
    this.publishes.clearQueue();
  }

  /** Sends a command other than publish (it counts against the command rate, without waiting). */
  private send(method: string, params: unknown, callback: ReplyCallback, timeoutMs?: number): void {
    if (this.socket.connected) this.rate?.spend();
    this.socket.send(method, params, callback, timeoutMs);
  }

  // ---- rpc, history, presence --------------------------------------------------------------

  /** Calls a server RPC method; resolves with its data, rejects with the server's error code. */
  async rpc<R = unknown>(method: string, data?: unknown, options: RpcOptions = {}): Promise<R> {
    if (typeof method !== 'string' || method === '') throw badArgument('rpc: method must be a non-empty string');
    const params = data === undefined ? { method } : { method, data };
    const r = (await this.call('rpc', params, options.timeoutMs)) as { data?: R };
    return r?.data as R;
  }

  /** A channel's history without subscribing (same as `Subscription.history`). */
  history<T = unknown>(channel: string, options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    checkChannel(channel);
    return requestHistory<T>(this.host, channel, options);
  }

  /** A channel's presence without subscribing (same as `Subscription.presence`). */
  presence(channel: string): Promise<PresenceResult> {
    checkChannel(channel);
    return requestPresence(this.host, channel);
  }

  // ---- user status and notifications -------------------------------------------------------

  /**
   * Sets this user's status (all their connections share it); resolves with the stored record.
   * A user is `online` on their first connection and `offline` when their last one goes.
   */
  setStatus(status: SettableStatus): Promise<StatusRecord> {
    return requestSetStatus(this.host, status);
  }

  /** Status and last-seen time (unix ms; 0 = never seen) of 1 to 100 users, in one call. */
  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return requestStatuses(this.host, users);
  }

  /**
   * Follows a user's status: `callback` gets the current status once subscribed (and again
   * after each reconnect, if it changed meanwhile), then every change, live. Subscribes to
   * `status:<user>` (one subscription per user, however many callbacks). Returns a function
   * that stops this callback; the subscription ends with the last one.
   */
  watchStatus(user: string, callback: (event: StatusEvent) => void): () => void {
    return this.statusWatches.watch(user, callback);
  }

  /**
   * The connected user's notifications (`notifications:#<user>`): live delivery, unread count,
   * paging, mark read. Created on first use for the user of the connect reply, so the client
   * must have connected once (`await client.ready()`); throws DISCONNECTED before that.
   */
  get notifications(): Notifications {
    const user = this.lastUser;
    if (user === undefined) {
      throw new ClientError(ClientErrorCode.DISCONNECTED, 'notifications: the user is known once connected (await client.ready())', {
        temporary: true,
      });
    }
    if (user === '') throw badArgument('notifications: anonymous connections have no notifications');
    if (this.notificationsObj?.user !== user) this.notificationsObj = new Notifications(this.featureHost(), user);
    return this.notificationsObj;
  }

  /**
   * Sends a command and resolves with its result. While connecting it waits for the connection
   * (within the same timeout); while disconnected it rejects at once. A command in flight when
   * the connection drops rejects with a temporary DISCONNECTED error.
   */
  private call(method: string, params: unknown, timeoutMs: number = this.timeoutMs): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const callback: ReplyCallback = (err, result) => (err ? reject(err) : resolve(result));
      if (this.socket.connected) {
        this.send(method, params, callback, timeoutMs);
        return;
      }
      if (this.socket.state === ConnectionState.Disconnected) {
        reject(ClientError.notConnected(method));
        return;
      }
      const started = Date.now();
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(ClientError.timeout(method, timeoutMs));
      }, timeoutMs);
      const waiter: Waiter = {
        go: () => {
          clearTimeout(timer);
          this.send(method, params, callback, Math.max(1, timeoutMs - (Date.now() - started)));
        },
        fail: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
    });
  }

  // ---- socket events -----------------------------------------------------------------------

  private onConnected(session: Session): void {
    const reconnected = this.connectedBefore;
    this.connectedBefore = true;
    this.lastUser = session.user;
    if (this.notificationsObj && this.notificationsObj.user !== session.user) {
      // Another token, another user: the old notifications object is done.
      this.notificationsObj._close();
      this.notificationsObj = undefined;
    }
    // Without an explicit `commandRate`, pace to what this server says it enforces.
    if (this.rateFromServer && session.commandRate) this.rate?.adopt(session.commandRate);
    this.rate?.reset();
    // Server-side subscriptions first: the connect reply opened them (publications follow it).
    this.serverSubs.connected(session);
    // Order on the wire: resubscribes (with since), then queued publishes, then waiting calls.
    for (const sub of [...this.subs.values()]) sub._connected();
    this.docs.connected();
    this.publishes.connected();
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w.go();
    // After the resubscribes: re-read unread counts (other devices may have marked read).
    this.notificationsObj?._connected();
    const info: ConnectedInfo = { client: session.client, user: session.user, url: session.url, reconnected };
    if (session.expires !== undefined) info.expires = session.expires;
    this.emitter.emit('connected', info);
  }

  private onTransportLost(): void {
    for (const sub of this.subs.values()) sub._transportLost();
    this.docs.lost();
    this.publishes.transportLost();
  }

  private onSocketState(state: ConnectionStateValue, previous: ConnectionStateValue, reason: string, code?: number): void {
    if (state === ConnectionState.Disconnected) {
      const waiters = [...this.waiters];
      this.waiters.clear();
      for (const w of waiters) w.fail(new ClientError(ClientErrorCode.DISCONNECTED, `disconnected: ${reason}`, { temporary: true }));
      for (const sub of this.subs.values()) sub._clientStopped(reason);
      this.docs.lost();
    }
    const change: StateChange = { state, previous, reason };
    if (code !== undefined) change.code = code;
    this.emitter.emit('state', change);
  }

  private onPush(msg: Inbound): void {
    if (typeof msg.channel !== 'string') return;
    if (msg.push === 'doc') {
      this.docs.push(msg.channel, msg);
      return;
    }
    const sub = this.subs.get(msg.channel);
    if (sub && sub.state !== SubscriptionState.Unsubscribed) sub._push(msg);
  }
}
