/**
 * Fault-injecting doubles of the three storage seams a hub is built on: `Broker`,
 * `PresenceStore` and `Store`. Each wraps a real implementation (by default the in-memory one
 * `createHub` would build with `dataDir: null`) and forwards every call to it, unless a fault
 * was set for that method:
 *
 * - `throw`: the call rejects (or, for a delivery, throws) with the given error (default a
 *   plain `Error`), without reaching the real implementation;
 * - `hang`: the call never settles until `release()` (which runs it for real, or rejects it);
 * - `delay`: the call waits N ms, then runs for real;
 * - `drop`: the call resolves without doing the work (a neutral result, or the one given); for
 *   the broker's deliveries (`onPublication`, `onEvent`, `onControl`: what the broker hands
 *   back to the node) the publication, event or command is swallowed.
 *
 * Faults are set and cleared at run time through each double's `faults`:
 *
 * ```ts
 * const broker = new FaultyBroker();
 * const server = await createTestServer({ broker });
 * broker.faults.throw('publish', new HubError(114), { match: (channel) => channel === 'chat:a', times: 1 });
 * broker.faults.hang('subscribe');
 * broker.faults.clear('subscribe');   // later calls run normally again…
 * broker.faults.release();            // …and the hung ones go on (or `release(err)` rejects them)
 * ```
 *
 * `'*'` names every method of the double except `close` (so a test can still shut the hub
 * down). Call `faults.reset()` (clear everything and let hung calls go on) before closing the
 * server, or `hub.close()` may wait for a hung call.
 */
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, PublishOptions, PublishResult } from '../../src/broker/broker.js';
import { isLossy } from '../../src/broker/broker.js';
import { MemoryBroker } from '../../src/broker/memory.js';
import { MemoryIdempotencyLog } from '../../src/history/idempotency-log.js';
import { MemoryHistoryLog } from '../../src/history/memory-log.js';
import { MemoryPresenceStore } from '../../src/presence/memory.js';
import type { PresenceEntry, PresenceStore } from '../../src/presence/presence-store.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { StatusRecord, Store } from '../../src/store/store.js';
import type {
  ChannelEvent,
  ClientInfo,
  HistoryOptions,
  HistoryQuery,
  HistoryResult,
  Publication,
  StreamPosition,
} from '../../src/stream/types.js';

/** What a faulty method does instead of (or before) its real work. */
export type Fault =
  { kind: 'throw'; error?: unknown } | { kind: 'hang' } | { kind: 'delay'; ms: number } | { kind: 'drop'; value?: unknown };

export interface FaultOptions {
  /** Only calls whose arguments satisfy this are faulty; the others run normally. */
  match?: (...args: any[]) => boolean;
  /** The fault applies to this many (matching) calls, then clears itself. */
  times?: number;
}

interface ActiveFault {
  fault: Fault;
  match: ((...args: any[]) => boolean) | undefined;
  remaining: number;
}

interface HungCall {
  method: string;
  proceed(): void;
  fail(err: unknown): void;
}

/** Thrown by a `throw` fault set without an error of its own. */
export class InjectedFault extends Error {
  constructor(readonly method: string) {
    super(`injected fault in ${method}`);
    this.name = 'InjectedFault';
  }
}

/**
 * The faults of one double, by method name, and the bookkeeping tests synchronise on: how many
 * calls of each method started and settled (`calls`, `settled`, `waitForCalls`,
 * `waitForSettled`), and which are hung.
 */
export class Faults<M extends string> {
  private readonly active = new Map<M, ActiveFault[]>();
  private readonly hung: HungCall[] = [];
  private readonly started = new Map<M, number>();
  private readonly done = new Map<M, number>();
  private readonly waiters = new Set<() => void>();

  constructor(
    /** Every method name this double can fault. */
    readonly methods: readonly M[],
    /** Methods `'*'` leaves alone. */
    private readonly exceptFromAll: readonly M[] = [],
  ) {}

  /** Sets `fault` on `method` (a name, several, or `'*'`); replaces the fault already there. */
  set(method: M | readonly M[] | '*', fault: Fault, options: FaultOptions = {}): this {
    for (const m of this.expand(method)) {
      this.active.set(m, [{ fault, match: options.match, remaining: options.times ?? Infinity }]);
    }
    return this;
  }

  /** Adds `fault` on `method` after the ones already set (the first matching one applies). */
  add(method: M | readonly M[] | '*', fault: Fault, options: FaultOptions = {}): this {
    for (const m of this.expand(method)) {
      const list = this.active.get(m) ?? [];
      list.push({ fault, match: options.match, remaining: options.times ?? Infinity });
      this.active.set(m, list);
    }
    return this;
  }

