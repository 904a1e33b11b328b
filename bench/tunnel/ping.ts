// ping(8) output → round-trip statistics. Per-reply times are parsed (not ping's own summary
// line) so that percentiles, not just min/avg/max, can be reported.

export interface PingSummary {
  transmitted: number;
  received: number;
  avgMs: number;
  p50Ms: number;
  p99Ms: number;
}

/** Every `time=X ms` of a ping run, in arrival order. */
export function pingTimes(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/\btime[=<]([0-9]+(?:\.[0-9]+)?) ?ms\b/g)) out.push(Number(m[1]));
  return out;
}

/** Nearest-rank percentile (p in 0..100) of a non-empty list. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function parsePing(text: string): PingSummary {
  const times = pingTimes(text);
  const m = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  const transmitted = m ? Number(m[1]) : times.length;
  const received = m ? Number(m[2]) : times.length;
  const avg = times.length ? times.reduce((a, b) => a + b, 0) / times.length : Number.NaN;
  return {
    transmitted,
    received,
    avgMs: avg,
    p50Ms: percentile(times, 50),
    p99Ms: percentile(times, 99),
  };
}
