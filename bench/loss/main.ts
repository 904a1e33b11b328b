// `masque-bench loss`: what FEC buys under loss. For random loss of 0, 1, 5 and 10% and a bursty
// Gilbert–Elliott profile, with FEC off, XOR and Reed–Solomon: delivered loss, goodput, added
// latency p50/p99 and overhead.
//
// By default over the real stack (network.ts: namespaces, control plane, data plane, masque-client,
// the impairment proxy, a sequenced UDP echo through the tunnel; needs root) and writes a chart of
// delivered vs link loss. `--simulated` runs the sessions and FEC engines over a modelled link in
// simulated time instead (simulated.ts: exact, seconds, no root, no QUIC).
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ROOT } from '../../test/e2e/netns.js';
import { runNetworkMatrix, type NetworkCell } from './network.js';
import {
  FEC_MODES,
  PROFILES,
  selectModes,
  selectProfiles,
  type FecMode,
  type LossProfile,
} from './profiles.js';
import { lossChart, networkTable, simulatedTable } from './report.js';
import { runLoss, type LossResult, type SimulatedOptions } from './simulated.js';

export { PROFILES, runLoss };
export type { LossResult };

export interface LossOptions extends SimulatedOptions {
  simulated: boolean;
  quick: boolean;
  /** Real network only: seconds of traffic before the measured window, per cell. */
  warmupSeconds: number;
  profiles: LossProfile[];
  modes: FecMode[];
  /** Real network only: where the SVG goes; undefined = none. */
  chartPath: string | undefined;
  json: boolean;
}

const SIMULATED = { rate: 2000, seconds: 10 };
// 15 cells of about (1 s warm-up + seconds + ~4 s of process start-up): under 5 minutes, and
// under 2 with --quick. The rate is lower than the simulated one because QUIC is in the loop:
// DATAGRAM frames are congestion controlled, and at 1,000 packets/s of 1,200 B under 5-10%
// random loss the sending queues grew to seconds (delivered loss 15-60%, whatever FEC did),
// which measures the congestion controller rather than FEC.
const NETWORK = { rate: 500, seconds: 10, warmup: 1 };
const QUICK = { seconds: 1.5, warmup: 0.5 };
export const DEFAULT_CHART = join('docs', 'benchmarks', 'fec-loss.svg');

const DEFAULTS: Omit<LossOptions, 'rate' | 'seconds' | 'warmupSeconds' | 'chartPath'> = {
  simulated: false,
  quick: false,
  size: 1200,
  delayMs: 10,
  blockSize: 10,
  redundancyPercent: 25,
  fixed: false,
  flushMs: 5,
  interleave: 1,
  seed: 1,
  json: false,
  profiles: [...PROFILES],
  modes: [...FEC_MODES],
};

const USAGE = `usage: masque-bench loss [options]
  FEC off / XOR / Reed–Solomon under random 0, 1, 5, 10% and bursty loss: delivered loss,
  goodput, added latency, overhead (bench/loss/README.md).

  By default over the real stack in network namespaces (needs root): control plane, data plane
  and masque-client through their CLIs, the impairment proxy in front of the data plane, a
  sequenced UDP echo through the tunnel. About 4 minutes; --quick about 1.5.
  --simulated       a modelled link in simulated time instead (no root, no QUIC, seconds)

  --seconds N       measured seconds per cell (network ${NETWORK.seconds}, quick ${QUICK.seconds}, simulated ${SIMULATED.seconds})
  --warmup N        network: seconds before the measured window (default ${NETWORK.warmup}, quick ${QUICK.warmup})
  --quick           network: short cells
  --rate N          packets per second (network ${NETWORK.rate}, simulated ${SIMULATED.rate})
  --size N          IP packet bytes (default ${DEFAULTS.size})
  --delay MS        one-way link delay (default ${DEFAULTS.delayMs})
  --block N         data packets per block (default ${DEFAULTS.blockSize})
  --redundancy P    most repair in % of a block (default ${DEFAULTS.redundancyPercent})
  --profiles LIST   e.g. 0,1,5,10,bursty (default all)
  --modes LIST      e.g. off,xor,rs (default all)
  --seed N          loss decisions (default ${DEFAULTS.seed})
  --chart PATH      network: SVG of delivered vs link loss (default ${DEFAULT_CHART}; "none" for none)
  --json            one JSON document instead of the table
  --flush MS        flush timer (default ${DEFAULTS.flushMs}); both sides
  --interleave D    blocks filled in turn (default ${DEFAULTS.interleave}); both sides
  --fixed           simulated: always the full redundancy instead of adaptive
`;

class UsageError extends Error {}

