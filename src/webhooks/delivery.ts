import type { Logger } from 'pino';
import { PostFailed, signedPost } from '../backend-http/signed-post.js';
import type { WebhookOptions } from '../config/options.js';
import type { WebhookStore } from './events.js';

export interface DeliveryCounters {
  delivered(count: number): void;
  failed(count: number): void;
}

/** How long an idle deliverer waits before it looks at the queue again (events queued by other nodes). */
const IDLE_POLL_MS = 250;

/**
 * Delivers the queue in order, one batch at a time, under a delivery lease (one deliverer across
 * nodes): POST `{"events": [...]}` signed with webhooks.secret; a 2xx removes the batch, anything
 * else (or no answer within timeoutMs) retries the same batch with exponential backoff
 * (initialBackoffMs doubling up to maxBackoffMs) until retryForMs have passed since its first
 * failure, when it is set aside as failed and counted. At least once: a crash between a 2xx and
 * the removal delivers the batch again, with the same event ids.
 */
export class WebhookDelivery {
  private stopped = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private readonly leaseMs: number;

  constructor(
    private readonly options: WebhookOptions,
    private readonly store: WebhookStore,
    private readonly node: string,
    private readonly counters: DeliveryCounters,
    private readonly logger: Logger,
  ) {
    this.leaseMs = options.timeoutMs + 5_000;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Something was queued: look now rather than at the next poll. */
  poke(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.loop;
  }

  private async run(): Promise<void> {
    let failingSince: number | undefined;
    let attempt = 0;
    while (!this.stopped) {
      let batch: string[] | undefined;
      try {
        batch = await this.store.head(this.node, this.options.batchSize, this.leaseMs);
      } catch (err) {
        this.logger.warn({ err }, 'webhook queue unavailable');
        await this.sleep(IDLE_POLL_MS * 4);
        continue;
      }
      if (!batch || batch.length === 0) {
        failingSince = undefined;
        attempt = 0;
        await this.sleep(IDLE_POLL_MS);
        continue;
      }
      const error = await this.post(batch);
      if (this.stopped && error !== undefined) break;
      try {
        if (error === undefined) {
          await this.store.ack(this.node, batch.length);
          this.counters.delivered(batch.length);
          failingSince = undefined;
          attempt = 0;
          continue;
        }
        const now = Date.now();
        failingSince ??= now;
        if (now - failingSince >= this.options.retryForMs) {
          this.logger.error({ events: batch.length, error }, 'webhook events set aside after retries ran out');
          await this.store.setAside(this.node, batch.length, error, now);
          this.counters.failed(batch.length);
          failingSince = undefined;
          attempt = 0;
          continue;
        }
      } catch (err) {
        this.logger.warn({ err }, 'webhook queue update failed');
      }
      const backoff = Math.min(this.options.maxBackoffMs, this.options.initialBackoffMs * 2 ** Math.min(attempt, 30));
      attempt += 1;
      await this.sleep(backoff, false);
    }
  }

  /** One POST of a batch; undefined on a 2xx, else why it failed. */
  private async post(batch: readonly string[]): Promise<string | undefined> {
    const body = `{"events":[${batch.join(',')}]}`;
    try {
      const res = await signedPost(this.options.url, body, this.options.secret, this.options.headers, this.options.timeoutMs);
      if (res.status >= 200 && res.status < 300) return undefined;
      return `HTTP ${res.status}`;
    } catch (err) {
      if (err instanceof PostFailed) return err.reason === 'timeout' ? `no answer within ${this.options.timeoutMs} ms` : `unreachable: ${err.message}`;
      // Never reached (signedPost throws only PostFailed), but the loop must not die of it.
      return err instanceof Error ? err.message : String(err);
    }
  }

  /** Waits `ms`, or until poked (unless `wakeable` is false: a backoff is not cut short by new events). */
  private sleep(ms: number, wakeable = true): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(this.timer);
        this.wake = undefined;
        resolve();
      };
      this.timer = setTimeout(done, ms);
      this.timer.unref();
      this.wake = wakeable || this.stopped ? done : () => (this.stopped ? done() : undefined);
    });
  }
}
