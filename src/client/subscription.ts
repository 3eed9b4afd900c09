import { requestHistory, requestMarkRead, requestPresence, requestReadState } from './channel-requests.js';
import { ClientErrorCode, SubscriptionState, UnsubscribeCode, type SubscriptionStateValue } from './constants.js';
import type { Inbound } from './codec.js';
import { safeCall } from './emitter.js';
import { ClientError } from './errors.js';
import type { ReplyCallback } from './socket.js';
import type {
  ClientEvent,
  EmitOptions,
  HistoryOptions,
  HistoryResult,
  PresenceEntry,
  PresenceResult,
  PublishOptions,
  PublishResult,
  PublisherInfo,
  ReadState,
  StreamPosition,
  SubscriptionHandlers,
} from './types.js';
import { badArgument } from './validation.js';

// Re-exported for the modules that import them from here (notifications.ts).
export { requestHistory, requestMarkRead, requestPresence, requestReadState };

/** What a Subscription needs from its client. */
export interface SubscriptionHost {
  readonly connected: boolean;
  /** Sends on the current connection; the callback runs in wire order. */
  send(method: string, params: unknown, callback: ReplyCallback): void;
  /** A command that may wait for the connection (rpc, history, presence). */
  call(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  publish(channel: string, data: unknown, options?: PublishOptions): Promise<PublishResult>;
  /** Sends a command without a reply on the current connection; false when not connected. */
  emit?(method: string, params: unknown): boolean;
  removeSubscription(sub: Subscription): void;
  /** Delay before retrying a subscribe refused with a temporary error. */
  retryDelay(): number;
  reportError(err: ClientError): void;
  /** Least time between two `typing: true` signals. */
  readonly typingThrottleMs: number;
}

interface Waiter {
  resolve(): void;
  reject(err: ClientError): void;
  timer?: ReturnType<typeof setTimeout>;
}

interface WirePublication {
  offset?: number;
  data?: unknown;
  info?: PublisherInfo;
}

/**
 * One channel subscription. It survives reconnects: after each one it resubscribes with the
 * last position it saw, delivers what was missed in order, and drops anything already seen.
 * Create it with `client.subscribe(channel, handlers)`.
 */
export class Subscription<T = unknown> {
  private current: SubscriptionStateValue = SubscriptionState.Subscribing;
  /** Offset of the last publication delivered (or the position of a subscribe that did not recover). */
  private offset = 0;
  /** Epoch of the stream; undefined before the first subscribe reply, '' without history. */
  private epoch: string | undefined;
  private recoverableFlag = false;
  /** The stream top a paged recovery is still delivering up to (0: none). */
  private recoveringTo = 0;
  private attempt = 0;
  private everSubscribed = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private waiters = new Set<Waiter>();
  /** Why the subscription ended, for `ready()` callers who come late. */
  private endError: ClientError | undefined;
  /** Whether the server was last told `typing: true` (on this connection), and when. */
  private typingSent = false;
  private typingSentAt = 0;
  /** Other users shown as typing, cleared (with `onTyping(false)`) when the connection drops. */
  private readonly typingUsers = new Set<string>();

  constructor(
    private readonly host: SubscriptionHost,
    readonly channel: string,
    private readonly handlers: SubscriptionHandlers<T>,
  ) {}

  get state(): SubscriptionStateValue {
    return this.current;
  }

  /** The last position seen: what a resubscribe asks to recover from. Undefined before the first subscribe. */
  get position(): StreamPosition | undefined {
    return this.epoch === undefined ? undefined : { offset: this.offset, epoch: this.epoch };
  }

  /** Whether the channel keeps history and allows recovery (known after the first subscribe). */
  get recoverable(): boolean {
    return this.recoverableFlag;
  }

