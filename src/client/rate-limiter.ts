import { ClientErrorCode } from './constants.js';
import { ClientError } from './errors.js';

export interface RateOptions {
  /** Commands per second, sustained. */
  perSecond: number;
  /** Commands that may go at once. */
  burst: number;
}

/**
 * A token bucket mirroring the server's per-connection command rate (`limits.commandRate`), so
 * that flushing a long offline queue never trips it: over the rate the server answers 111 and
 * publishes already in flight could then land out of order. Publishes wait for a token; other
 * commands take one regardless (they may drive the bucket below zero).
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private options: RateOptions,
    private readonly now: () => number = Date.now,
  ) {
    if (!(options.perSecond > 0) || !Number.isFinite(options.perSecond)) throw bad('commandRate.perSecond: expected a positive number');
    if (!(options.burst >= 1) || !Number.isFinite(options.burst)) throw bad('commandRate.burst: expected a number >= 1');
    this.tokens = options.burst;
    this.last = now();
  }

  /** Keeps to 90 % of the rate the server announced (the margin absorbs network jitter). */
  adopt(server: RateOptions): void {
    this.options = { perSecond: server.perSecond * 0.9, burst: Math.max(1, Math.floor(server.burst * 0.9)) };
  }

  /** A new connection: the server's bucket starts full, so does ours. */
  reset(): void {
    this.tokens = this.options.burst;
    this.last = this.now();
  }

  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Takes a token even if there is none. */
  spend(): void {
    this.refill();
    this.tokens -= 1;
  }

  /** Milliseconds until `tryTake` can succeed. */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.options.perSecond);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.options.burst, this.tokens + ((t - this.last) * this.options.perSecond) / 1000);
    this.last = t;
  }
}

function bad(message: string): ClientError {
  return new ClientError(ClientErrorCode.BAD_ARGUMENT, message);
}
