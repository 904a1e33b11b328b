// Latency distributions that merge across worker threads: a log-bucketed histogram (about 1%
// relative error) instead of raw samples, so a long run at thousands of packets per second costs
// a fixed few kilobytes per thread and a merge is an element-wise sum.

/** Bucket growth factor: a reported percentile is within 1% of the true sample. */
const GROWTH = 1.02;
const LOG_GROWTH = Math.log(GROWTH);
/** Values are microseconds; 1 µs .. ~1e9 µs (16 min) covers every latency we measure. */
export const BUCKETS = Math.ceil(Math.log(1e9) / LOG_GROWTH) + 1;

export class LatencyHistogram {
  readonly counts: Float64Array;
  count = 0;
  max = 0;

  constructor() {
    this.counts = new Float64Array(BUCKETS);
  }

  /** Sparse form for postMessage / JSON: [bucket, count] pairs and the maximum. */
  toWire(): HistogramWire {
    const buckets: [number, number][] = [];
    for (let i = 0; i < BUCKETS; i++) if (this.counts[i] > 0) buckets.push([i, this.counts[i]]);
    return { buckets, max: this.max };
  }

  static fromWire(w: HistogramWire): LatencyHistogram {
    const h = new LatencyHistogram();
    for (const [i, n] of w.buckets) {
      if (!Number.isInteger(i) || i < 0 || i >= BUCKETS || !(n > 0)) continue;
      h.counts[i] += n;
      h.count += n;
    }
    h.max = w.max;
    return h;
  }

  /** Records one value in microseconds (values below 1 µs count as 1 µs). */
  record(us: number): void {
    const v = Math.max(1, us);
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(v) / LOG_GROWTH));
    this.counts[i]++;
    this.count++;
    if (v > this.max) this.max = v;
  }

  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i] += other.counts[i];
    this.count += other.count;
    this.max = Math.max(this.max, other.max);
  }

  /** The q-quantile (0..1) in microseconds, or undefined when empty. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i];
      // Midpoint of the bucket (geometric), capped by the largest value seen.
      if (seen >= rank) return Math.min(this.max, Math.sqrt(lowerBound(i) * upperBound(i)));
    }
    return this.max;
  }
}

export interface HistogramWire {
  buckets: [number, number][];
  max: number;
}

function lowerBound(i: number): number {
  return Math.pow(GROWTH, i);
}
function upperBound(i: number): number {
  return Math.pow(GROWTH, i + 1);
}

/** Exact nearest-rank percentile of raw samples (q in 0..1); undefined when empty. */
export function percentile(samples: readonly number[], q: number): number | undefined {
  if (samples.length === 0) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}
