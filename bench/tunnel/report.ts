// Results of one `masque-bench tunnel` run: per-path figures, ratios ours/peer, and their text form.
import { HOPS, type HopSummary } from './hops.js';
import type { PingSummary } from './ping.js';

export type PathName = 'veth' | 'ours' | 'wg' | 'ovpn';

export interface FlowResult {
  mbps: number;
  bytes: number;
  /** CPU seconds of the path's daemons during the flow (summed over processes); absent for veth. */
  cpuSeconds?: number;
  /** Daemon CPU in % of one core during the flow. */
  cpuPercent?: number;
  /** CPU seconds per gigabit delivered. */
  cpuPerGbit?: number;
  retransmits?: number;
  lostPercent?: number;
  /** Others' CPU during the flow, % of one core (bench/tunnel/quiet.ts). */
  foreignPercent?: number;
}

export interface PathResult {
  path: PathName;
  label: string;
  tcp1?: FlowResult;
  tcp4?: FlowResult;
  udp?: FlowResult;
  ping?: PingSummary;
  /** 1-minute load average when the path's measurements started (the machine is shared). */
  load1?: number;
  /** Others' CPU during the ping, % of one core. */
  pingForeignPercent?: number;
  /** Per-hop split of the RTT (`--hops`). */
  hops?: HopSummary;
  /** Set when the path could not be brought up or measured; figures present are still valid. */
  error?: string;
}

export interface Ratios {
  /** ours/peer throughput (higher is better for us) and RTT (lower is better for us). */
  [key: string]: number | undefined;
}

/** a/b, or undefined when either side is missing, not finite, or b is zero. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) {
    return undefined;
  }
  return a / b;
}

export function computeRatios(results: readonly PathResult[]): Ratios {
  const by = new Map(results.map((r) => [r.path, r]));
  const ours = by.get('ours');
  const out: Ratios = {};
  for (const peer of ['wg', 'ovpn'] as const) {
    const p = by.get(peer);
    if (ours === undefined || p === undefined) continue;
    out[`tcp1_ours_${peer}`] = ratio(ours.tcp1?.mbps, p.tcp1?.mbps);
    out[`tcp4_ours_${peer}`] = ratio(ours.tcp4?.mbps, p.tcp4?.mbps);
    out[`udp_ours_${peer}`] = ratio(ours.udp?.mbps, p.udp?.mbps);
    out[`rtt_avg_ours_${peer}`] = ratio(ours.ping?.avgMs, p.ping?.avgMs);
    out[`rtt_p50_ours_${peer}`] = ratio(ours.ping?.p50Ms, p.ping?.p50Ms);
    out[`cpu_per_gbit_tcp1_ours_${peer}`] = ratio(ours.tcp1?.cpuPerGbit, p.tcp1?.cpuPerGbit);
  }
  return out;
}

/** The issue's targets against wireguard-go: TCP >= 1.0x and RTT <= 1.0x. */
export function targets(r: Ratios): { name: string; value?: number; met?: boolean }[] {
  const t = (name: string, key: string, ok: (v: number) => boolean) => {
    const value = r[key];
    return { name, value, met: value === undefined ? undefined : ok(value) };
  };
  return [
    t('TCP 1 stream >= 1.0x wireguard-go', 'tcp1_ours_wg', (v) => v >= 1),
    t('TCP 4 streams >= 1.0x wireguard-go', 'tcp4_ours_wg', (v) => v >= 1),
    t('ping RTT avg <= 1.0x wireguard-go', 'rtt_avg_ours_wg', (v) => v <= 1),
  ];
}

function f(v: number | undefined, digits = 0): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

function flow(x: FlowResult | undefined, withLoss = false): string {
  if (x === undefined) return '—';
  return withLoss && x.lostPercent !== undefined
    ? `${f(x.mbps)} (${f(x.lostPercent, 1)}% loss)`
    : f(x.mbps);
}

/** The most CPU others used during any of a path's measurements, % of one core. */
export function othersMax(r: PathResult): number | undefined {
  const v = [
    r.pingForeignPercent,
    r.tcp1?.foreignPercent,
    r.tcp4?.foreignPercent,
    r.udp?.foreignPercent,
  ].filter((x): x is number => x !== undefined);
  return v.length === 0 ? undefined : Math.max(...v);
}

/** A markdown table: one row per path, then the ratios. */
export function formatTable(results: readonly PathResult[], ratios: Ratios): string {
  const lines = [
    "| path | TCP 1 Mbit/s | TCP 4 Mbit/s | UDP Mbit/s | RTT avg / p50 / p99 ms | CPU % of a core (TCP 1 / TCP 4) | CPU s per Gbit (TCP 1 / TCP 4 / UDP) | load | others' CPU % (max) |",
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const p = r.ping;
    const rtt = p ? `${f(p.avgMs, 3)} / ${f(p.p50Ms, 3)} / ${f(p.p99Ms, 3)}` : '—';
    const cpu = r.path === 'veth' ? '—' : `${f(r.tcp1?.cpuPercent)} / ${f(r.tcp4?.cpuPercent)}`;
    const perGbit =
      r.path === 'veth'
        ? '—'
        : `${f(r.tcp1?.cpuPerGbit, 2)} / ${f(r.tcp4?.cpuPerGbit, 2)} / ${f(r.udp?.cpuPerGbit, 2)}`;
    const label = r.error ? `${r.label} (error: ${r.error.split('\n')[0].slice(0, 80)})` : r.label;
    lines.push(
      `| ${label} | ${flow(r.tcp1)} | ${flow(r.tcp4)} | ${flow(r.udp, true)} | ${rtt} | ${cpu} | ${perGbit} | ${f(r.load1, 1)} | ${f(othersMax(r))} |`,
    );
  }
  const peers = (['wg', 'ovpn'] as const).filter((p) => `tcp1_ours_${p}` in ratios);
  if (peers.length > 0) {
    lines.push(
      '',
      '| ratio ours/peer | TCP 1 | TCP 4 | UDP | RTT avg | RTT p50 | CPU per Gbit (TCP 1) |',
    );
    lines.push('| --- | --- | --- | --- | --- | --- | --- |');
    for (const p of peers) {
      const g = (k: string) => f(ratios[`${k}_ours_${p}`], 2);
      lines.push(
        `| ours/${p} | ${g('tcp1')} | ${g('tcp4')} | ${g('udp')} | ${g('rtt_avg')} | ${g('rtt_p50')} | ${g('cpu_per_gbit_tcp1')} |`,
      );
    }
  }
  const withHops = results.filter((r) => r.hops !== undefined);
  if (withHops.length > 0) {
    lines.push('', `| per-hop ms, p50 (p90) | echoes | ${HOPS.join(' | ')} |`);
    lines.push(`| --- | --- | ${HOPS.map(() => '---').join(' | ')} |`);
    for (const r of withHops) {
      const h = r.hops as HopSummary;
      lines.push(
        `| ${r.label} | ${h.echoes} | ${HOPS.map((k) => `${f(h.p50[k], 3)} (${f(h.p90[k], 3)})`).join(' | ')} |`,
      );
    }
  }
  const tg = targets(ratios).filter((t) => t.value !== undefined);
  if (tg.length > 0) {
    lines.push('');
    for (const t of tg) lines.push(`- ${t.name}: ${f(t.value, 2)}x — ${t.met ? 'met' : 'NOT met'}`);
  }
  return lines.join('\n') + '\n';
}
