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
    return mergeLatency([this.export()]);
  }

  /** The kept samples and counts, for merging with other agents' reservoirs. */
  export(): LatencyExport {
    return { samplesUs: Array.from(this.samples.subarray(0, this.kept)), seen: this.seen, maxUs: this.maxUs };
  }
}

export interface LatencyExport {
  samplesUs: number[];
  seen: number;
  maxUs: number;
}

/**
 * p50 / p99 / max (ms) of several reservoirs together; null when nothing was sampled. A
 * reservoir that kept k of n samples stands for n: each kept sample weighs n/k, so a merged
 * percentile is that of all samples seen, whatever each agent's share.
 */
export function mergeLatency(parts: readonly LatencyExport[]): LatencySummary | null {
  const items: Array<[number, number]> = [];
  let total = 0;
  let seen = 0;
  let maxUs = 0;
  for (const p of parts) {
    if (p.samplesUs.length === 0) continue;
    const w = p.seen / p.samplesUs.length;
    for (const v of p.samplesUs) items.push([v, w]);
    total += p.seen;
    seen += p.seen;
    maxUs = Math.max(maxUs, p.maxUs);
  }
  if (items.length === 0) return null;
  items.sort((a, b) => a[0] - b[0]);
  const at = (q: number) => {
    const goal = q * total;
    let cum = 0;
    for (const [v, w] of items) {
      cum += w;
      if (cum > goal) return v / 1000;
    }
    return items[items.length - 1]![0] / 1000;
  };
  return { p50: at(0.5), p99: at(0.99), max: maxUs / 1000, samples: seen };
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  samples: number;
}
