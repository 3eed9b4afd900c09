/**
 * The fault switch shared by the fault-injecting doubles of the three storage seams a hub is
 * built on (test/support/faulty-broker.ts, faulty-presence.ts, faulty-store.ts; all three at
 * once with `faultyBackends()` from test/support/faults.ts). Each double wraps a real
 * implementation (by default the in-memory one `createHub` would build with `dataDir: null`)
 * and forwards every call to it, unless a fault was set for that method:
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
