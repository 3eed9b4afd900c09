import { encodeUserId } from './user-channel.js';
import { ClientErrorCode, DEFAULTS, SubscriptionState } from './constants.js';
import { safeCall } from './emitter.js';
import { ClientError } from './errors.js';
import type { Subscription } from './subscription.js';
import type { SettableStatus, StatusEvent, StatusRecord, SubscriptionHandlers, UserStatus } from './types.js';

const SETTABLE: ReadonlySet<string> = new Set<SettableStatus>(['online', 'away', 'busy']);
const STATUSES: ReadonlySet<string> = new Set<UserStatus>(['online', 'away', 'busy', 'offline']);

/** What the status calls need from their client. */
export interface StatusHost {
  call(method: string, params: unknown, timeoutMs?: number): Promise<unknown>;
  subscribe<T>(channel: string, handlers: SubscriptionHandlers<T>): Subscription<T>;
  reportError(err: ClientError): void;
}

/** The `setStatus` command. */
export async function requestSetStatus(host: Pick<StatusHost, 'call'>, status: SettableStatus): Promise<StatusRecord> {
  if (typeof status !== 'string' || !SETTABLE.has(status)) throw badArgument("setStatus: status must be 'online', 'away' or 'busy'");
  return toRecord(await host.call('setStatus', { status }));
}

/** The `statuses` command. */
export async function requestStatuses(host: Pick<StatusHost, 'call'>, users: readonly string[]): Promise<Record<string, StatusRecord>> {
  if (!Array.isArray(users) || users.length === 0 || users.length > DEFAULTS.maxStatusUsers) {
    throw badArgument(`statuses: expected an array of 1 to ${DEFAULTS.maxStatusUsers} user ids`);
  }
  for (const u of users) if (typeof u !== 'string' || u === '') throw badArgument('statuses: user ids must be non-empty strings');
  const r = (await host.call('statuses', { users: [...users] })) as { users?: Record<string, unknown> };
  const out: Record<string, StatusRecord> = {};
  for (const user of users) out[user] = toRecord(r?.users?.[user]);
  return out;
}

interface Watch {
  sub: Subscription<StatusEvent>;
  listeners: Set<(event: StatusEvent) => void>;
  /** The last status delivered. */
  last: StatusEvent | undefined;
  /** Live changes received: a snapshot read that crossed one is older and is dropped. */
  changes: number;
}

/**
 * `watchStatus`: one subscription to `status:<user>` per watched user, shared by its callbacks.
 * The channel keeps no history, so each (re)subscribe reads the current status first
 * (`statuses`); live changes follow.
 */
export class StatusWatches {
  private readonly watches = new Map<string, Watch>();

  constructor(private readonly host: StatusHost) {}

  watch(user: string, callback: (event: StatusEvent) => void): () => void {
    if (typeof user !== 'string' || user === '') throw badArgument('watchStatus: user must be a non-empty string');
    if (typeof callback !== 'function') throw badArgument('watchStatus: expected a callback');
    let watch = this.watches.get(user);
    if (watch && watch.sub.state === SubscriptionState.Unsubscribed) {
      // Ended (refused, or by the server): start over.
      this.watches.delete(user);
      watch = undefined;
    }
    if (watch) {
      const existing = watch;
      const last = existing.last;
      if (last) queueMicrotask(() => (existing.listeners.has(callback) ? safeCall(callback, last) : undefined));
    } else {
      // The handlers run only once replies and pushes arrive, after `w` is assigned.
      const w: Watch = {
        listeners: new Set(),
        last: undefined,
        changes: 0,
        sub: this.host.subscribe<StatusEvent>(`status:${encodeUserId(user)}`, {
          onPublication: (pub) => {
            const event = toEvent(user, pub.data);
            if (!event) return;
            w.changes += 1;
            this.deliver(w, event);
          },
          onSubscribed: () => this.snapshot(user, w),
          onError: (err) => this.host.reportError(err),
        }),
      };
      this.watches.set(user, w);
      watch = w;
    }
    watch.listeners.add(callback);
    const current = watch;
    return () => {
      if (!current.listeners.delete(callback) || current.listeners.size > 0) return;
      if (this.watches.get(user) === current) this.watches.delete(user);
      void current.sub.unsubscribe();
    };
  }

  private snapshot(user: string, w: Watch): void {
    const changes = w.changes;
    requestStatuses(this.host, [user]).then(
      (records) => {
        if (w.changes !== changes || this.watches.get(user) !== w) return; // a live change is newer
        this.deliver(w, { user, ...records[user]! });
      },
      (err: ClientError) => {
        if (err.code !== ClientErrorCode.DISCONNECTED) this.host.reportError(err);
      },
    );
  }

  private deliver(w: Watch, event: StatusEvent): void {
    if (w.last && w.last.status === event.status && w.last.lastSeen === event.lastSeen) return;
    w.last = event;
    for (const listener of [...w.listeners]) safeCall(listener, event);
  }
}

function toRecord(value: unknown): StatusRecord {
  const r = (value ?? {}) as { status?: unknown; lastSeen?: unknown };
  const status = typeof r.status === 'string' && STATUSES.has(r.status) ? (r.status as UserStatus) : 'offline';
  return { status, lastSeen: typeof r.lastSeen === 'number' ? r.lastSeen : 0 };
}

function toEvent(user: string, data: unknown): StatusEvent | undefined {
  const d = data as { status?: unknown } | null;
  if (!d || typeof d.status !== 'string' || !STATUSES.has(d.status)) return undefined;
  return { user, ...toRecord(d) };
}

function badArgument(message: string): ClientError {
  return new ClientError(ClientErrorCode.BAD_ARGUMENT, message);
}
