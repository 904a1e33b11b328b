// Other work on this shared 2-core machine distorts every figure, and wireguard-go suffers from it
// differently than we do, so the ratios drift with whatever else runs. Before each measurement the
// benchmark waits (bounded) for a quiet machine, and it records how much CPU others used during the
// measurement, so a reader can tell a clean run from a noisy one. "Foreign" CPU is the machine's
// busy time minus the time of this process tree (the bench, our daemons, the peers, iperf3, ping).
import { readFileSync } from 'node:fs';
import { clockTicksPerSecond, readProcessTable, treeTicks } from './cpu.js';

export class ProcCpuError extends Error {
  override name = 'ProcCpuError';
}

/**
 * Busy ticks summed over all CPUs from /proc/stat's first line: user + nice + system (time spent in
 * interrupts is left out: softirq work for our own packets lands there, whoever caused it).
 */
export function parseBusyTicks(procStat: string): number {
  const line = procStat.split('\n', 1)[0] ?? '';
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'cpu' || f.length < 5)
    throw new ProcCpuError(`not /proc/stat: ${line.slice(0, 60)}`);
  const [user, nice, system] = [Number(f[1]), Number(f[2]), Number(f[3])];
  if (![user, nice, system].every(Number.isInteger))
    throw new ProcCpuError(`malformed cpu line: ${line.slice(0, 60)}`);
  return user + nice + system;
}

/** Others' CPU in % of one core over an interval, from tick deltas and its wall time. */
export function foreignPercent(
  busyDelta: number,
  ownDelta: number,
  wallSeconds: number,
  hz: number,
): number {
  if (!(wallSeconds > 0)) return 0;
  return Math.max(0, ((busyDelta - ownDelta) / (wallSeconds * hz)) * 100);
}

interface Sample {
  busy: number;
  own: number;
  at: number;
}

/** CPU ticks of this process tree so far, exited descendants included. */
export function ownTicks(): number {
  return treeTicks([process.pid], readProcessTable(), true);
}

function sample(): Sample {
  return {
    busy: parseBusyTicks(readFileSync('/proc/stat', 'latin1')),
    own: ownTicks(),
    at: performance.now(),
  };
}

/** Measures others' CPU from construction to `read()`. */
export class ForeignCpu {
  private readonly start = sample();

  read(): number {
    const end = sample();
    return foreignPercent(
      end.busy - this.start.busy,
      end.own - this.start.own,
      (end.at - this.start.at) / 1000,
      clockTicksPerSecond(),
    );
  }
}

export interface GateResult {
  quiet: boolean;
  waitedSeconds: number;
  /** Others' CPU over the last second sampled, % of one core. */
  foreignPercent: number;
}

/**
 * Waits until others used less than `maxPercent` of a core for one whole second, or gives up
 * after `maxWaitSeconds` (the measurement then runs anyway and its foreign CPU says so).
 */
export async function waitForQuiet(
  maxPercent: number,
  maxWaitSeconds: number,
): Promise<GateResult> {
  const t0 = performance.now();
  for (;;) {
    const w = new ForeignCpu();
    await new Promise((r) => setTimeout(r, 1000));
    const foreign = w.read();
    const waited = (performance.now() - t0) / 1000;
    if (foreign < maxPercent)
      return { quiet: true, waitedSeconds: waited, foreignPercent: foreign };
    if (waited >= maxWaitSeconds)
      return { quiet: false, waitedSeconds: waited, foreignPercent: foreign };
  }
}
