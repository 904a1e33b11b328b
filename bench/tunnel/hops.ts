// Where a ping's round trip goes: tcpdump on the four interfaces a tunnelled ping crosses (client
// TUN, client veth, server veth, server TUN) timestamps each crossing, and matching them per echo
// sequence number splits the RTT into hops: client out (TUN → wire: the client's read, encrypt,
// send), server in (wire → TUN: the shard, the ring, the writer thread), the kernel's answer,
// server out (TUN → wire: the reader thread, the ring, the shard), client in (wire → TUN).
// The parsers and the matching are pure; `captureHops` drives tcpdump on a live path.
import type { Proc, Topology } from '../../test/e2e/netns.js';
import { percentile } from './ping.js';

export type Capture =
  | { t: number; kind: 'echo'; type: 'request' | 'reply'; seq: number }
  | { t: number; kind: 'udp'; from: string; to: string; length: number };

/** One line of `tcpdump -n -tt -l` (IPv4), or undefined for lines about anything else. */
export function parseTcpdumpLine(line: string): Capture | undefined {
  const m = /^(\d+\.\d+) IP (\S+) > (\S+): (.*)$/.exec(line.trim());
  if (!m) return undefined;
  const t = Number(m[1]);
  const rest = m[4];
  const echo = /^ICMP echo (request|reply), id \d+, seq (\d+)/.exec(rest);
  if (echo) return { t, kind: 'echo', type: echo[1] as 'request' | 'reply', seq: Number(echo[2]) };
  const udp = /^UDP, length (\d+)/.exec(rest);
  if (udp)
    return { t, kind: 'udp', from: m[2], to: m[3].replace(/:$/, ''), length: Number(udp[1]) };
  return undefined;
}

export function parseCaptures(text: string): Capture[] {
  const out: Capture[] = [];
  for (const line of text.split('\n')) {
    const c = parseTcpdumpLine(line);
    if (c !== undefined) out.push(c);
  }
  return out;
}

export const HOPS = [
  'clientOut',
  'wireOut',
  'serverIn',
  'kernel',
  'serverOut',
  'wireIn',
  'clientIn',
] as const;
export type Hop = (typeof HOPS)[number];

export interface HopCaptures {
  clientTun: readonly Capture[];
  clientWire: readonly Capture[];
  serverWire: readonly Capture[];
  serverTun: readonly Capture[];
  /** The client's underlay address: UDP from it goes towards the server. */
  clientAddr: string;
  /** UDP payloads shorter than this are not the tunnelled ping (ACK-only packets, keep-alives). */
  minUdpLength: number;
}

/** Seconds per hop for every echo whose eight crossings were all found. */
export function matchHops(c: HopCaptures): Record<Hop, number>[] {
  const echo = (list: readonly Capture[], type: 'request' | 'reply') => {
    const m = new Map<number, number>();
    for (const x of list)
      if (x.kind === 'echo' && x.type === type && !m.has(x.seq)) m.set(x.seq, x.t);
    return m;
  };
  const udp = (list: readonly Capture[], up: boolean) =>
    list
      .filter(
        (x): x is Extract<Capture, { kind: 'udp' }> =>
          x.kind === 'udp' &&
          x.length >= c.minUdpLength &&
          x.from.startsWith(`${c.clientAddr}.`) === up,
      )
      .map((x) => x.t);
  const firstAtOrAfter = (times: readonly number[], t: number) => times.find((x) => x >= t);
  const reqC = echo(c.clientTun, 'request');
  const repC = echo(c.clientTun, 'reply');
  const reqS = echo(c.serverTun, 'request');
  const repS = echo(c.serverTun, 'reply');
  const upC = udp(c.clientWire, true);
  const upS = udp(c.serverWire, true);
  const downS = udp(c.serverWire, false);
  const downC = udp(c.clientWire, false);
  const out: Record<Hop, number>[] = [];
  for (const [seq, a] of reqC) {
    const d = reqS.get(seq);
    const e = repS.get(seq);
    const h = repC.get(seq);
    if (d === undefined || e === undefined || h === undefined) continue;
    const b = firstAtOrAfter(upC, a);
    const cc = b === undefined ? undefined : firstAtOrAfter(upS, b);
    const f = firstAtOrAfter(downS, e);
    const g = f === undefined ? undefined : firstAtOrAfter(downC, f);
    if (b === undefined || cc === undefined || f === undefined || g === undefined) continue;
    // A crossing out of order means the matching picked another packet: leave the echo out.
    if (!(a <= b && b <= cc && cc <= d && d <= e && e <= f && f <= g && g <= h)) continue;
    out.push({
      clientOut: b - a,
      wireOut: cc - b,
      serverIn: d - cc,
      kernel: e - d,
      serverOut: f - e,
      wireIn: g - f,
      clientIn: h - g,
    });
  }
  return out;
}

export interface HopSummary {
  echoes: number;
  /** Milliseconds: p50 and p90 per hop. */
  p50: Record<Hop, number>;
  p90: Record<Hop, number>;
}

export function summarizeHops(rows: readonly Record<Hop, number>[]): HopSummary | undefined {
  if (rows.length === 0) return undefined;
  const p50 = {} as Record<Hop, number>;
  const p90 = {} as Record<Hop, number>;
  for (const hop of HOPS) {
    const v = rows.map((r) => r[hop] * 1000);
    p50[hop] = percentile(v, 50);
    p90[hop] = percentile(v, 90);
  }
  return { echoes: rows.length, p50, p90 };
}

export interface HopDevices {
  clientTun: string;
  serverTun: string;
  clientVeth: string;
  serverVeth: string;
}

/**
 * Pings `target` `count` times at 20 ms intervals while tcpdump watches the four interfaces, and
 * returns the matched hops. `minUdpLength` separates the tunnelled echo from smaller packets.
 */
export async function captureHops(
  topo: Topology,
  devices: HopDevices,
  target: string,
  count: number,
  minUdpLength: number,
): Promise<HopSummary | undefined> {
  const dump = (ns: string, dev: string, filter: string): Proc =>
    topo.startCmd(ns, ['tcpdump', '-i', dev, '-n', '-tt', '-l', '--immediate-mode', filter]);
  const procs = [
    dump(topo.cli, devices.clientTun, 'icmp'),
    dump(topo.cli, devices.clientVeth, 'udp'),
    dump(topo.srv, devices.serverVeth, 'udp'),
    dump(topo.srv, devices.serverTun, 'icmp'),
  ];
  try {
    for (const p of procs) await p.waitFor(/listening on/, 10_000);
    await topo.exec(
      topo.cli,
      ['ping', '-n', '-c', String(count), '-i', '0.02', '-W', '1', target],
      {
        allowFail: true,
        timeoutMs: 30_000 + count * 100,
      },
    );
    // tcpdump flushes each line (-l); give the last ones a moment to arrive.
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    for (const p of procs) await p.stop(2_000);
  }
  return summarizeHops(
    matchHops({
      clientTun: parseCaptures(procs[0].output()),
      clientWire: parseCaptures(procs[1].output()),
      serverWire: parseCaptures(procs[2].output()),
      serverTun: parseCaptures(procs[3].output()),
      clientAddr: topo.cliAddr,
      minUdpLength,
    }),
  );
}
