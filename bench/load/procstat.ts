// Resource use of the data plane process, read from /proc. Parsers are pure; the reader is one
// function so the benchmark samples the process it started and nothing else.
import { readdirSync, readFileSync } from 'node:fs';
import { parseProcStat, ProcStatError } from '../tunnel/cpu.js';

/** VmRSS from /proc/PID/status, in kB; undefined when the line is absent. */
export function parseRssKb(status: string): number | undefined {
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m === null ? undefined : Number(m[1]);
}

/** utime + stime from /proc/PID/stat, in clock ticks (bench/tunnel/cpu.ts parses the line). */
export function parseCpuTicks(stat: string): number | undefined {
  try {
    return parseProcStat(stat).ticks;
  } catch (e) {
    if (e instanceof ProcStatError) return undefined;
    throw e;
  }
}

/** Linux USER_HZ: 100 on every architecture Node runs on. */
export const TICKS_PER_SECOND = 100;

export interface ProcSample {
  /** ms since the run started. */
  t: number;
  rssKb: number;
  cpuTicks: number;
  /** utime + stime per thread id, when asked for (phase marks only: it reads one file a thread). */
  threads?: Record<string, number>;
}

export function sampleProcess(pid: number, t: number, perThread = false): ProcSample | undefined {
  try {
    const rssKb = parseRssKb(readFileSync(`/proc/${pid}/status`, 'utf8'));
    const cpuTicks = parseCpuTicks(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    if (rssKb === undefined || cpuTicks === undefined) return undefined;
    if (!perThread) return { t, rssKb, cpuTicks };
    const threads: Record<string, number> = {};
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ticks = parseCpuTicks(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        if (ticks !== undefined) threads[tid] = ticks;
      } catch {
        // the thread ended between readdir and read
      }
    }
    return { t, rssKb, cpuTicks, threads };
  } catch {
    return undefined; // the process is gone
  }
}

/**
 * `ip netns exec` may run the command as its child rather than exec it: follow to the process
 * whose command line runs `script`.
 */
export function findProcess(pid: number, script: string): number | undefined {
  const seen = new Set<number>();
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift() as number;
    if (seen.has(p)) continue;
    seen.add(p);
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith(script))) return p;
      const kids = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const k of kids.split(/\s+/).filter(Boolean)) queue.push(Number(k));
    } catch {
      // gone
    }
  }
  return undefined;
}

/**
 * Cores used by the busiest thread between two samples: near 1.0 means one thread (an event loop)
 * is the bottleneck however many cores the machine has.
 */
export function busiestThreadCores(a: ProcSample, b: ProcSample): number | undefined {
  const dt = (b.t - a.t) / 1000;
  if (a.threads === undefined || b.threads === undefined || dt <= 0) return undefined;
  let best = 0;
  for (const [tid, ticks] of Object.entries(b.threads)) {
    const before = a.threads[tid] ?? 0;
    best = Math.max(best, (ticks - before) / TICKS_PER_SECOND / dt);
  }
  return best;
}
