// Command-line quantities in the notation of tc/netem: "5%", "10ms", "100mbit", "1%,30%".
// As in tc, "bit" units are bits per second and "bps" units are bytes per second.

export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitError';
  }
}

const NUMBER = '(\\d+(?:\\.\\d+)?|\\.\\d+)';

/** "5%" or "5" → 0.05. */
export function parsePercent(text: string): number {
  const m = new RegExp(`^${NUMBER}%?$`).exec(text.trim());
  if (m === null) throw new UnitError(`'${text}' is not a percentage (e.g. 5% or 0.5%)`);
  const v = Number(m[1]) / 100;
  if (v > 1) throw new UnitError(`'${text}' is above 100%`);
  return v;
}

const TIME: Record<string, number> = { us: 0.001, ms: 1, s: 1000, '': 1 };

/** "10ms", "1s", "500us", "10" (ms) → milliseconds. */
export function parseDuration(text: string): number {
  const m = new RegExp(`^${NUMBER}(us|ms|s)?$`).exec(text.trim());
  if (m === null) throw new UnitError(`'${text}' is not a duration (e.g. 10ms, 1s, 500us)`);
  return Number(m[1]) * TIME[m[2] ?? ''];
}

const RATE: Record<string, number> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  bps: 8,
  kbps: 8e3,
  mbps: 8e6,
  gbps: 8e9,
};

/** "100mbit" → 1e8 bits per second; "10mbps" (bytes, as tc) → 8e7. */
export function parseRate(text: string): number {
  const m = new RegExp(`^${NUMBER}(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$`, 'i').exec(text.trim());
  if (m === null) throw new UnitError(`'${text}' is not a rate (e.g. 100mbit, 1gbit, 500kbit)`);
  const v = Number(m[1]) * RATE[m[2].toLowerCase()];
  if (v <= 0) throw new UnitError(`rate '${text}' must be positive`);
  return v;
}

/** "p,r[,lossBad[,lossGood]]", each a percentage → Gilbert–Elliott parameters. */
export function parseBurst(text: string): {
  p: number;
  r: number;
  lossBad: number;
  lossGood: number;
} {
  const parts = text.split(',');
  if (parts.length < 2 || parts.length > 4) {
    throw new UnitError(`'${text}' is not p,r[,loss-in-bad[,loss-in-good]] (e.g. 1%,25%)`);
  }
  const [p, r, bad, good] = parts.map(parsePercent);
  if (r === 0) throw new UnitError('burst r of 0% never leaves the bad state');
  return { p, r, lossBad: bad ?? 1, lossGood: good ?? 0 };
}
