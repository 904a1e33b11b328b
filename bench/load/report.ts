// The figures of one run, computed from the generator's result and the data plane samples, and
// printed as a table. Pure, so the arithmetic is tested.
import type { LoadOptions } from './args.js';
import { LatencyHistogram, percentile } from './histogram.js';
import { busiestThreadCores, TICKS_PER_SECOND, type ProcSample } from './procstat.js';
import type { ThreadResult } from './wire.js';

export interface LoadReport {
  date: string;
  command: string;
  machine: { cpus: number; model: string; loadavg: number[] };
  options: LoadOptions;
  setup: {
    attempted: number;
    opened: number;
    ready: number;
    /** Tunnels ready per second over the ramp (first setup start → last ready). */
    ratePerS: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    /** The part of setup until connect() resolved (QUIC + mTLS + HTTP/3 + CONNECT-IP 2xx). */
    connectP50Ms: number | null;
    connectP99Ms: number | null;
  };
  /** ICMP echo to the server's tunnel address (answered by its kernel). */
  echo: {
    sent: number;
    received: number;
    lossPercent: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    p999Ms: number | null;
  };
  /** UDP echo through the server's TUN to the responder and back (sequenced, per tunnel). */
  udp: {
    sent: number;
    received: number;
    duplicates: number;
    lossPercent: number | null;
    p50Ms: number | null;
    p99Ms: number | null;
    p999Ms: number | null;
  };
  /** Tunnels closed and reopened during the hold (churn and mix). */
  reopened: number;
  /** Setup latency per second of the run (from the first setup start), for the chart. */
  setupOverTime: { t: number; count: number; p50Ms: number; maxMs: number }[];
  errors: Record<string, number>;
  /** After the run: what the server still held (churn is where a leak shows). */
  leaks?: LeakCheck;
  /**
   * CPU ms each process spent per tunnel set up, over the ramp (the ramp also carries the echoes
   * of tunnels already up, so this is an upper bound).
   */
  cpuMsPerSetup: {
    dataplane: number | null;
    controlplane: number | null;
    generator: number | null;
  };
  dataplane: {
    idleRssKb: number | null;
    peakRssKb: number | null;
    /** RSS at the end of the hold above the idle baseline, divided by the tunnels open then. */
    rssPerTunnelKb: number | null;
    /** Cores used by the data plane during the ramp and the hold (1.0 = one core). */
    rampCpuCores: number | null;
    holdCpuCores: number | null;
    /** Least-squares slope of RSS over the hold, kB per minute: ~0 when flat. */
    holdRssSlopeKbPerMin: number | null;
    rss: { t: number; rssKb: number }[];
  };
  /** The load generator's own CPU: when it nears the machine's cores, it is the bottleneck. */
  generator: { rampCpuCores: number | null; holdCpuCores: number | null };
  /** Cores of each process's busiest thread, ramp / hold: ~1.0 = a saturated event loop. */
  busiestThread: Record<'dataplane' | 'controlplane' | 'generator', [number | null, number | null]>;
  /** The control plane answers one Authorize per tunnel setup. */
  controlplane: { rampCpuCores: number | null; holdCpuCores: number | null };
}

export interface LeakCheck {
  /** Data plane gauges summed over workers; every one should be 0 once all tunnels closed. */
  server:
    | {
        activeConnections: number | undefined;
        workerSessions: number | undefined;
        quicConnections: number | undefined;
        ringDepth: number | undefined;
      }
    | undefined;
  /** Seconds after the last close until every gauge read 0 (null: not within the wait). */
  drainedAfterS: number | null;
  fds: { idle: number | null; afterDrain: number | null };
  /** IPv4 pool leases before provisioning and after the devices were removed. */
  leased: { before: number | null; after: number | null };
  rssKb: { idle: number | null; afterDrain: number | null };
  clean: boolean;
  problems: string[];
}

/** /proc samples of both processes taken when the generator entered each phase. */
export type PhaseMarks = Partial<
  Record<
    'ramp' | 'hold' | 'drain',
    { dataplane?: ProcSample; generator?: ProcSample; controlplane?: ProcSample }
  >
