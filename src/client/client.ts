import { Backoff, validateBackoff, type BackoffOptions } from './backoff.js';
import { utf8Length, type Inbound } from './codec.js';
import { ClientErrorCode, ConnectionState, DEFAULTS, SubscriptionState, type ConnectionStateValue } from './constants.js';
import { Emitter } from './emitter.js';
import { ClientError } from './errors.js';
import { keyGenerator, OfflineQueue, type QueuedPublish } from './offline-queue.js';
import { RateLimiter, type RateOptions } from './rate-limiter.js';
import { Socket, type ReplyCallback, type Session } from './socket.js';
import { Notifications } from './notifications.js';
import { requestSetStatus, requestStatuses, StatusWatches } from './status.js';
import { requestHistory, requestPresence, Subscription, type SubscriptionHost } from './subscription.js';
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
  StreamPosition,
  SubscriptionHandlers,
  WebSocketConstructor,
} from './types.js';

export interface ClientOptions {
  /** A connection token (JWT). With `getToken` too, this one is used first. */
  token?: string;
  /** Called for a token before connecting (when there is none yet), before it expires, and after the server refused it as expired. */
  getToken?: () => Promise<string>;
  /** A name for this client, shown in server logs. */
  name?: string;
  /** Reconnect delays: exponential with full jitter. Default `{minMs: 500, maxMs: 20000, factor: 2}`. */
  backoff?: Partial<BackoffOptions>;
  /** Publishes waiting to be sent, at most (default 1000). One more is refused with QUEUE_FULL. */
  offlineQueueSize?: number;
  /** Publishes sent and not yet acknowledged, at most (default 32). */
  maxInflightPublishes?: number;
  /**
   * The pace of commands this client keeps to, to stay under the server's `limits.commandRate`:
   * publishes wait for it. Default `{perSecond: 90, burst: 180}` (the server's default is 100/s,
   * burst 200); `null` turns pacing off.
   */
  commandRate?: RateOptions | null;
  /** Reply timeout of connect, rpc, history and presence, in ms (default 10000). */
  timeoutMs?: number;
  /** Largest command sent, in bytes: the server's `limits.maxMessageBytes` (default 65536). */
  maxMessageBytes?: number;
  /**
   * `Subscription.typing(true)` sends at most one signal per this many ms while typing stays on
   * (default 1000). Keep it below the server's `limits.typingExpireMs` (5000 by default), or
   * the indicator expires between two signals.
   */
  typingThrottleMs?: number;
  /** A WebSocket implementation; default: the global one (browsers), else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Random numbers in [0, 1) for backoff jitter (tests). */
  random?: () => number;
}

export interface ClientEvents {
  state: [StateChange];
  connected: [ConnectedInfo];
  /** Problems that do not end the client: a refused token refresh, a rate-limited publish being retried, … */
  error: [ClientError];
}

export interface RpcOptions {
  timeoutMs?: number;
}

