import { ClientError } from './errors.js';
import { ClientErrorCode } from './constants.js';

export interface BackoffOptions {
  /** Smallest delay, in milliseconds. */
  minMs: number;
  /** Largest delay, in milliseconds. */
  maxMs: number;
  /** Growth of the ceiling per attempt (2 doubles it). */
  factor: number;
}

/**
 * Exponential backoff with full jitter (AWS's "full jitter", as in centrifuge-js): attempt `n`
 * (from 0) waits `min(maxMs, minMs + random() × min(maxMs, minMs × factor^n))`. Every delay
 * lies in [minMs, maxMs]; the ceiling grows exponentially, and each delay is spread uniformly
 * below it so that clients dropped together do not come back together.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {
    validateBackoff(options);
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next attempt; counts the attempt. */
  next(): number {
    const { minMs, maxMs, factor } = this.options;
    // factor^n overflows to Infinity eventually; min() keeps the ceiling at maxMs.
    const ceiling = Math.min(maxMs, minMs * Math.pow(factor, Math.min(this.attempt, 1000)));
    this.attempt += 1;
    const r = Math.min(Math.max(this.random(), 0), 1);
    return Math.min(maxMs, Math.floor(minMs + r * ceiling));
  }

  reset(): void {
    this.attempt = 0;
  }
}

export function validateBackoff(o: BackoffOptions): void {
  const bad = (msg: string): never => {
    throw new ClientError(ClientErrorCode.BAD_ARGUMENT, `backoff.${msg}`);
  };
  if (!Number.isFinite(o.minMs) || o.minMs < 0) bad('minMs: expected a number >= 0');
  if (!Number.isFinite(o.maxMs) || o.maxMs < o.minMs) bad('maxMs: expected a number >= backoff.minMs');
  if (!Number.isFinite(o.factor) || o.factor < 1) bad('factor: expected a number >= 1');
}