  /** Resolves once subscribed (at once if it is); rejects if the subscription ends or the client gives up. */
  ready(timeoutMs?: number): Promise<void> {
    if (this.current === SubscriptionState.Subscribed) return Promise.resolve();
    if (this.current === SubscriptionState.Unsubscribed) {
      return Promise.reject(this.endError ?? ClientError.closed(`subscription to ${this.channel} has ended`));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.delete(waiter);
          reject(ClientError.timeout(`subscribe ${this.channel}`, timeoutMs));
        }, timeoutMs);
      }
      this.waiters.add(waiter);
    });
  }

  /**
   * Publishes into this channel. Resolves with the position once the server acknowledged it.
   * While disconnected it waits in the offline queue; a publish whose acknowledgement was lost is
   * retried with the same idempotency key, so the server applies it once.
   */
  publish(data: unknown, options: PublishOptions = {}): Promise<PublishResult> {
    return this.host.publish(this.channel, data, options);
  }

  /**
   * Sends an ephemeral client event to the channel's other subscribers (`clientEvents: true`
   * namespaces): no history, no offset, no reply; at most once, and under backpressure only the
   * newest per key arrives. Returns false (nothing sent) while not subscribed or not connected;
   * events are never queued offline.
   */
  emit(data: unknown, options: EmitOptions = {}): boolean {
    if (this.current !== SubscriptionState.Subscribed) return false;
    return this.host.emit?.('emit', options.key === undefined ? { channel: this.channel, data } : { channel: this.channel, data, key: options.key }) ?? false;
  }

  /**
   * Publications kept in the channel's history, oldest first: the latest `limit`, or those
   * after `since`. A reply may hold fewer than `limit` (the server bounds each reply in bytes);
   * `position` is still the stream top. To get the rest, call again with `since` = the offset
   * of the last publication received, until it reaches `position.offset`.
   */
  history(options: HistoryOptions = {}): Promise<HistoryResult<T>> {
    return requestHistory<T>(this.host, this.channel, options);
  }

  /**
   * Who is subscribed to the channel now (needs `presence: true` on the namespace): every
   * connection by client id, and each user once however many connections they have.
   */
  presence(): Promise<PresenceResult> {
    return requestPresence(this.host, this.channel);
  }

  /**
   * Tells the channel's other users whether this user is typing (needs `typing: true` on the
   * namespace). Safe to call on every keystroke: while typing stays on, at most one signal per
   * `typingThrottleMs` (1 s) goes out, each keeping the indicator alive (the server clears it
   * after `limits.typingExpireMs`, 5 s, without one). `typing(false)` is sent only after a `true`.
   * Nothing is sent while not subscribed. Fire and forget: a refusal is reported as an `error`
   * event of the client.
   */
  typing(isTyping: boolean): void {
    if (typeof isTyping !== 'boolean') throw badArgument('typing: expected a boolean');
    if (this.current !== SubscriptionState.Subscribed || !this.host.connected) return;
    const now = Date.now();
    if (isTyping) {
      if (this.typingSent && now - this.typingSentAt < this.host.typingThrottleMs) return;
      this.typingSent = true;
      this.typingSentAt = now;
    } else {
      if (!this.typingSent) return;
      this.typingSent = false;
    }
    this.host.send('typing', { channel: this.channel, typing: isTyping }, (err) => {
      if (err && err.code !== ClientErrorCode.DISCONNECTED) this.host.reportError(err);
    });
  }

  /**
   * Stores this user's read position in the channel: `offset` (clamped to the top), or
   * everything when omitted. A position never moves backwards: a lower offset changes nothing.
   * Needs history on the namespace; with `readReceipts: true` subscribers get `onRead`.
   */
  markRead(offset?: number): Promise<ReadState> {
    return requestMarkRead(this.host, this.channel, offset);
  }

  /** This user's read position and unread count in the channel (the same on all their devices). */
  readState(): Promise<ReadState> {
    return requestReadState(this.host, this.channel);
  }

  /** Who has read the channel up to which offset: `{user: offset}`. */
  async readers(): Promise<Record<string, number>> {
    const r = (await this.host.call('readers', { channel: this.channel })) as { readers?: Record<string, number> };
    return r?.readers ?? {};
  }

  /** Ends the subscription (and forgets it in the client). Resolves when the server confirmed, or at once when offline. */
  unsubscribe(): Promise<void> {
    if (this.current === SubscriptionState.Unsubscribed) return Promise.resolve();
    this.end();
    safeCall(this.handlers.onUnsubscribed, { channel: this.channel, code: 0, reason: 'unsubscribe() called' });
    this.rejectWaiters(ClientError.closed(`subscription to ${this.channel} was unsubscribed`));
    if (!this.host.connected) return Promise.resolve();
    // Not subscribed on the server (a refused or pending subscribe) gives 112: fine either way.
    return new Promise((resolve) => this.host.send('unsubscribe', { channel: this.channel }, () => resolve()));
  }

  // ---- driven by the client (internal) -----------------------------------------------------

  /**
   * Whether the server subscribed it (a server-side subscription of the connect reply): it is
   * recovered through `connect`, not by a subscribe command of its own.
   */
  get serverSide(): boolean {
    return this.serverSideFlag;
  }

  private serverSideFlag = false;

  /** @internal The connection is up (first time or again): (re)subscribe. */
  _connected(): void {
    if (this.current !== SubscriptionState.Unsubscribed && !this.serverSideFlag) this.sendSubscribe();
  }

  /** @internal Where a server-side subscription asks the connect command to recover from. */
  _connectSince(): StreamPosition | undefined {
    return this.epoch ? { offset: this.offset, epoch: this.epoch } : undefined;
  }

  /** @internal A connect reply's entry for this server-side channel (a subscribe reply's result). */
  _subscribedByConnect(result: unknown, since: StreamPosition | undefined): void {
    this.serverSideFlag = true;
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.subscribed(result as SubscribeReply, since);
  }

  /** @internal The connection is gone: wait for the next one. */
  _transportLost(): void {
    if (this.current === SubscriptionState.Unsubscribed) return;
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.setState(SubscriptionState.Subscribing);
    this.resetTyping();
  }

  /** @internal The client stopped trying to connect: `ready()` callers learn it now. */
  _clientStopped(reason: string): void {
    this.rejectWaiters(new ClientError(ClientErrorCode.DISCONNECTED, `subscribe ${this.channel}: ${reason}`, { temporary: true }));
  }

  /** @internal A push for this channel. */
  _push(msg: Inbound): void {
    if (this.current === SubscriptionState.Unsubscribed) return;
    switch (msg.push) {
      case 'pub':
        if (this.current !== SubscriptionState.Subscribed) return;
        // The first publication of a stream that did not exist when this subscription got its
        // position names the stream's epoch: adopt it, so a later resubscribe recovers from it.
        if (msg.offset === 1 && this.offset === 0 && typeof msg.epoch === 'string') this.epoch = msg.epoch;
        this.deliver(msg as WirePublication, false);
        return;
      case 'join':
        if (this.current === SubscriptionState.Subscribed) safeCall(this.handlers.onJoin, msg.info as PresenceEntry);
        return;
      case 'leave':
        if (this.current === SubscriptionState.Subscribed) safeCall(this.handlers.onLeave, msg.info as PresenceEntry);
        return;
      case 'typing':
        if (this.current === SubscriptionState.Subscribed && typeof msg.user === 'string') {
          const typing = msg.typing === true;
          if (typing) this.typingUsers.add(msg.user);
          else this.typingUsers.delete(msg.user);
          safeCall(this.handlers.onTyping, { user: msg.user, typing });
        }
        return;
      case 'emit':
        if (this.current === SubscriptionState.Subscribed) {
          safeCall(this.handlers.onEvent, { channel: this.channel, data: msg.data as T, info: msg.info as ClientEvent['info'] });
        }
        return;
      case 'read':
        if (this.current === SubscriptionState.Subscribed && typeof msg.user === 'string' && typeof msg.offset === 'number') {
          safeCall(this.handlers.onRead, { user: msg.user, offset: msg.offset });
        }
        return;
      case 'unsubscribe':
        this.serverUnsubscribed(Number(msg.code), String(msg.reason ?? ''), msg.resubscribe === true);
        return;
    }
  }

  // ---- subscribe and recovery --------------------------------------------------------------

  private sendSubscribe(): void {
    clearTimeout(this.retryTimer);
    const attempt = ++this.attempt;
    // Ask to recover only on channels with history (an epoch); others have nothing to recover.
    const since = this.epoch ? { offset: this.offset, epoch: this.epoch } : undefined;
    this.setState(SubscriptionState.Subscribing);
    const params = since ? { channel: this.channel, since } : { channel: this.channel };
    this.host.send('subscribe', params, (err, result) => {
      if (attempt !== this.attempt || this.current === SubscriptionState.Unsubscribed) return;
      if (err) this.refused(err);
      else this.subscribed(result as SubscribeReply, since);
    });
  }

  private refused(err: ClientError): void {
    if (err.code === ClientErrorCode.DISCONNECTED) return; // resubscribes on the next connection
    if (err.temporary) {
      this.host.reportError(err);
      this.retryTimer = setTimeout(() => {
        if (this.current === SubscriptionState.Subscribing && this.host.connected) this.sendSubscribe();
      }, this.host.retryDelay());
      return;
    }
    this.end();
    safeCall(this.handlers.onError, err);
    this.rejectWaiters(err);
  }

  private subscribed(r: SubscribeReply, since: StreamPosition | undefined): void {
    const position: StreamPosition = {
      offset: typeof r?.position?.offset === 'number' ? r.position.offset : 0,
      epoch: typeof r?.position?.epoch === 'string' ? r.position.epoch : '',
    };
    const resubscribed = this.everSubscribed;
    this.everSubscribed = true;
    this.recoverableFlag = r?.recoverable === true;
    // The server decides: a client that stood at offset 0 of a stream that did not exist yet
    // recovers into the stream created since, under that stream's epoch.
    const recovered = since ? r?.recovered === true : undefined;
    // A latest-value namespace answers with the latest publication per key, not a replay.
    const latest = r?.latest === true;
    const missed = (recovered || latest) && Array.isArray(r.publications) ? r.publications : [];
    this.epoch = position.epoch;
    // Recovered: offsets advance through the missed publications. Otherwise start from the top.
    // A large recovery comes in pages: the reply carries the first one, its position is the
    // offset of the last publication it carries (not the top), and the rest follow as ordinary
    // pushes, contiguous, before live ones: each is above the last delivered, so deliver() takes
    // it. The reply's `top` says up to where the pushes that follow are recovered ones.
    if (!recovered || latest) this.offset = position.offset;
    this.recoveringTo = recovered && typeof r?.top?.offset === 'number' ? r.top.offset : 0;
    this.setState(SubscriptionState.Subscribed);
    if (since && !recovered) safeCall(this.handlers.onRecoveryFailed, { channel: this.channel, since, position });
    const ctx = {
      channel: this.channel,
      position,
      recoverable: this.recoverableFlag,
      resubscribed,
      ...(since ? { recovered: recovered === true } : {}),
      ...(latest ? { latest: true } : {}),
    };
    safeCall(this.handlers.onSubscribed, ctx);
    for (const pub of missed) {
      if (this.current !== SubscriptionState.Subscribed) return;
      if (latest) this.emitPublication(pub, since !== undefined, true);
      else this.deliver(pub, true);
    }
    if (this.current !== SubscriptionState.Subscribed) return;
    if (this.epoch === position.epoch && position.offset > this.offset) this.offset = position.offset;
    this.resolveWaiters();
  }

  /** Delivers one publication unless it was seen already (same epoch, offset not above the last). */
  private deliver(pub: WirePublication, recovered: boolean): void {
    const offset = typeof pub.offset === 'number' ? pub.offset : 0;
    // A later page of a paged recovery is recovered too, though it comes as pushes.
    if (!recovered && offset > 0 && offset <= this.recoveringTo) recovered = true;
    if (offset > 0 && this.epoch) {
      if (offset <= this.offset) return;
      this.offset = offset;
    }
    this.emitPublication(pub, recovered, false);
  }

  private emitPublication(pub: WirePublication, recovered: boolean, latest: boolean): void {
    const offset = typeof pub.offset === 'number' ? pub.offset : 0;
    const out: { channel: string; offset: number; data: T; recovered: boolean; info?: PublisherInfo; latest?: boolean } = {
      channel: this.channel,
      offset,
      data: pub.data as T,
      recovered,
    };
    if (pub.info !== undefined) out.info = pub.info;
    if (latest) out.latest = true;
    safeCall(this.handlers.onPublication, out);
  }

  private serverUnsubscribed(code: number, reason: string, resubscribe: boolean): void {
    if (resubscribe || code === UnsubscribeCode.INSUFFICIENT_STATE) {
      // The server dropped the subscription because it could not keep the stream exact:
      // subscribe again at once, recovering from the last position.
      this.attempt += 1;
      this.setState(SubscriptionState.Subscribing);
      this.resetTyping();
      if (this.host.connected) this.sendSubscribe();
      return;
    }
    this.end();
    safeCall(this.handlers.onUnsubscribed, { channel: this.channel, code, reason });
    this.rejectWaiters(ClientError.closed(`subscription to ${this.channel} was ended by the server (${code}: ${reason})`));
  }

  private end(): void {
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.setState(SubscriptionState.Unsubscribed);
    this.host.removeSubscription(this as Subscription);
    this.resetTyping();
  }

  /**
   * The server forgets this user's typing when the subscription or connection goes, and this
   * client can no longer hear others stop: clear the indicators it showed.
   */
  private resetTyping(): void {
    this.typingSent = false;
    const users = [...this.typingUsers];
    this.typingUsers.clear();
    for (const user of users) safeCall(this.handlers.onTyping, { user, typing: false });
  }

  private setState(state: SubscriptionStateValue): void {
    const previous = this.current;
    if (previous === state) return;
    this.current = state;
    safeCall(this.handlers.onStateChange, state, previous);
  }

  private resolveWaiters(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.resolve();
    }
  }

  private rejectWaiters(err: ClientError): void {
    if (this.current === SubscriptionState.Unsubscribed) this.endError = err;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}

interface SubscribeReply {
  position?: StreamPosition;
  recoverable?: boolean;
  recovered?: boolean;
  publications?: WirePublication[];
  /** With a paged recovery: the stream top it recovers up to. */
  top?: StreamPosition;
  /** Latest-value namespaces: `publications` are the latest per key. */
  latest?: boolean;
}