const KNOWN_OPTIONS = new Set([
  'token',
  'getToken',
  'name',
  'backoff',
  'offlineQueueSize',
  'maxInflightPublishes',
  'commandRate',
  'timeoutMs',
  'maxMessageBytes',
  'typingThrottleMs',
  'WebSocket',
  'random',
]);

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
  private readonly queue: OfflineQueue;
  private readonly inflight = new Map<number, QueuedPublish>();
  private readonly maxInflight: number;
  private readonly maxMessageBytes: number;
  private readonly timeoutMs: number;
  private readonly typingThrottleMs: number;
  private readonly nextKey = keyGenerator();
  private readonly retryBackoff: Backoff;
  private readonly waiters = new Set<Waiter>();
  private readonly rate: RateLimiter | undefined;
  private readonly rateFromServer: boolean;
  private pumpTimer: ReturnType<typeof setTimeout> | undefined;
  private seq = 0;
  private publishPaused = false;
  private connectedBefore = false;
  private readonly host: SubscriptionHost;
  /** The user of the last connect reply (kept while disconnected). */
  private lastUser: string | undefined;
  private notificationsObj: Notifications | undefined;
  private readonly statusWatches: StatusWatches;

  constructor(url: string | readonly string[], options: ClientOptions = {}) {
    for (const key of Object.keys(options)) {
      if (!KNOWN_OPTIONS.has(key)) throw badArgument(`unknown option: ${key}`);
    }
    const list = typeof url === 'string' ? [url] : [...url];
    if (list.length === 0) throw badArgument('url: give at least one URL');
    this.urls = Object.freeze(list.map(normalizeUrl));
    if (options.token !== undefined && (typeof options.token !== 'string' || options.token === ''))
      throw badArgument('token: expected a non-empty string');
    if (options.getToken !== undefined && typeof options.getToken !== 'function') throw badArgument('getToken: expected a function');
    const backoff: BackoffOptions = { ...DEFAULTS.backoff, ...options.backoff };
    validateBackoff(backoff);
    this.timeoutMs = positive(options.timeoutMs, DEFAULTS.timeoutMs, 'timeoutMs');
    this.typingThrottleMs = positive(options.typingThrottleMs, DEFAULTS.typingThrottleMs, 'typingThrottleMs');
    this.maxInflight = positive(options.maxInflightPublishes, DEFAULTS.maxInflightPublishes, 'maxInflightPublishes');
    this.maxMessageBytes = positive(options.maxMessageBytes, DEFAULTS.maxMessageBytes, 'maxMessageBytes');
    this.queue = new OfflineQueue(options.offlineQueueSize ?? DEFAULTS.offlineQueueSize);
    this.retryBackoff = new Backoff(backoff, options.random);
    if (options.commandRate !== null) this.rate = new RateLimiter(options.commandRate ?? DEFAULTS.commandRate);
    this.rateFromServer = options.commandRate === undefined;

    const socketOptions: ConstructorParameters<typeof Socket>[0] = {
      urls: this.urls,
      backoff,
      timeoutMs: this.timeoutMs,
      maxFrameBytes: Math.min(DEFAULTS.maxFrameBytes, this.maxMessageBytes),
      maxMessageBytes: this.maxMessageBytes,
    };
    if (options.token !== undefined) socketOptions.token = options.token;
    if (options.getToken !== undefined) socketOptions.getToken = options.getToken;
    if (options.name !== undefined) socketOptions.name = options.name;
    if (options.random !== undefined) socketOptions.random = options.random;
    if (options.WebSocket !== undefined) socketOptions.WebSocket = options.WebSocket;
    this.socket = new Socket(socketOptions, {
      connected: (session) => this.onConnected(session),
      transportLost: () => this.onTransportLost(),
      stateChange: (state, previous, reason, code) => this.onSocketState(state, previous, reason, code),
      push: (msg) => this.onPush(msg),
      error: (err) => this.emitter.emit('error', err),
    });

    const socket = this.socket;
    this.host = {
      get connected() {
        return socket.connected;
      },
      send: (method: string, params: unknown, callback: ReplyCallback) => this.send(method, params, callback),
      call: (method: string, params: unknown, timeoutMs?: number) => this.call(method, params, timeoutMs),
      publish: (channel: string, data: unknown, opts?: PublishOptions) => this.publish(channel, data, opts),
      removeSubscription: (sub: Subscription) => {
        if (this.subs.get(sub.channel) === sub) this.subs.delete(sub.channel);
      },
      retryDelay: () => this.retryBackoff.next(),
      reportError: (err: ClientError) => this.emitter.emit('error', err),
      typingThrottleMs: this.typingThrottleMs,
    };
    this.statusWatches = new StatusWatches(this.featureHost());
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

  // ---- publish and the offline queue -------------------------------------------------------

  /**
   * Publishes into a channel; resolves with its position once the server acknowledged it. Sent
   * at once when connected; otherwise queued (bounded by `offlineQueueSize`) and sent in order
   * after the next connect, after the subscriptions. Every publish carries an idempotency key
   * (generated unless given), and one whose acknowledgement was lost is sent again with the same
   * key, so the server applies it exactly once.
   */
  publish(channel: string, data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return new Promise((resolve, reject) => {
      checkChannel(channel);
      const key = options.idempotencyKey ?? this.nextKey();
      if (typeof key !== 'string' || key.length === 0 || key.length > 128) {
        throw badArgument('publish: idempotencyKey must be a string of 1 to 128 characters');
      }
      let line: string | undefined;
      try {
        line = JSON.stringify({ id: Number.MAX_SAFE_INTEGER, method: 'publish', params: { channel, data, idempotencyKey: key } });
      } catch (err) {
        throw badArgument(`publish: data is not JSON: ${(err as Error).message}`);
      }
      if (data === undefined || JSON.stringify(data) === undefined) throw badArgument('publish: data is not JSON');
      const bytes = utf8Length(line);
      if (bytes > this.maxMessageBytes) {
        throw new ClientError(
          ClientErrorCode.MESSAGE_TOO_BIG,
          `publish: ${bytes} bytes is over maxMessageBytes (${this.maxMessageBytes}); the server would close the connection`,
        );
      }
      const item: QueuedPublish = { seq: ++this.seq, channel, data, idempotencyKey: key, attempts: 0, resolve, reject };
      if (this.queue.size === 0 && this.canSendPublish()) {
        this.sendPublish(item);
      } else {
        this.queue.push(item); // throws QUEUE_FULL
        this.pumpPublishes();
      }
    });
  }

  /** Publishes waiting to be sent plus those sent and not yet acknowledged. */
  get pendingPublishes(): number {
    return this.queue.size + this.inflight.size;
  }

  /** Rejects (with CLOSED) every publish still waiting to be sent. Those in flight are unaffected. */
  clearOfflineQueue(): void {
    for (const item of this.queue.drain()) item.reject(ClientError.closed('publish: the offline queue was cleared'));
  }

  /** Sends queued publishes in order while the window and the command rate allow. */
  private pumpPublishes(): void {
    while (this.queue.size > 0 && this.canSendPublish()) this.sendPublish(this.queue.shift()!);
    if (this.queue.size > 0 && this.socket.connected && !this.publishPaused && this.inflight.size < this.maxInflight && this.rate) {
      // Waiting for the command rate.
      if (this.pumpTimer === undefined) {
        this.pumpTimer = setTimeout(
          () => {
            this.pumpTimer = undefined;
            this.pumpPublishes();
          },
          Math.max(1, this.rate.waitMs()),
        );
      }
    }
  }

  /** Whether one more publish may go now (takes a command-rate token if so). */
  private canSendPublish(): boolean {
    if (!this.socket.connected || this.publishPaused || this.inflight.size >= this.maxInflight) return false;
    return this.rate ? this.rate.tryTake() : true;
  }

  /** Sends a command other than publish (it counts against the command rate, without waiting). */
  private send(method: string, params: unknown, callback: ReplyCallback, timeoutMs?: number): void {
    if (this.socket.connected) this.rate?.spend();
    this.socket.send(method, params, callback, timeoutMs);
  }

  private sendPublish(item: QueuedPublish): void {
    item.attempts += 1;
    this.inflight.set(item.seq, item);
    const params = { channel: item.channel, data: item.data, idempotencyKey: item.idempotencyKey };
    this.socket.send('publish', params, (err, result) => {
      if (this.inflight.get(item.seq) !== item) return;
      this.inflight.delete(item.seq);
      if (!err) {
        this.retryBackoff.reset();
        const r = result as StreamPosition;
        item.resolve({ offset: r?.offset ?? 0, epoch: r?.epoch ?? '' });
        this.pumpPublishes();
      } else if (err.code === ClientErrorCode.DISCONNECTED) {
        // Sent, maybe applied, ack lost: back in line with the same key.
        this.queue.requeue(item);
      } else if (err.fromServer && err.temporary) {
        // Rate-limited or the broker is unavailable: the same key again, after a pause.
        this.queue.requeue(item);
        this.pausePublishes(err);
      } else {
        item.reject(err);
        this.pumpPublishes();
      }
    });
  }

  private pausePublishes(err: ClientError): void {
    if (this.publishPaused) return;
    this.emitter.emit('error', err);
    this.publishPaused = true;
    setTimeout(() => {
      this.publishPaused = false;
      this.pumpPublishes();
    }, this.retryBackoff.next());
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
    // Order on the wire: resubscribes (with since), then queued publishes, then waiting calls.
    for (const sub of [...this.subs.values()]) sub._connected();
    this.pumpPublishes();
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
    for (const item of this.inflight.values()) this.queue.requeue(item);
    this.inflight.clear();
  }

  private onSocketState(state: ConnectionStateValue, previous: ConnectionStateValue, reason: string, code?: number): void {
    if (state === ConnectionState.Disconnected) {
      const waiters = [...this.waiters];
      this.waiters.clear();
      for (const w of waiters) w.fail(new ClientError(ClientErrorCode.DISCONNECTED, `disconnected: ${reason}`, { temporary: true }));
      for (const sub of this.subs.values()) sub._clientStopped(reason);
    }
    const change: StateChange = { state, previous, reason };
    if (code !== undefined) change.code = code;
    this.emitter.emit('state', change);
  }

  private onPush(msg: Inbound): void {
    if (typeof msg.channel !== 'string') return;
    const sub = this.subs.get(msg.channel);
    if (sub && sub.state !== SubscriptionState.Unsubscribed) sub._push(msg);
  }
}

function badArgument(message: string): ClientError {
  return new ClientError(ClientErrorCode.BAD_ARGUMENT, message);
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw badArgument(`${name}: expected a positive number`);
  return value;
}

function checkChannel(channel: unknown): asserts channel is string {
  if (typeof channel !== 'string' || channel.length === 0 || utf8Length(channel) > 255) {
    throw badArgument('channel: expected a string of 1 to 255 bytes');
  }
}

/**
 * ws:// and wss:// URLs as given; http(s):// turned into ws(s)://; in a browser a path such as
 * `/ws` is taken relative to the page.
 */
function normalizeUrl(url: string): string {
  if (typeof url !== 'string' || url === '') throw badArgument('url: expected a non-empty string');
  const base = (globalThis as { location?: { href?: string } }).location?.href;
  let parsed: URL;
  try {
    parsed = base ? new URL(url, base) : new URL(url);
  } catch {
    throw badArgument(`url: not a valid URL: ${url}`);
  }
  if (parsed.protocol === 'http:') parsed.protocol = 'ws:';
  else if (parsed.protocol === 'https:') parsed.protocol = 'wss:';
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')
    throw badArgument(`url: expected ws://, wss://, http:// or https://: ${url}`);
  return parsed.toString();
}
