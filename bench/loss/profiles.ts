// The loss profiles and FEC modes both loss benchmarks sweep, and how a profile is given to the
// impairment proxy on its command line.
import type { ImpairmentConfig } from '../impair/model.js';

export interface LossProfile {
  name: string;
  link: ImpairmentConfig;
}

export type FecMode = 'off' | 'xor' | 'rs';
export const FEC_MODES: readonly FecMode[] = ['off', 'xor', 'rs'];

export const PROFILES: readonly LossProfile[] = [
  { name: 'random 0%', link: {} },
  { name: 'random 1%', link: { loss: 0.01 } },
  { name: 'random 5%', link: { loss: 0.05 } },
  { name: 'random 10%', link: { loss: 0.1 } },
  // Gilbert–Elliott: mean loss 0.01 / (0.01 + 0.25) ≈ 3.8%, in bursts of 4 packets on average.
  { name: 'bursty 3.8%', link: { burst: { p: 0.01, r: 0.25 } } },
];

export function isBursty(p: LossProfile): boolean {
  return p.link.burst !== undefined;
}

/** The long-run share of packets the profile drops, in percent. */
export function meanLossPercent(p: LossProfile): number {
  const random = p.link.loss ?? 0;
  const b = p.link.burst;
  let burst = 0;
  if (b !== undefined) {
    const bad = b.p / (b.p + b.r);
    burst = bad * (b.lossBad ?? 1) + (1 - bad) * (b.lossGood ?? 0);
  }
  // Random loss applies first, then the burst state to what survives.
  // Rounded so 10% reads as 10, not 9.999999999999998.
  return Math.round(1e9 * 100 * (1 - (1 - random) * (1 - burst))) / 1e9;
}

const pct = (v: number): string => `${Number((v * 100).toPrecision(6))}%`;

/** `masque-bench impair` options for the profile, both directions, plus delay and seed. */
export function impairArgs(p: LossProfile, delayMs: number, seed: number): string[] {
  const args: string[] = [];
  const l = p.link;
  if (l.loss !== undefined && l.loss > 0) args.push('--loss', pct(l.loss));
  if (l.burst !== undefined) {
    const b = l.burst;
    args.push('--burst', [b.p, b.r, b.lossBad ?? 1, b.lossGood ?? 0].map(pct).join(','));
  }
  if (delayMs > 0) args.push('--delay', `${delayMs}ms`);
  args.push('--seed', String(seed));
  return args;
}

/** Profiles named on the command line: "0,1,5,10,bursty" (percent of random loss, or bursty). */
export function selectProfiles(spec: string): LossProfile[] {
  const chosen: LossProfile[] = [];
  for (const part of spec.split(',').map((s) => s.trim())) {
    const found =
      part === 'bursty'
        ? PROFILES.find(isBursty)
        : PROFILES.find((p) => !isBursty(p) && (p.link.loss ?? 0) * 100 === Number(part));
    if (found === undefined) {
      throw new Error(`unknown profile '${part}' (one of 0, 1, 5, 10, bursty)`);
    }
    if (!chosen.includes(found)) chosen.push(found);
  }
  return chosen;
}

export function selectModes(spec: string): FecMode[] {
  const chosen: FecMode[] = [];
  for (const part of spec.split(',').map((s) => s.trim())) {
    const mode = FEC_MODES.find((m) => m === part);
    if (mode === undefined) throw new Error(`unknown FEC mode '${part}' (off, xor or rs)`);
    if (!chosen.includes(mode)) chosen.push(mode);
  }
  return chosen;
}