  throw(method: M | readonly M[] | '*', error?: unknown, options?: FaultOptions): this {
    return this.set(method, error === undefined ? { kind: 'throw' } : { kind: 'throw', error }, options);
  }

  hang(method: M | readonly M[] | '*', options?: FaultOptions): this {
    return this.set(method, { kind: 'hang' }, options);
  }

  delay(method: M | readonly M[] | '*', ms: number, options?: FaultOptions): this {
    return this.set(method, { kind: 'delay', ms }, options);
  }

  /** Resolves without the real work: with `value` when given, else a neutral result. */
  drop(method: M | readonly M[] | '*', options: FaultOptions & { value?: unknown } = {}): this {
    const fault: Fault = 'value' in options ? { kind: 'drop', value: options.value } : { kind: 'drop' };
    return this.set(method, fault, options);
  }

  /** Removes the faults of `method` (default: every method). Hung calls stay hung: see `release`. */
  clear(method: M | readonly M[] | '*' = '*'): this {
    if (method === '*') this.active.clear();
    else for (const m of this.expand(method)) this.active.delete(m);
    return this;
  }

  /**
   * Settles hung calls (of `method`, default all): they run for real now, or, given `error`,
   * reject with it (a hung delivery is then discarded). Returns how many were released.
   */
  release(method: M | '*' = '*', ...error: [] | [unknown]): number {
    const out = this.hung.filter((h) => method === '*' || h.method === method);
    for (const h of out) this.hung.splice(this.hung.indexOf(h), 1);
    for (const h of out) {
      if (error.length) h.fail(error[0]);
      else h.proceed();
    }
    return out.length;
  }

  /** Clears every fault and lets every hung call go on. Call it before closing the hub. */
  reset(): void {
    this.clear();
    this.release();
  }

  /** Calls of `method` started so far (faulty or not). */
  calls(method: M): number {
    return this.started.get(method) ?? 0;
  }

  /** Calls of `method` that settled so far (resolved, rejected, delivered or dropped). */
  settled(method: M): number {
    return this.done.get(method) ?? 0;
  }

  /** Calls hung right now (of `method`, default all). */
  hanging(method: M | '*' = '*'): number {
    return this.hung.filter((h) => method === '*' || h.method === method).length;
  }