>;

const ms = (us: number | undefined): number | null =>
  us === undefined ? null : Math.round(us) / 1000;

export function cpuCores(a: ProcSample, b: ProcSample): number | null {
  const dt = (b.t - a.t) / 1000;
  if (dt <= 0) return null;
  return (b.cpuTicks - a.cpuTicks) / TICKS_PER_SECOND / dt;
}

export function buildReport(input: {
  options: LoadOptions;
  command: string;
  machine: LoadReport['machine'];
  result: ThreadResult;
  idle?: ProcSample;
  marks: PhaseMarks;
  openAtHoldEnd: number;
  samples: readonly ProcSample[];
  leaks?: LeakCheck;
}): LoadReport {
  const r = input.result;
  const udpRtt = LatencyHistogram.fromWire(r.udpRtt);
  const setup = LatencyHistogram.fromWire(r.setup);
  const connect = LatencyHistogram.fromWire(r.connect);
  const rtt = LatencyHistogram.fromWire(r.rtt);
  const rampS = (r.rampLastReadyMs - r.rampFirstStartMs) / 1000;
  const { idle, marks } = input;
  const holdEnd = marks.drain?.dataplane;
  const cores = (
    who: 'dataplane' | 'generator' | 'controlplane',
    from: 'ramp' | 'hold',
    to: 'hold' | 'drain',
  ): number | null => {
    const a = marks[from]?.[who];
    const b = marks[to]?.[who];
    return a === undefined || b === undefined ? null : round2(cpuCores(a, b));
  };
  const busiest = (
    who: 'dataplane' | 'generator' | 'controlplane',
  ): [number | null, number | null] => {
    const at = (from: 'ramp' | 'hold', to: 'hold' | 'drain'): number | null => {
      const a = marks[from]?.[who];
      const b = marks[to]?.[who];
      const v = a === undefined || b === undefined ? undefined : busiestThreadCores(a, b);
      return v === undefined ? null : round2(v);
    };
    return [at('ramp', 'hold'), at('hold', 'drain')];
  };
  const perSetup = (who: 'dataplane' | 'generator' | 'controlplane'): number | null => {
    const a = marks.ramp?.[who];
    const b = marks.hold?.[who];
    if (a === undefined || b === undefined || r.rampReady === 0) return null;
    return (
      Math.round((((b.cpuTicks - a.cpuTicks) / TICKS_PER_SECOND) * 1000 * 10) / r.rampReady) / 10
    );
  };
  return {
    date: new Date().toISOString(),
    command: input.command,
    machine: input.machine,
    options: input.options,
    setup: {
      attempted: r.attempted,
      opened: r.opened,
      ready: r.ready,
      ratePerS: r.rampReady > 1 && rampS > 0 ? Math.round((r.rampReady / rampS) * 10) / 10 : null,
      p50Ms: ms(setup.quantile(0.5)),
      p99Ms: ms(setup.quantile(0.99)),
      connectP50Ms: ms(connect.quantile(0.5)),
      connectP99Ms: ms(connect.quantile(0.99)),
    },
    echo: {
      sent: r.echoesSent,
      received: r.echoesReceived,
      lossPercent:
        r.echoesSent > 0
          ? Math.round((1 - r.echoesReceived / r.echoesSent) * 100_000) / 1000
          : null,
      p50Ms: ms(rtt.quantile(0.5)),
      p99Ms: ms(rtt.quantile(0.99)),
      p999Ms: ms(rtt.quantile(0.999)),
    },
    udp: {
      sent: r.udpSent,
      received: r.udpReceived,
      duplicates: r.udpDuplicates,
      lossPercent:
        r.udpSent > 0 ? Math.round((1 - r.udpReceived / r.udpSent) * 100_000) / 1000 : null,
      p50Ms: ms(udpRtt.quantile(0.5)),
      p99Ms: ms(udpRtt.quantile(0.99)),
      p999Ms: ms(udpRtt.quantile(0.999)),
    },
    reopened: r.reopened,
    setupOverTime: perSecond(r.setupTimeline),
    errors: r.errors,
    ...(input.leaks === undefined ? {} : { leaks: input.leaks }),
    cpuMsPerSetup: {
      dataplane: perSetup('dataplane'),
      controlplane: perSetup('controlplane'),
      generator: perSetup('generator'),
    },
    dataplane: {
      idleRssKb: idle?.rssKb ?? null,
      peakRssKb: input.samples.length > 0 ? Math.max(...input.samples.map((s) => s.rssKb)) : null,
      rssPerTunnelKb:
        idle !== undefined && holdEnd !== undefined && input.openAtHoldEnd > 0
          ? Math.round(((holdEnd.rssKb - idle.rssKb) / input.openAtHoldEnd) * 10) / 10
          : null,
      rampCpuCores: cores('dataplane', 'ramp', 'hold'),
      holdCpuCores: cores('dataplane', 'hold', 'drain'),
      holdRssSlopeKbPerMin: rssSlope(
        input.samples,
        marks.hold?.dataplane?.t,
        marks.drain?.dataplane?.t,
      ),
      rss: input.samples.map((s) => ({ t: s.t, rssKb: s.rssKb })),
    },
    generator: {
      rampCpuCores: cores('generator', 'ramp', 'hold'),
      holdCpuCores: cores('generator', 'hold', 'drain'),
    },
    busiestThread: {
      dataplane: busiest('dataplane'),
      controlplane: busiest('controlplane'),
      generator: busiest('generator'),
    },
    controlplane: {
      rampCpuCores: cores('controlplane', 'ramp', 'hold'),
      holdCpuCores: cores('controlplane', 'hold', 'drain'),
    },
  };
}

