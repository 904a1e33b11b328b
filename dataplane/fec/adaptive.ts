// Adaptive redundancy: turns observed loss into a block shape for the sender. Loss comes from two
// places: QUIC's own loss detection for datagrams we sent (the forward path, unaffected by FEC
// hiding anything) and the local FEC receiver's results (recovered packets and blocks it could not
// save, the reverse path; unrecoverable blocks also reveal bursts the i.i.d. model misses).
//
// The repair count is the smallest one whose expected residual loss under independent losses at
// the estimated rate stays below the target, clamped to the configured ratio bounds. With no loss
// seen for `quietTicks` observations, redundancy is zero: packets go out plainly on context 0.
import type { FecScheme } from './code.js';

export interface AdaptiveOptions {
  scheme: FecScheme;
  maxK: number;
  maxM: number;
  /** Repair/data bounds while FEC is on, e.g. 0.05 and 0.5. */
  minRatio: number;
  maxRatio: number;
  /** Delivered loss to aim for (fraction), e.g. 0.0005. */
  targetLoss?: number;
  /** Observations in a row without loss before FEC switches off. */
  quietTicks?: number;
  /** Weight of the history in the loss estimate per observation, 0..1. */
  memory?: number;
  /** Counters at the start; without it the first tick only records a baseline. */
  baseline?: LossSample;
}

/** Cumulative counters, sampled at each tick; the controller works on the differences. */
export interface LossSample {
  /** QUIC datagrams sent and declared lost (forward path). */
  datagramsSent: number;
  datagramsLost: number;
  /** From the local FecReceiver's metrics (reverse path); zeros when not receiving FEC. */
  dataPacketsReceived?: number;
  packetsRecovered?: number;
  unrecoverableBlocks?: number;
}

export interface FecPlan {
  k: number;
  /** 0 = FEC off. */
  m: number;
  ratio: number;
  lossEstimate: number;
}

export class AdaptiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AdaptiveError';
  }
}

export class AdaptiveRedundancy {
  private readonly target: number;
  private readonly quietTicks: number;
  private readonly memory: number;
  private last: Required<LossSample> | undefined;
  private lostEw = 0;
  private totalEw = 0;
  private quiet = Infinity;
  private burst = 1;
  private plan: FecPlan;

  constructor(private readonly o: AdaptiveOptions) {
    if (!(o.minRatio >= 0 && o.maxRatio >= o.minRatio && o.maxRatio > 0)) {
      throw new AdaptiveError(`ratio bounds ${o.minRatio}..${o.maxRatio} are not ordered`);
    }
    if (o.scheme === 'xor' && o.maxM !== 1) throw new AdaptiveError('XOR has one repair');
    this.target = o.targetLoss ?? 0.0005;
    this.quietTicks = o.quietTicks ?? 10;
    this.memory = o.memory ?? 0.8;
    this.plan = { k: o.maxK, m: 0, ratio: 0, lossEstimate: 0 };
    if (o.baseline !== undefined) this.last = withDefaults(o.baseline);
  }

  get current(): FecPlan {
    return this.plan;
  }

  /** Feeds one sample (e.g. every 100–250 ms) and returns the plan to apply from the next block. */
  tick(sample: LossSample): FecPlan {
    const s = withDefaults(sample);
    const prev = this.last;
    this.last = s;
    if (prev === undefined) return this.plan;
    const sent = Math.max(0, s.datagramsSent - prev.datagramsSent);
    const lost = Math.max(0, s.datagramsLost - prev.datagramsLost);
    const recovered = Math.max(0, s.packetsRecovered - prev.packetsRecovered);
    const unrecoverable = Math.max(0, s.unrecoverableBlocks - prev.unrecoverableBlocks);
    const rxLost = recovered + unrecoverable; // at least one packet per unsaved block
    const rxTotal = Math.max(0, s.dataPacketsReceived - prev.dataPacketsReceived) + rxLost;

    // Whichever direction shows more loss drives the estimate.
    const fwd = sent > 0 ? lost / sent : 0;
    const rev = rxTotal > 0 ? rxLost / rxTotal : 0;
    const [l, n] = rev > fwd ? [rxLost, rxTotal] : [lost, sent];
    this.lostEw = this.memory * this.lostEw + l;
    this.totalEw = this.memory * this.totalEw + n;
    this.quiet = lost + rxLost > 0 ? 0 : this.quiet + 1;
    // Blocks lost despite FEC mean losses cluster: plan for a harsher rate until that stops.
    this.burst = unrecoverable > 0 ? Math.min(this.burst * 1.5, 4) : Math.max(1, this.burst * 0.9);

    const p = this.totalEw > 0 ? this.lostEw / this.totalEw : 0;
    if (this.quiet >= this.quietTicks || p === 0) {
      this.plan = { k: this.o.maxK, m: 0, ratio: 0, lossEstimate: p };
    } else {
      // Plan for the upper edge of the estimate (≈ 2σ over the packets it rests on): a low
      // estimate costs delivered loss, a high one only a little bandwidth.
      const upper = p + 2 * Math.sqrt((p * (1 - p)) / Math.max(this.totalEw, 1));
      this.plan = { ...this.shapeFor(Math.min(upper * this.burst, 0.5)), lossEstimate: p };
    }
    return this.plan;
  }

  private shapeFor(p: number): { k: number; m: number; ratio: number } {
    const { maxK, maxM, minRatio, maxRatio } = this.o;
    if (this.o.scheme === 'xor') {
      // One repair; the ratio is 1/k, so pick the largest block that still meets the target.
      const kLo = Math.max(1, Math.ceil(1 / maxRatio - 1e-9));
      const kHi = minRatio > 0 ? Math.min(maxK, Math.floor(1 / minRatio + 1e-9)) : maxK;
      let k = Math.min(kLo, maxK);
      for (let c = Math.max(kLo, 1); c <= kHi; c++) if (residualLoss(c, 1, p) <= this.target) k = c;
      return { k, m: 1, ratio: 1 / k };
    }
    const k = maxK;
    const mLo = Math.min(maxM, Math.max(1, Math.ceil(minRatio * k - 1e-9)));
    const mHi = Math.max(mLo, Math.min(maxM, Math.floor(maxRatio * k + 1e-9)));
    let m = mHi;
    for (let c = mLo; c <= mHi; c++) {
      if (residualLoss(k, c, p) <= this.target) {
        m = c;
        break;
      }
    }
    return { k, m, ratio: m / k };
  }
}

function withDefaults(s: LossSample): Required<LossSample> {
  return { dataPacketsReceived: 0, packetsRecovered: 0, unrecoverableBlocks: 0, ...s };
}

/**
 * Expected fraction of data packets lost after decoding a k+m block when each symbol is lost
 * independently with probability p: a block with L > m losses keeps none of its lost data, and
 * on average L·k/n of those L are data.
 */
export function residualLoss(k: number, m: number, p: number): number {
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const n = k + m;
  const q = 1 - p;
  let pmf = Math.pow(q, n); // P(L = 0)
  let sum = 0;
  for (let L = 0; L < n; L++) {
    pmf = (pmf * (n - L) * p) / ((L + 1) * q); // now P(L + 1)
    if (L + 1 > m) sum += (pmf * (L + 1)) / n;
  }
  return sum;
}