  /** Resolves once `calls(method) >= n`. */
  waitForCalls(method: M, n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.calls(method) >= n, `${n} calls of ${method} (got ${this.calls(method)})`, timeoutMs);
  }

  /** Resolves once `settled(method) >= n`. */
  waitForSettled(method: M, n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.settled(method) >= n, `${n} settled calls of ${method} (got ${this.settled(method)})`, timeoutMs);
  }

  /** Runs an async method through its fault, if any. `neutral` is what a drop resolves with. */
  async run<T>(method: M, args: unknown[], real: () => Promise<T>, neutral: () => T): Promise<T> {
    this.bump(this.started, method);
    try {
      const fault = this.take(method, args);
      if (!fault) return await real();
      switch (fault.kind) {
        case 'throw':
          throw fault.error ?? new InjectedFault(method);
        case 'drop':
          return 'value' in fault ? (fault.value as T) : neutral();
        case 'delay':
          await new Promise((r) => setTimeout(r, fault.ms));
          return await real();
        case 'hang':
          return await new Promise<T>((resolve, reject) => {
            this.hung.push({ method, proceed: () => void real().then(resolve, reject), fail: reject });
            this.notify();
          });
      }
    } finally {
      this.bump(this.done, method);
    }
  }

  /** Runs a synchronous delivery through its fault: throw, hold until released, delay or swallow. */
  deliver(method: M, args: unknown[], real: () => void): void {
    this.bump(this.started, method);
    const fault = this.take(method, args);
    if (!fault) {
      try {
        real();
      } finally {
        this.bump(this.done, method);
      }
      return;
    }
    switch (fault.kind) {
      case 'throw':
        this.bump(this.done, method);
        throw fault.error ?? new InjectedFault(method);
      case 'drop':
        this.bump(this.done, method);
        return;
      case 'delay':
        setTimeout(() => {
          try {
            real();
          } finally {
            this.bump(this.done, method);
          }
        }, fault.ms);
        return;
      case 'hang':
        this.hung.push({
          method,
          proceed: () => {
            try {
              real();
            } finally {
              this.bump(this.done, method);
            }
          },
          fail: () => this.bump(this.done, method),
        });
        this.notify();
        return;
    }
  }

  private take(method: M, args: unknown[]): Fault | undefined {
    const list = this.active.get(method);
    if (!list) return undefined;
    const i = list.findIndex((f) => f.match === undefined || f.match(...args));
    if (i === -1) return undefined;
    const f = list[i]!;
    f.remaining -= 1;
    if (f.remaining <= 0) {
      list.splice(i, 1);
      if (list.length === 0) this.active.delete(method);
    }
    return f.fault;
  }

  private expand(method: M | readonly M[] | '*'): readonly M[] {
    if (method === '*') return this.methods.filter((m) => !this.exceptFromAll.includes(m));
    if (typeof method === 'string') {
      if (!this.methods.includes(method)) throw new Error(`no such method to fault: ${method}`);
      return [method];
    }
    for (const m of method) if (!this.methods.includes(m)) throw new Error(`no such method to fault: ${m}`);
    return method;
  }

  private bump(counts: Map<M, number>, method: M): void {
    counts.set(method, (counts.get(method) ?? 0) + 1);
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private waitUntil(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what.replace(/\(got \d+\)/, '')}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

// ---- Broker ------------------------------------------------------------------------------

export const BROKER_METHODS = [
  'publish',
  'publishEvent',
  'publishControl',
  'subscribe',
  'unsubscribe',
  'history',
  'healthy',
  'close',
  // What the broker hands back to its node (the BrokerEventHandler calls):
  'onPublication',
  'onEvent',
  'onControl',
] as const;
export type BrokerMethod = (typeof BROKER_METHODS)[number];

/** The broker `createHub` builds with `dataDir: null`: MemoryBroker over memory logs. */
export function memoryBroker(): MemoryBroker {
  return new MemoryBroker({ history: new MemoryHistoryLog(), idempotency: new MemoryIdempotencyLog() });
}

/**
 * A Broker that forwards to `inner` (default: `memoryBroker()`) through faults. Deliveries to
 * the node go through the faults `onPublication`, `onEvent` and `onControl`.
 */
export class FaultyBroker implements Broker, HealthChecker {
  readonly faults = new Faults<BrokerMethod>(BROKER_METHODS, ['close']);

  constructor(readonly inner: Broker = memoryBroker()) {
    // Keep the inner broker's optional ability (the node checks it with isLossy).
    if (isLossy(inner)) Object.defineProperty(this, 'lossyDelivery', { value: true, enumerable: true });
  }

  setHandler(handler: BrokerEventHandler): void {
    const f = this.faults;
    this.inner.setHandler({
      onPublication: (channel: string, pub: Publication, epoch: string) =>
        f.deliver('onPublication', [channel, pub, epoch], () => handler.onPublication(channel, pub, epoch)),
      onEvent: (channel: string, event: ChannelEvent) => f.deliver('onEvent', [channel, event], () => handler.onEvent(channel, event)),
      onControl: (command: ControlCommand) => f.deliver('onControl', [command], () => handler.onControl(command)),
    });
  }

  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    return this.faults.run(
      'publish',
      [channel, data, options],
      () => this.inner.publish(channel, data, options),
      () => ({ offset: 0, epoch: '', duplicate: false }),
    );
  }

  publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    return this.faults.run(
      'publishEvent',
      [channel, event],
      () => this.inner.publishEvent(channel, event),
      () => undefined,
    );
  }

  publishControl(command: ControlCommand): Promise<void> {
    return this.faults.run(
      'publishControl',
      [command],
      () => this.inner.publishControl(command),
      () => undefined,
    );
  }

  subscribe(channel: string): Promise<void> {
    return this.faults.run(
      'subscribe',
      [channel],
      () => this.inner.subscribe(channel),
      () => undefined,
    );
  }

  unsubscribe(channel: string): Promise<void> {
    return this.faults.run(
      'unsubscribe',
      [channel],
      () => this.inner.unsubscribe(channel),
      () => undefined,
    );
  }

  history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    return this.faults.run(
      'history',
      [channel, query, options],
      () => this.inner.history(channel, query, options),
      () => ({ position: { offset: 0, epoch: '' }, publications: [], earliest: 1 }),
    );
  }

  healthy(): Promise<boolean> {
    const checker = this.inner as Partial<HealthChecker>;
    return this.faults.run(
      'healthy',
      [],
      async () => (typeof checker.healthy === 'function' ? checker.healthy() : true),
      () => false,
    );
  }

  close(): Promise<void> {
    return this.faults.run(
      'close',
      [],
      () => this.inner.close(),
      () => undefined,
    );
  }
}

// ---- PresenceStore -----------------------------------------------------------------------

export const PRESENCE_METHODS = ['add', 'remove', 'get', 'connectUser', 'disconnectUser', 'onlineUsers', 'close'] as const;
export type PresenceMethod = (typeof PRESENCE_METHODS)[number];

