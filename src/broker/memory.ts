import { HubError } from '../protocol/errors.js';
import type { HistoryLog } from '../history/history-log.js';
import type { IdempotencyLog } from '../history/idempotency-log.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, OrderedPublishes, PublishOptions, PublishResult } from './broker.js';
import type { HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent, Publication } from '../stream/types.js';

export interface MemoryBrokerOptions {
  history: HistoryLog;
  idempotency: IdempotencyLog;
  /** Runs `fn` atomically against durable storage (a SQLite transaction); default: just runs it. */
  atomically?: <T>(fn: () => T) => T;
  /**
   * Publications of one event-loop turn are written together, in one `atomically` call (one
   * SQLite transaction), then delivered and acknowledged — never before the commit. Default
   * false: each publish is written at once.
   */
  batchWrites?: boolean;
  /** How often expired history and idempotency keys are swept, in milliseconds. */
  sweepIntervalMs?: number;
  now?: () => number;
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 120_000;

interface PendingPublish {
  channel: string;
  data: string;
  options: PublishOptions;
  resolve(result: PublishResult): void;
  reject(err: unknown): void;
}

/**
 * The single-node broker: publications go straight to this process's handler. History lives in
 * the given HistoryLog (memory, or SQLite so it survives a restart). Every call runs
 * synchronously inside, so publish is trivially atomic per channel.
 */
export class MemoryBroker implements Broker, HealthChecker, OrderedPublishes {
  /** Each publish is written in call order (at once, or queued for the turn's batch in order). */
  readonly keepsCallOrder = true as const;
  private handler: BrokerEventHandler | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly atomically: <T>(fn: () => T) => T;
  private closed = false;
  /** The publications of this turn, written at its end (batchWrites). */
  private batch: PendingPublish[] | undefined;

  constructor(private readonly options: MemoryBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.atomically = options.atomically ?? ((fn) => fn());
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  setHandler(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    if (this.closed) return Promise.reject(new HubError(114, 'broker is closed'));
    if (!this.options.batchWrites) {
      try {
        const outcome = this.atomically(() => this.write(channel, data, options, this.now()));
        this.deliver(channel, data, options, outcome);
        return Promise.resolve(outcome);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return new Promise((resolve, reject) => {
      if (!this.batch) {
        this.batch = [];
        setImmediate(() => this.flush());
      }
      this.batch.push({ channel, data, options, resolve, reject });
    });
  }

  /**
   * Writes the turn's publications in one transaction, then, once committed, delivers and
   * acknowledges them in order. If a write fails, the transaction is rolled back and the turn
   * written again with each publication in a savepoint of its own, so the one failing fails
   * alone. A failed commit fails them all, and nothing of them was delivered.
   */
  private flush(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch) return;
    const now = this.now();
    let outcomes: (PublishResult | { error: unknown })[];
    try {
      outcomes = this.atomically(() => batch.map((p) => this.write(p.channel, p.data, p.options, now)));
    } catch {
      try {
        outcomes = this.atomically(() =>
          batch.map((p) => {
            try {
              return this.atomically(() => this.write(p.channel, p.data, p.options, now));
            } catch (error) {
              return { error };
            }
          }),
        );
      } catch (err) {
        for (const p of batch) p.reject(err);
        return;
      }
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      const outcome = outcomes[i]!;
      if ('error' in outcome) {
        p.reject(outcome.error);
        continue;
      }
      try {
        this.deliver(p.channel, p.data, p.options, outcome);
        p.resolve(outcome);
      } catch (err) {
        p.reject(err);
      }
    }
  }

  /** The idempotency check, the history append and the key, for one publication (inside `atomically`). */
  private write(channel: string, data: string, options: PublishOptions, now: number): PublishResult {
    const { idempotencyKey: key } = options;
    if (key !== undefined) {
      const earlier = this.options.idempotency.get(channel, key, now);
      if (earlier) return { ...earlier, duplicate: true };
    }
    const position =
      options.history.size > 0 ? this.options.history.append(channel, data, options.info, options.history, now) : { offset: 0, epoch: '' };
    if (key !== undefined) {
      this.options.idempotency.put(channel, key, position, now + (options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS));
    }
    return { ...position, duplicate: false };
  }

  private deliver(channel: string, data: string, options: PublishOptions, outcome: PublishResult): void {
    if (outcome.duplicate) return;
    const pub: Publication = options.info ? { offset: outcome.offset, data, info: options.info } : { offset: outcome.offset, data };
    this.handler?.onPublication(channel, pub, outcome.epoch);
  }

  async publishEvent(channel: string, event: ChannelEvent): Promise<void> {
    this.assertOpen();
    this.handler?.onEvent(channel, event);
  }

  async publishControl(command: ControlCommand): Promise<void> {
    this.assertOpen();
    this.handler?.onControl(command);
  }

  async subscribe(_channel: string): Promise<void> {
    // One process: every publication already reaches this node's handler.
  }

  async unsubscribe(_channel: string): Promise<void> {
    // See subscribe.
  }

  async history(channel: string, query: HistoryQuery, options: HistoryOptions): Promise<HistoryResult> {
    this.assertOpen();
    if (options.size <= 0) return { position: { offset: 0, epoch: '' }, publications: [], earliest: 1 };
    return this.options.history.read(channel, query, options, this.now());
  }

  async healthy(): Promise<boolean> {
    return !this.closed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // What this turn accepted is written and answered before the history closes.
    this.flush();
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.options.history.close();
  }

  private sweep(): void {
    if (this.closed) return;
    const now = this.now();
    this.options.history.sweep(now);
    this.options.idempotency.sweep(now);
  }

  private assertOpen(): void {
    if (this.closed) throw new HubError(114, 'broker is closed');
  }
}
