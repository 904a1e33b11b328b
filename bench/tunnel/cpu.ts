// CPU time of a tunnel's daemons, from /proc/PID/stat. A daemon may be wrapped (`ip netns exec`)
// or run helpers as child processes, so a path's cost is the sum over the process trees rooted at
// the PIDs we started. /proc/PID/stat already sums every thread of a process.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export class ProcStatError extends Error {
  override name = 'ProcStatError';
}

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime, in clock ticks. */
  ticks: number;
  /** cutime + cstime: what its children that it has waited for used. */
  childTicks: number;
}

/** Parses one /proc/PID/stat line. The command name may hold spaces and ')' — split at the last ')'. */
export function parseProcStat(line: string): ProcStat {
  const open = line.indexOf(' (');
  const close = line.lastIndexOf(')');
  if (open < 0 || close < open)
    throw new ProcStatError(`not a /proc stat line: ${line.slice(0, 80)}`);
  const pid = Number(line.slice(0, open));
  // After ") ": state(3) ppid(4) pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  // utime(14) stime(15): indexes 0, 1 and 11, 12 here.
  const f = line
    .slice(close + 2)
    .trim()
    .split(/\s+/);
  const ppid = Number(f[1]);
  const utime = Number(f[11]);
  const stime = Number(f[12]);
  // cutime(16) cstime(17); absent in a truncated line, which then only lacks the children.
  const cutime = Number(f[13] ?? 0);
  const cstime = Number(f[14] ?? 0);
  if (![pid, ppid, utime, stime, cutime, cstime].every(Number.isInteger)) {
    throw new ProcStatError(`malformed /proc stat line: ${line.slice(0, 80)}`);
  }
  return { pid, ppid, ticks: utime + stime, childTicks: cutime + cstime };
}

/**
 * Sum of ticks over `roots` and all their descendants in `table`; with `reaped`, also the time of
 * descendants that already exited (each was waited for by a parent in the tree, which holds its
 * time in cutime/cstime; a process's time is in exactly one place, so nothing counts twice).
 */
export function treeTicks(
  roots: readonly number[],
  table: readonly ProcStat[],
  reaped = false,
): number {
  const children = new Map<number, ProcStat[]>();
  const byPid = new Map<number, ProcStat>();
  for (const p of table) {
    byPid.set(p.pid, p);
    const list = children.get(p.ppid);
    if (list) list.push(p);
    else children.set(p.ppid, [p]);
  }
  const seen = new Set<number>();
  const stack = [...roots];
  let sum = 0;
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    if (seen.has(pid)) continue;
    seen.add(pid);
    const p = byPid.get(pid);
    if (p !== undefined) sum += p.ticks + (reaped ? p.childTicks : 0);
    for (const c of children.get(pid) ?? []) stack.push(c.pid);
  }
  return sum;
}

/** Every process visible now (processes that vanish while we read are skipped). */
export function readProcessTable(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      out.push(parseProcStat(readFileSync(`/proc/${name}/stat`, 'latin1')));
    } catch {
      // exited between readdir and read
    }
  }
  return out;
}

let hz: number | undefined;

export function clockTicksPerSecond(): number {
  if (hz === undefined) {
    const v = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    hz = Number.isInteger(v) && v > 0 ? v : 100;
  }
  return hz;
}

/** CPU seconds of the process trees rooted at `roots`. */
export function cpuSeconds(roots: readonly number[]): number {
  return treeTicks(roots, readProcessTable()) / clockTicksPerSecond();
}

/** CPU seconds spent per gigabit delivered; undefined when nothing was delivered. */
export function cpuPerGbit(cpuSec: number, bytes: number): number | undefined {
  if (!(bytes > 0)) return undefined;
  return cpuSec / ((bytes * 8) / 1e9);
}