/** A PresenceStore that forwards to `inner` (default: MemoryPresenceStore) through faults. */
export class FaultyPresenceStore implements PresenceStore {
  readonly faults = new Faults<PresenceMethod>(PRESENCE_METHODS, ['close']);

  constructor(readonly inner: PresenceStore = new MemoryPresenceStore()) {}

  add(channel: string, entry: PresenceEntry): Promise<{ userJoined: boolean }> {
    return this.faults.run(
      'add',
      [channel, entry],
      () => this.inner.add(channel, entry),
      () => ({ userJoined: false }),
    );
  }

  remove(channel: string, entry: ClientInfo): Promise<{ userLeft: boolean }> {
    return this.faults.run(
      'remove',
      [channel, entry],
      () => this.inner.remove(channel, entry),
      () => ({ userLeft: false }),
    );
  }

  get(channel: string): Promise<Record<string, PresenceEntry>> {
    return this.faults.run(
      'get',
      [channel],
      () => this.inner.get(channel),
      () => ({}),
    );
  }

  connectUser(user: string, client: string): Promise<{ first: boolean }> {
    return this.faults.run(
      'connectUser',
      [user, client],
      () => this.inner.connectUser(user, client),
      () => ({ first: false }),
    );
  }

  disconnectUser(user: string, client: string): Promise<{ last: boolean }> {
    return this.faults.run(
      'disconnectUser',
      [user, client],
      () => this.inner.disconnectUser(user, client),
      () => ({ last: false }),
    );
  }

  onlineUsers(users: readonly string[]): Promise<Set<string>> {
    return this.faults.run(
      'onlineUsers',
      [users],
      () => this.inner.onlineUsers(users),
      () => new Set<string>(),
    );
  }

  close(): Promise<void> {
    return this.faults.run(
      'close',
      [],
      () => this.inner.close(),
      () => undefined,
    );
  }
}

// ---- Store -------------------------------------------------------------------------------

export const STORE_METHODS = ['markRead', 'lastRead', 'readers', 'setStatus', 'statuses', 'close'] as const;
export type StoreMethod = (typeof STORE_METHODS)[number];

/** A Store that forwards to `inner` (default: MemoryStore) through faults. */
export class FaultyStore implements Store {
  readonly faults = new Faults<StoreMethod>(STORE_METHODS, ['close']);

  constructor(readonly inner: Store = new MemoryStore()) {}

  markRead(user: string, channel: string, position: StreamPosition): Promise<StreamPosition> {
    return this.faults.run(
      'markRead',
      [user, channel, position],
      () => this.inner.markRead(user, channel, position),
      () => ({ ...position }),
    );
  }

  lastRead(user: string, channel: string): Promise<StreamPosition | undefined> {
    return this.faults.run(
      'lastRead',
      [user, channel],
      () => this.inner.lastRead(user, channel),
      () => undefined,
    );
  }

  readers(channel: string): Promise<Record<string, StreamPosition>> {
    return this.faults.run(
      'readers',
      [channel],
      () => this.inner.readers(channel),
      () => ({}),
    );
  }

  setStatus(user: string, record: StatusRecord): Promise<void> {
    return this.faults.run(
      'setStatus',
      [user, record],
      () => this.inner.setStatus(user, record),
      () => undefined,
    );
  }

  statuses(users: readonly string[]): Promise<Record<string, StatusRecord>> {
    return this.faults.run(
      'statuses',
      [users],
      () => this.inner.statuses(users),
      () => Object.fromEntries(users.map((u) => [u, { status: 'offline', lastSeen: 0 } satisfies StatusRecord])),
    );
  }

  close(): Promise<void> {
    return this.faults.run(
      'close',
      [],
      () => this.inner.close(),
      () => undefined,
    );
  }
}

// ---- all three ---------------------------------------------------------------------------

export interface FaultyBackends {
  broker: FaultyBroker;
  presence: FaultyPresenceStore;
  store: FaultyStore;
  /** The three, as hub options: `createTestServer({ ...backends.options, ... })`. */
  options: { broker: FaultyBroker; presence: FaultyPresenceStore; store: FaultyStore };
  /** Clears every fault of the three and lets hung calls go on (call before closing the hub). */
  reset(): void;
}

/** The three doubles over fresh in-memory implementations. */
export function faultyBackends(): FaultyBackends {
  const broker = new FaultyBroker();
  const presence = new FaultyPresenceStore();
  const store = new FaultyStore();
  return {
    broker,
    presence,
    store,
    options: { broker, presence, store },
    reset() {
      broker.faults.reset();
      presence.faults.reset();
      store.faults.reset();
    },
  };
}
