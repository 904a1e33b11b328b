// Axis scales for charts: a domain that covers the data with round ends, and labelled ticks in it.
// Linear axes step by 1, 2 or 5 times a power of ten; log axes put a tick on every decade (every
// few decades when there are many) and add 2 and 5 when the axis spans too few decades to read.

export interface Tick {
  value: number;
  label: string;
}

export interface Scale {
  /** Domain ends in data units; `min < max`, and both > 0 on a log scale. */
  min: number;
  max: number;
  log: boolean;
  ticks: Tick[];
  /** Where `value` falls along the axis, 0 at `min` and 1 at `max`. */
  position(value: number): number;
}

const TARGET_TICKS = 5;

/** The 1-2-5 step nearest to `span / TARGET_TICKS`. */
function niceStep(span: number): number {
  const raw = span / TARGET_TICKS;
  const decade = 10 ** Math.floor(Math.log10(raw));
  const fraction = raw / decade;
  const nice = fraction < 1.5 ? 1 : fraction < 3 ? 2 : fraction < 7 ? 5 : 10;
  return nice * decade;
}

/** A tick label without binary noise (0.30000000000000004) and short for very large or small values. */
export function formatTick(value: number, step: number): string {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6 || magnitude < 1e-3) {
    const digits = Math.max(0, Math.floor(Math.log10(magnitude)) - Math.floor(Math.log10(step)));
    return value
      .toExponential(Math.min(digits, 6))
      .replace(/\.?0+e/, 'e')
      .replace('e+', 'e');
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return value.toFixed(Math.min(decimals, 12));
}

/** A linear scale over [lo, hi] (lo <= hi), widened to tick multiples; a single value gets room. */
export function linearScale(lo: number, hi: number): Scale {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  // A span lost in the values' own rounding is no span: give the value room instead (and room
  // that survives the subtraction, which 10% of a denormal does not).
  if (hi - lo <= Math.max(Math.abs(lo) * 1e-12, Math.abs(hi) * 1e-12, 1e-200)) {
    const middle = (lo + hi) / 2;
    const pad = Math.abs(middle) >= 1e-200 ? Math.abs(middle) * 0.1 : 1;
    lo = middle - pad;
    hi = middle + pad;
  }
  const step = niceStep(hi - lo);
  const min = Math.floor(lo / step + 1e-9) * step;
  const max = Math.ceil(hi / step - 1e-9) * step;
  const ticks: Tick[] = [];
  const count = Math.round((max - min) / step);
  for (let i = 0; i <= count; i++) {
    // Multiply rather than accumulate so the error does not grow along the axis.
    const value = Math.round((min + i * step) / step) * step;
    ticks.push({ value, label: formatTick(value, step) });
  }
  const span = max - min;
  return { min, max, log: false, ticks, position: (v) => (v - min) / span };
}

function decadeLabel(exponent: number): string {
  const value = 10 ** exponent;
  return exponent >= -3 && exponent <= 5 ? formatTick(value, value) : `1e${exponent}`;
}

/**
 * A log scale over [lo, hi] (0 < lo <= hi), widened to whole decades. The caller decides what to
 * do with values <= 0 (they have no place on it).
 */
export function logScale(lo: number, hi: number): Scale {
  if (!(lo > 0) || !(hi > 0) || !Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 1;
    hi = 10;
  }
  let first = Math.floor(Math.log10(lo) + 1e-9);
  let last = Math.ceil(Math.log10(hi) - 1e-9);
  if (last === first) last += 1;
  const decades = last - first;
  const stride = Math.ceil(decades / 8);
  // Keep the ends on a labelled decade.
  last = first + Math.ceil(decades / stride) * stride;
  const ticks: Tick[] = [];
  for (let e = first; e <= last; e += stride) {
    ticks.push({ value: 10 ** e, label: decadeLabel(e) });
    if (decades <= 2 && e < last) {
      for (const m of [2, 5]) {
        const value = m * 10 ** e;
        ticks.push({ value, label: formatTick(value, 10 ** e) });
      }
    }
  }
  const min = 10 ** first;
  const max = 10 ** last;
  first = Math.log10(min);
  const span = Math.log10(max) - first;
  return {
    min,
    max,
    log: true,
    ticks,
    position: (v) => (Math.log10(v) - first) / span,
  };
}
