import { ClientErrorCode, DEFAULTS, SubscriptionState } from './constants.js';
import { Emitter, safeCall } from './emitter.js';
import { ClientError } from './errors.js';
import { requestHistory, requestMarkRead, requestReadState, type Subscription } from './subscription.js';
import { notificationsChannel } from './user-channel.js';
import type {
  HistoryResult,
  NotificationEvent,
  NotificationItem,
  NotificationListOptions,
  NotificationPage,
  ReadState,
  SubscriptionHandlers,
} from './types.js';

/** What `Notifications` needs from its client. */
export interface NotificationsHost {
  readonly connected: boolean;
  call(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  subscribe<T>(channel: string, handlers: SubscriptionHandlers<T>): Subscription<T>;
  reportError(err: ClientError): void;
}

interface Counts {
  lastRead: number;
  top: number;
  epoch: string;
}

/**
 * The connected user's notifications: the channel `notifications:#<user>` (history kept by the
 * server), its unread count, newest-first paging, and mark-read. Get it with
 * `client.notifications` once connected.
 *
 * Counts: read positions are stored per user on the server, so every device sees the same
 * ones. This object keeps the last count it knows, moves it when a notification arrives or this
 * client marks something read (`onUnreadChange`), and reads it again after every (re)connect —
 * which is when marks made on other devices show up.
 */
export class Notifications {
  /** `notifications:#<user>`, the user id encoded (`notifications:#auth0~7Cabc` for `auth0|abc`). */
  readonly channel: string;
  private sub: Subscription | undefined;
  private readonly emitter = new Emitter<{ unread: [number] }>();
  private counts: Counts | undefined;
  private lastReported: number | undefined;
  /** Epoch of the stream as last seen, for `list({before})`. */
  private epoch: string | undefined;
  private closed = false;

  constructor(
    private readonly host: NotificationsHost,
    /** The user these notifications belong to. */
    readonly user: string,
  ) {
    this.channel = notificationsChannel(user);
  }

  /** The last unread count known (undefined until it was read once). */
  get unread(): number | undefined {
    return this.counts ? Math.max(0, this.counts.top - this.counts.lastRead) : undefined;
  }

  /**
   * Receives notifications live (missed ones are recovered after a reconnect, in order, with
   * `recovered: true`). Returns the subscription (`ready()`, `unsubscribe()`). Throws
   * ALREADY_SUBSCRIBED if notifications are subscribed already.
   */
  subscribe<T = unknown>(onNotification: (notification: NotificationEvent<T>) => void): Subscription<T> {
    if (typeof onNotification !== 'function') throw badArgument('notifications.subscribe: expected a callback');
    this.checkOpen('subscribe');
    if (this.sub && this.sub.state !== SubscriptionState.Unsubscribed) {
      throw new ClientError(ClientErrorCode.ALREADY_SUBSCRIBED, `notifications.subscribe: already subscribed to ${this.channel}`);
    }
    const sub: Subscription<T> = this.host.subscribe<T>(this.channel, {
      onPublication: (pub) => {
        safeCall(onNotification, { offset: pub.offset, data: pub.data, recovered: pub.recovered });
        this.arrived(pub.offset, sub.position?.epoch);
      },
      onSubscribed: (ctx) => {
        this.epoch = ctx.position.epoch;
        this.raiseTop(ctx.position.offset, ctx.position.epoch);
      },
      onRecoveryFailed: () => this.refresh(),
      onError: (err) => this.host.reportError(err),
    });
    this.sub = sub as Subscription;
    if (this.host.connected) this.refresh();
    return sub;
  }

  /** Reads the unread count from the server (`top − lastRead`, the same on every device). */
  async unreadCount(): Promise<number> {
    this.checkOpen('unreadCount');
    const state = await requestReadState(this.host, this.channel);
    this.merge(state);
    return this.unread ?? state.unread;
  }

  /**
   * A page of notifications, newest first: the latest `limit` (default 20), or the `limit`
   * before `before` (the previous page's `next`). `next` is absent on the last page. Needs the
   * stream's epoch for `before` (kept from the last call or read); a `before` from a stream that
   * was reset since rejects with 107 — start again from the first page.
   */
  async list<T = unknown>(options: NotificationListOptions = {}): Promise<NotificationPage<T>> {
    this.checkOpen('list');
    const limit = options.limit ?? DEFAULTS.notificationsPageSize;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > DEFAULTS.notificationsMaxPageSize) {
      throw badArgument(`notifications.list: limit must be an integer from 1 to ${DEFAULTS.notificationsMaxPageSize}`);
    }
    const before = options.before;
    if (before !== undefined && (!Number.isSafeInteger(before) || before < 1)) {
      throw badArgument('notifications.list: before must be a positive integer');
    }
    let result: HistoryResult<T>;
    if (before === undefined) {
      result = await requestHistory<T>(this.host, this.channel, { limit });
    } else {
      const epoch = this.epoch ?? (await requestReadState(this.host, this.channel)).epoch;
      if (before <= 1) return { items: [], epoch };
      result = await requestHistory<T>(this.host, this.channel, { limit, since: { offset: Math.max(0, before - 1 - limit), epoch } });
    }
    // A history reply holds at most one page of bytes: read on from the last offset until the
    // window (the latest `limit` before `before`) is complete, so no notification is skipped.
    const end = Math.min(before === undefined ? Number.MAX_SAFE_INTEGER : before - 1, result.position.offset);
    const pubs = [...result.publications];
    while (pubs.length > 0 && pubs.length < limit && pubs[pubs.length - 1]!.offset < end) {
      const last = pubs[pubs.length - 1]!.offset;
      const more = await requestHistory<T>(this.host, this.channel, {
        limit: Math.min(limit - pubs.length, end - last),
        since: { offset: last, epoch: result.position.epoch },
      });
      if (more.publications.length === 0 || more.position.epoch !== result.position.epoch) break;
      pubs.push(...more.publications);
    }
    this.epoch = result.position.epoch;
    const items: Array<NotificationItem<T>> = pubs
      .filter((p) => p.offset <= end)
      .map((p) => ({ offset: p.offset, data: p.data }))
      .reverse();
    const oldest = items.length > 0 ? items[items.length - 1]!.offset : 0;
    const page: NotificationPage<T> = { items, epoch: result.position.epoch };
    if (oldest > 1) page.next = oldest;
    return page;
  }