export function parseLossArgs(argv: readonly string[]): LossOptions | 'help' {
  const o: Partial<LossOptions> & typeof DEFAULTS = {
    ...DEFAULTS,
    profiles: [...DEFAULTS.profiles],
    modes: [...DEFAULTS.modes],
  };
  let chart: string | undefined;
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new UsageError(`${flag} needs a number in ${min}..${max}`);
    }
    return n;
  };
  const list = <T>(flag: string, v: string | undefined, pick: (s: string) => T): T => {
    if (v === undefined) throw new UsageError(`${flag} needs a value`);
    try {
      return pick(v);
    } catch (err) {
      throw new UsageError(`${flag}: ${(err as Error).message}`);
    }
  };
  const networkOnly = new Set<string>();
  const simulatedOnly = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--help':
      case '-h':
        return 'help';
      case '--json':
        o.json = true;
        break;
      case '--simulated':
        o.simulated = true;
        break;
      case '--quick':
        o.quick = true;
        networkOnly.add(a);
        break;
      case '--fixed':
        o.fixed = true;
        simulatedOnly.add(a);
        break;
      case '--rate':
        o.rate = num(a, argv[++i], 1, 1e6);
        break;
      case '--size':
        o.size = Math.round(num(a, argv[++i], 52, 1400));
        break;
      case '--seconds':
        o.seconds = num(a, argv[++i], 0.1, 3600);
        break;
      case '--warmup':
        o.warmupSeconds = num(a, argv[++i], 0, 60);
        networkOnly.add(a);
        break;
      case '--delay':
        o.delayMs = num(a, argv[++i], 0, 10_000);
        break;
      case '--block':
        o.blockSize = Math.round(num(a, argv[++i], 1, 200));
        break;
      case '--redundancy':
        o.redundancyPercent = num(a, argv[++i], 1, 100);
        break;
      case '--flush':
        o.flushMs = num(a, argv[++i], 0, 1000);
        break;
      case '--interleave':
        o.interleave = Math.round(num(a, argv[++i], 1, 16));
        break;
      case '--seed':
        o.seed = Math.round(num(a, argv[++i], 0, 2 ** 32 - 1));
        break;
      case '--profiles':
        o.profiles = list(a, argv[++i], selectProfiles);
        break;
      case '--modes':
        o.modes = list(a, argv[++i], selectModes);
        break;
      case '--chart':
        chart = argv[++i];
        if (chart === undefined) throw new UsageError('--chart needs a path (or none)');
        networkOnly.add(a);
        break;
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  // The client's bundle has no key for this, so on the real stack it would reach only one side
  // of the tunnel; refuse rather than measure something half-configured. (--flush and
  // --interleave shape only what a side sends, so the data plane's downlink shows them alone.)
  const wrong = o.simulated ? networkOnly : simulatedOnly;
  if (wrong.size > 0) {
    throw new UsageError(
      `${[...wrong].join(', ')} only ${o.simulated ? 'without' : 'with'} --simulated`,
    );
  }
  if (o.simulated) {
    o.rate ??= SIMULATED.rate;
    o.seconds ??= SIMULATED.seconds;
    o.warmupSeconds = 0;
    o.chartPath = undefined;
  } else {
    o.rate ??= NETWORK.rate;
    o.seconds ??= o.quick ? QUICK.seconds : NETWORK.seconds;
    o.warmupSeconds ??= o.quick ? QUICK.warmup : NETWORK.warmup;
    o.chartPath =
      chart === 'none'
        ? undefined
        : chart === undefined
          ? join(ROOT, DEFAULT_CHART)
          : resolve(chart);
  }
  return o as LossOptions;
}

async function simulated(o: LossOptions): Promise<number> {
  const results: LossResult[] = [];
  for (const profile of o.profiles) {
    for (const mode of o.modes) results.push(await runLoss(profile, mode, o));
  }
  if (o.json) {
    const { profiles: _p, ...options } = o;
    process.stdout.write(
      `${JSON.stringify({ link: 'simulated', options, profiles: o.profiles, results }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(
      `flow ${o.rate} packets/s of ${o.size} B for ${o.seconds} s (simulated), one-way delay ` +
        `${o.delayMs} ms, block ${o.blockSize}, up to ${o.redundancyPercent}% repair, ` +
        `${o.fixed ? 'fixed' : 'adaptive'}, flush ${o.flushMs} ms, interleave ${o.interleave}\n\n` +
        simulatedTable(results),
    );
  }
  return 0;
}

async function network(o: LossOptions): Promise<number> {
  const loadBefore = loadavg();
  const started = Date.now();
  const cells: NetworkCell[] = await runNetworkMatrix({
    ...o,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const elapsedSeconds = (Date.now() - started) / 1000;
  const loadAfter = loadavg();
  if (o.chartPath !== undefined) {
    mkdirSync(dirname(o.chartPath), { recursive: true });
    writeFileSync(o.chartPath, lossChart(cells));
  }
  if (o.json) {
    const { profiles: _p, ...options } = o;
    const doc = {
      link: 'network',
      options,
      profiles: o.profiles,
      machine: { loadavgBefore: loadBefore, loadavgAfter: loadAfter, elapsedSeconds },
      cells,
    };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(
      `flow ${o.rate} packets/s of ${o.size} B each way (UDP echo through the tunnel), ` +
        `${o.warmupSeconds} s warm-up + ${o.seconds} s per cell, one-way link delay ${o.delayMs} ms, ` +
        `block ${o.blockSize}, up to ${o.redundancyPercent}% repair, adaptive; data plane flush ` +
        `${o.flushMs} ms, interleave ${o.interleave}; ` +
        `load ${loadBefore.map((l) => l.toFixed(2)).join(' ')} → ` +
        `${loadAfter.map((l) => l.toFixed(2)).join(' ')}, ${elapsedSeconds.toFixed(0)} s\n\n` +
        networkTable(cells) +
        (o.chartPath !== undefined ? `\nchart: ${o.chartPath}\n` : ''),
    );
  }
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  let o: LossOptions | 'help';
  try {
    o = parseLossArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`masque-bench loss: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (o.simulated) return simulated(o);
  try {
    return await network(o);
  } catch (err) {
    process.stderr.write(`masque-bench loss: ${(err as Error).message}\n`);
    return 1;
  }
}
