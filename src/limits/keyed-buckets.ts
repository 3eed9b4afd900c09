import { TokenBucket } from './token-bucket.js';

/** How often buckets that refilled completely are forgotten. */
const SWEEP_MS = 10_000;

/**
 * One token bucket per key (an IP, a channel), made on first use and forgotten once it has
 * refilled completely, so the map holds only keys that spent tokens recently.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly sweepTimer: NodeJS.Timeout;

  constructor(private readonly rate: { perSecond: number; burst: number }) {
    this.sweepTimer = setInterval(() => {
      for (const [key, bucket] of this.buckets) if (bucket.full()) this.buckets.delete(key);
    }, SWEEP_MS);
    this.sweepTimer.unref();
  }

  /** Takes `count` tokens from the key's bucket; false, taking none, when fewer are left. */
  take(key: string, now: number = Date.now(), count = 1): boolean {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.rate.perSecond, this.rate.burst, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now, count);
  }

  stop(): void {
    clearInterval(this.sweepTimer);
  }
}