/** Setup latencies ([start epoch ms, latency ms] pairs) grouped by second since the first start. */
export function perSecond(
  timeline: readonly number[],
): { t: number; count: number; p50Ms: number; maxMs: number }[] {
  if (timeline.length < 2) return [];
  let first = Infinity;
  for (let i = 0; i < timeline.length; i += 2) first = Math.min(first, timeline[i]);
  const buckets = new Map<number, number[]>();
  for (let i = 0; i + 1 < timeline.length; i += 2) {
    const t = Math.floor((timeline[i] - first) / 1000);
    let b = buckets.get(t);
    if (b === undefined) buckets.set(t, (b = []));
    b.push(timeline[i + 1]);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([t, v]) => ({
      t,
      count: v.length,
      p50Ms: percentile(v, 0.5) as number,
      maxMs: Math.max(...v),
    }));
}

/** Least-squares slope of RSS (kB per minute) over the samples in [from, to] ms; null if < 3. */
export function rssSlope(
  samples: readonly ProcSample[],
  from: number | undefined,
  to: number | undefined,
): number | null {
  if (from === undefined || to === undefined) return null;
  const s = samples.filter((x) => x.t >= from && x.t <= to);
  if (s.length < 3) return null;
  const n = s.length;
  const mt = s.reduce((a, x) => a + x.t, 0) / n;
  const mr = s.reduce((a, x) => a + x.rssKb, 0) / n;
  let num = 0;
  let den = 0;
  for (const x of s) {
    num += (x.t - mt) * (x.rssKb - mr);
    den += (x.t - mt) ** 2;
  }
  return den === 0 ? null : Math.round((num / den) * 60_000 * 10) / 10;
}

function round2(v: number | null): number | null {
  return v === null ? null : Math.round(v * 100) / 100;
}

const show = (v: number | null, unit = ''): string => (v === null ? '—' : `${v}${unit}`);

