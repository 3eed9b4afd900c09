import { HubError } from '../protocol/errors.js';
import type { HistoryLog } from '../history/history-log.js';
import type { IdempotencyLog } from '../history/idempotency-log.js';
import type { Broker, BrokerEventHandler, ControlCommand, HealthChecker, PublishOptions, PublishResult } from './broker.js';
import type { HistoryOptions, HistoryQuery, HistoryResult, ChannelEvent, Publication } from '../stream/types.js';

export interface MemoryBrokerOptions {
  history: HistoryLog;
  idempotency: IdempotencyLog;
  /** Runs `fn` atomically against durable storage (a SQLite transaction); default: just runs it. */
  atomically?: <T>(fn: () => T) => T;
  /** How often expired history and idempotency keys are swept, in milliseconds. */
  sweepIntervalMs?: number;
  now?: () => number;
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 120_000;

/**
 * The single-node broker: publications go straight to this process's handler. History lives in
 * the given HistoryLog (memory, or SQLite so it survives a restart). Every call runs
 * synchronously inside, so publish is trivially atomic per channel.
 */
export class MemoryBroker implements Broker, HealthChecker {
  private handler: BrokerEventHandler | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly atomically: <T>(fn: () => T) => T;
  private closed = false;

  constructor(private readonly options: MemoryBrokerOptions) {
    this.now = options.now ?? Date.now;
    this.atomically = options.atomically ?? ((fn) => fn());
    this.sweepTimer = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweepTimer.unref();
  }

  setHandler(handler: BrokerEventHandler): void {
    this.handler = handler;
  }

  async publish(channel: string, data: string, options: PublishOptions): Promise<PublishResult> {
    this.assertOpen();
    const now = this.now();
    const { idempotencyKey: key } = options;
    const outcome = this.atomically(() => {
      if (key !== undefined) {
        const earlier = this.options.idempotency.get(channel, key, now);
        if (earlier) return { ...earlier, duplicate: true };
      }
      const position =
        options.history.size > 0
          ? this.options.history.append(channel, data, options.info, options.history, now)
          : { offset: 0, epoch: '' };
      if (key !== undefined) {
        this.options.idempotency.put(channel, key, position, now + (options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS));
      }
      return { ...position, duplicate: false };
    });
    if (!outcome.duplicate) {
      const pub: Publication = options.info ? { offset: outcome.offset, data, info: options.info } : { offset: outcome.offset, data };
      this.handler?.onPublication(channel, pub, outcome.epoch);
    }
    return outcome;
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
