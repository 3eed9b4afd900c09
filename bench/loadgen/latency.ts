/**
 * Latency samples (microseconds) in a fixed-size reservoir: memory stays bounded however
 * long the window, and every sample has the same chance to be kept.
 */
export class LatencyReservoir {
  private readonly samples: Float64Array;
  private kept = 0;
  private seen = 0;
  private maxUs = 0;

  constructor(capacity = 200_000) {
    this.samples = new Float64Array(capacity);
  }

  add(us: number): void {
    if (!(us >= 0)) return; // NaN or a clock oddity
    this.seen += 1;
    if (us > this.maxUs) this.maxUs = us;
    if (this.kept < this.samples.length) {
      this.samples[this.kept++] = us;
      return;
    }
    const j = Math.floor(Math.random() * this.seen);
    if (j < this.samples.length) this.samples[j] = us;
  }

  reset(): void {
    this.kept = 0;
    this.seen = 0;
    this.maxUs = 0;
  }

  /** p50 / p99 / max in milliseconds; null when nothing was sampled. */
  summary(): LatencySummary | null {
    if (this.kept === 0) return null;
    const sorted = this.samples.slice(0, this.kept).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! / 1000;
    return { p50: at(0.5), p99: at(0.99), max: this.maxUs / 1000, samples: this.seen };
  }
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}
