// The impairment model of one direction, free of sockets and clocks: given a packet's size and
// arrival time it says whether the packet is lost and, if not, when it leaves. Order of effects, as
// on a real path: loss (random, then Gilbert–Elliott bursts), the rate-limited bottleneck with its
// drop-tail queue, then propagation delay with jitter and occasional extra hold-back (reordering).
// Each packet draws the same number of random values whatever happens to it, so a seed fixes the
// decision for the n-th packet regardless of earlier outcomes.
import { Random } from './random.js';

export interface GilbertElliott {
  /** P(good → bad) per packet. */
  p: number;
  /** P(bad → good) per packet; the mean burst lasts 1/r packets. */
  r: number;
  /** Loss probability in the bad state (default 1). */
  lossBad?: number;
  /** Loss probability in the good state (default 0). */
  lossGood?: number;
}

export interface ImpairmentConfig {
  /** Independent random loss probability, 0..1. */
  loss?: number;
  burst?: GilbertElliott;
  /** One-way delay added to every packet, ms. */
  delayMs?: number;
  /** Uniform jitter: delay varies by ±jitterMs. */
  jitterMs?: number;
  /** Probability that a packet is held back `reorderDelayMs` more, overtaken by later ones. */
  reorder?: number;
  reorderDelayMs?: number;
  /** Bottleneck rate in bits per second; 0 or absent = unlimited. */
  rateBps?: number;
  /** Longest queueing delay at the bottleneck before drop-tail, ms. */
  queueMs?: number;
}

export interface DirectionStats {
  packets: number;
  bytes: number;
  lost: number;
  queueDrops: number;
  forwarded: number;
  reordered: number;
}

export class ImpairmentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImpairmentConfigError';
  }
}

const probability = (name: string, v: number | undefined): void => {
  if (v !== undefined && !(v >= 0 && v <= 1)) {
    throw new ImpairmentConfigError(`${name} ${v} is not a probability in 0..1`);
  }
};
const nonNegative = (name: string, v: number | undefined): void => {
  if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
    throw new ImpairmentConfigError(`${name} ${v} must be a finite number ≥ 0`);
  }
};

export function validateImpairment(c: ImpairmentConfig): void {
  probability('loss', c.loss);
  probability('reorder', c.reorder);
  if (c.burst !== undefined) {
    probability('burst p', c.burst.p);
    probability('burst r', c.burst.r);
    probability('burst loss in bad state', c.burst.lossBad);
    probability('burst loss in good state', c.burst.lossGood);
    if (c.burst.r === 0) throw new ImpairmentConfigError('burst r = 0 never leaves the bad state');
  }
  nonNegative('delay', c.delayMs);
  nonNegative('jitter', c.jitterMs);
  nonNegative('reorder delay', c.reorderDelayMs);
  nonNegative('rate', c.rateBps);
  nonNegative('queue', c.queueMs);
}

export const LOST = -1;

export class ImpairmentModel {
  readonly stats: DirectionStats = {
    packets: 0,
    bytes: 0,
    lost: 0,
    queueDrops: 0,
    forwarded: 0,
    reordered: 0,
  };
  private readonly rng: Random;
  private bad = false;
  private linkFreeAt = 0;

  constructor(
    private readonly c: ImpairmentConfig,
    seed: number,
  ) {
    validateImpairment(c);
    this.rng = new Random(seed);
  }

  /** The time (same clock as `now`, ms) the packet leaves, or LOST. */
  admit(size: number, now: number): number {
    const c = this.c;
    const rng = this.rng;
    // Fixed draw order: loss, burst transition, burst loss, jitter, reorder.
    const uLoss = rng.next();
    const uTransition = rng.next();
    const uBurst = rng.next();
    const uJitter = rng.next();
    const uReorder = rng.next();
    this.stats.packets++;
    this.stats.bytes += size;

    let lost = uLoss < (c.loss ?? 0);
    if (c.burst !== undefined) {
      const g = c.burst;
      // Transition first, then lose according to the state the packet meets.
      this.bad = this.bad ? uTransition >= g.r : uTransition < g.p;
      const pLoss = this.bad ? (g.lossBad ?? 1) : (g.lossGood ?? 0);
      if (uBurst < pLoss) lost = true;
    }
    if (lost) {
      this.stats.lost++;
      return LOST;
    }

    let leave = now;
    if (c.rateBps !== undefined && c.rateBps > 0) {
      const start = Math.max(now, this.linkFreeAt);
      if (start - now > (c.queueMs ?? 100)) {
        this.stats.queueDrops++;
        return LOST;
      }
      this.linkFreeAt = start + (size * 8 * 1000) / c.rateBps;
      leave = this.linkFreeAt;
    }
    let delay = c.delayMs ?? 0;
    if (c.jitterMs !== undefined && c.jitterMs > 0) {
      delay = Math.max(0, delay + (uJitter * 2 - 1) * c.jitterMs);
    }
    if (c.reorder !== undefined && uReorder < c.reorder) {
      delay += c.reorderDelayMs ?? Math.max(5, c.delayMs ?? 0);
      this.stats.reordered++;
    }
    this.stats.forwarded++;
    return leave + delay;
  }
}