export function formatTable(r: LoadReport): string {
  const rows: [string, string][] = [
    ['scenario', `${r.options.scenario}${r.reopened > 0 ? ` (${r.reopened} reopened)` : ''}`],
    [
      'tunnels (ready / opened / attempted)',
      `${r.setup.ready} / ${r.setup.opened} / ${r.setup.attempted}`,
    ],
    ['setup rate achieved', show(r.setup.ratePerS, ' /s')],
    ['setup latency p50 / p99', `${show(r.setup.p50Ms, ' ms')} / ${show(r.setup.p99Ms, ' ms')}`],
    [
      '  of which connect() p50 / p99',
      `${show(r.setup.connectP50Ms, ' ms')} / ${show(r.setup.connectP99Ms, ' ms')}`,
    ],
    [
      'ICMP echoes delivered / sent',
      `${r.echo.received} / ${r.echo.sent} (loss ${show(r.echo.lossPercent, '%')})`,
    ],
    [
      'ICMP echo RTT p50 / p99 / p99.9 (hold)',
      `${show(r.echo.p50Ms, ' ms')} / ${show(r.echo.p99Ms, ' ms')} / ${show(r.echo.p999Ms, ' ms')}`,
    ],
    [
      'UDP echoes delivered / sent',
      `${r.udp.received} / ${r.udp.sent} (loss ${show(r.udp.lossPercent, '%')}, ${r.udp.duplicates} duplicates)`,
    ],
    [
      'UDP echo RTT p50 / p99 / p99.9 (hold)',
      `${show(r.udp.p50Ms, ' ms')} / ${show(r.udp.p99Ms, ' ms')} / ${show(r.udp.p999Ms, ' ms')}`,
    ],
    [
      'data plane RSS idle / peak',
      `${show(r.dataplane.idleRssKb, ' kB')} / ${show(r.dataplane.peakRssKb, ' kB')}`,
    ],
    ['RSS per tunnel above idle', show(r.dataplane.rssPerTunnelKb, ' kB')],
    ['RSS slope over the hold', show(r.dataplane.holdRssSlopeKbPerMin, ' kB/min')],
    [
      'data plane CPU ramp / hold',
      `${show(r.dataplane.rampCpuCores, ' cores')} / ${show(r.dataplane.holdCpuCores, ' cores')}`,
    ],
    [
      'control plane CPU ramp / hold',
      `${show(r.controlplane.rampCpuCores, ' cores')} / ${show(r.controlplane.holdCpuCores, ' cores')}`,
    ],
    [
      'load generator CPU ramp / hold',
      `${show(r.generator.rampCpuCores, ' cores')} / ${show(r.generator.holdCpuCores, ' cores')}`,
    ],
  ];
  const b = r.busiestThread;
  rows.push([
    'busiest thread ramp / hold: data / ctl / gen',
    [b.dataplane, b.controlplane, b.generator]
      .map(([ramp, hold]) => `${show(ramp)}/${show(hold)}`)
      .join(' · ') + ' cores',
  ]);
  const c = r.cpuMsPerSetup;
  rows.push([
    'CPU per setup: data / control / generator',
    `${show(c.dataplane, ' ms')} / ${show(c.controlplane, ' ms')} / ${show(c.generator, ' ms')}`,
  ]);
  const l = r.leaks;
  if (l !== undefined) {
    const g = l.server;
    rows.push([
      'after drain: connections / sessions / QUIC / ring depth',
      g === undefined
        ? 'metrics unreadable'
        : [g.activeConnections, g.workerSessions, g.quicConnections, g.ringDepth]
            .map((v) => show(v ?? null))
            .join(' / '),
    ]);
    rows.push(['server drained after', show(l.drainedAfterS, ' s')]);
    rows.push([
      'data plane fds idle / after drain',
      `${show(l.fds.idle)} / ${show(l.fds.afterDrain)}`,
    ]);
    rows.push([
      'pool leases before / after removal',
      `${show(l.leased.before)} / ${show(l.leased.after)}`,
    ]);
    rows.push(['leak check', l.clean ? 'clean' : l.problems.join('; ')]);
  }
  const errors = Object.entries(r.errors).sort((a, b) => b[1] - a[1]);
  if (errors.length === 0) rows.push(['errors', 'none']);
  for (const [reason, n] of errors) rows.push([`error ×${n}`, reason]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return [
    `| ${'measure'.padEnd(w)} | value |`,
    `| ${'-'.repeat(w)} | --- |`,
    ...rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v} |`),
    '',
  ].join('\n');
}