  /** Marks every notification up to `offset` read (never backwards); resolves with the new state. */
  async markRead(offset: number): Promise<ReadState> {
    this.checkOpen('markRead');
    if (!Number.isSafeInteger(offset) || offset < 0) throw badArgument('notifications.markRead: offset must be a non-negative integer');
    const state = await requestMarkRead(this.host, this.channel, offset);
    this.merge(state);
    return state;
  }

  /** Marks everything read (up to the stream top on the server). */
  async markAllRead(): Promise<ReadState> {
    this.checkOpen('markAllRead');
    const state = await requestMarkRead(this.host, this.channel, undefined);
    this.merge(state);
    return state;
  }

  /**
   * Calls `listener(count)` with the count when known (at once, if it is), then whenever the
   * unread count this client knows changes: a notification arrived (with `subscribe`), this
   * client marked read or read the count, or the re-read after a (re)connect found a new count
   * (marks from other devices). Registering starts those re-reads. Returns a function that
   * removes the listener.
   */
  onUnreadChange(listener: (count: number) => void): () => void {
    if (typeof listener !== 'function') throw badArgument('notifications.onUnreadChange: expected a callback');
    this.checkOpen('onUnreadChange');
    let on = true;
    const off = this.emitter.on('unread', listener);
    const known = this.unread;
    if (known !== undefined) queueMicrotask(() => (on ? safeCall(listener, known) : undefined));
    else if (this.host.connected) this.refresh();
    return () => {
      on = false;
      off();
    };
  }

  // ---- driven by the client (internal) -----------------------------------------------------

  /** @internal Connected (again): counts may have moved meanwhile (other devices, new notifications). */
  _connected(): void {
    if (this.closed) return;
    if (this.emitter.listenerCount('unread') > 0 || (this.sub && this.sub.state !== SubscriptionState.Unsubscribed)) this.refresh();
  }

  /** @internal The client now connects as another user: this object is done. */
  _close(): void {
    this.closed = true;
    void this.sub?.unsubscribe();
  }

  // ---- counts ------------------------------------------------------------------------------

  private refresh(): void {
    requestReadState(this.host, this.channel).then(
      (state) => this.merge(state),
      (err: ClientError) => {
        // A dropped connection re-reads on the next connect.
        if (err.code !== ClientErrorCode.DISCONNECTED) this.host.reportError(err);
      },
    );
  }

  /**
   * Takes in a read state from the server. Positions never move backwards within an epoch, so
   * the highest of each wins whatever order replies and pushes come in.
   */
  private merge(state: ReadState): void {
    if (this.closed) return;
    this.epoch = state.epoch;
    if (!this.counts || this.counts.epoch !== state.epoch) {
      this.counts = { lastRead: state.lastRead, top: state.top, epoch: state.epoch };
    } else {
      this.counts.lastRead = Math.max(this.counts.lastRead, state.lastRead);
      this.counts.top = Math.max(this.counts.top, state.top);
    }
    this.report();
  }

  /** A notification arrived at `offset`. */
  private arrived(offset: number, epoch: string | undefined): void {
    if (this.counts && epoch !== undefined && this.counts.epoch === epoch) this.raiseTop(offset, epoch);
    else this.refresh();
  }

  private raiseTop(top: number, epoch: string): void {
    if (!this.counts || this.counts.epoch !== epoch || top <= this.counts.top) return;
    this.counts.top = top;
    this.report();
  }

  private report(): void {
    const count = this.unread;
    if (count === undefined || count === this.lastReported) return;
    this.lastReported = count;
    this.emitter.emit('unread', count);
  }

  private checkOpen(what: string): void {
    if (this.closed)
      throw ClientError.closed(`notifications.${what}: these notifications are of ${this.user}, no longer the connected user`);
  }
}

function badArgument(message: string): ClientError {
  return new ClientError(ClientErrorCode.BAD_ARGUMENT, message);
}
