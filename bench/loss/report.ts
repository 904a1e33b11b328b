// Tables and the chart of `masque-bench loss`: pure functions of the results.
import { lineChart, type Series } from '../chart/svg.js';
import type { NetworkCell } from './network.js';
import type { FecMode } from './profiles.js';
import type { LossResult } from './simulated.js';

const MODE_NAMES: Record<FecMode, string> = { off: 'FEC off', xor: 'XOR', rs: 'Reed–Solomon' };

function align(head: string[], body: string[][], leftColumns: number, markdown: boolean): string {
  if (markdown) {
    const row = (cells: string[]): string => `| ${cells.join(' | ')} |`;
    const rule = head.map((_, i) => (i < leftColumns ? '---' : '---:'));
    return [row(head), row(rule), ...body.map(row)].join('\n') + '\n';
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...body.map(line)].join('\n') + '\n';
}

export function simulatedTable(rows: readonly LossResult[]): string {
  const head = [
    'profile',
    'fec',
    'link loss',
    'delivered loss',
    'goodput',
    'added p50',
    'added p99',
    'overhead',
    'recovered',
  ];
  const body = rows.map((r) => [
    r.profile,
    r.fec,
    `${r.linkLossPercent.toFixed(2)}%`,
    `${r.deliveredLossPercent.toFixed(3)}%`,
    `${r.goodputMbps.toFixed(2)} Mbit/s`,
    `${r.addedLatencyP50Ms.toFixed(2)} ms`,
    `${r.addedLatencyP99Ms.toFixed(2)} ms`,
    `${r.overheadPercent.toFixed(1)}%`,
    String(r.recovered),
  ]);
  return align(head, body, 2, false);
}

/**
 * Latency FEC adds: the cell's round trip less the same profile's without FEC (undefined when
 * that cell was not run). A lost-and-recovered packet waits for its block's repair; without FEC
 * it is simply gone, so "off" has no such wait to count.
 */
export function addedLatency(
  cell: NetworkCell,
  all: readonly NetworkCell[],
): { p50: number; p99: number } | undefined {
  const off = all.find((c) => c.profile === cell.profile && c.fec === 'off');
  if (off === undefined) return undefined;
  return { p50: cell.rttP50Ms - off.rttP50Ms, p99: cell.rttP99Ms - off.rttP99Ms };
}

export function networkTable(cells: readonly NetworkCell[], markdown = false): string {
  const head = [
    'profile',
    'fec',
    'link loss',
    'delivered loss up / down',
    'goodput',
    'RTT p50 / p99',
    'added p50 / p99',
    'overhead up / down',
    'recovered up / down',
  ];
  const ms = (v: number): string => v.toFixed(1);
  const signed = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(1)}`;
  const body = cells.map((c) => {
    const added = addedLatency(c, cells);
    return [
      c.profile,
      c.fec === 'off' ? 'off' : c.scheme === c.fec ? c.fec : `${c.fec} (got ${c.scheme})`,
      `${c.linkLossPercent.toFixed(2)}%`,
      `${c.deliveredLossPercent.toFixed(3)}% (${c.upLossPercent.toFixed(2)} / ${c.downLossPercent.toFixed(2)})`,
      `${c.goodputMbps.toFixed(2)} Mbit/s`,
      `${ms(c.rttP50Ms)} / ${ms(c.rttP99Ms)} ms`,
      added === undefined || c.fec === 'off'
        ? '–'
        : `${signed(added.p50)} / ${signed(added.p99)} ms`,
      c.fec === 'off'
        ? '–'
        : `${c.overheadUpPercent.toFixed(1)}% / ${c.overheadDownPercent.toFixed(1)}%`,
      c.fec === 'off' ? '–' : `${c.recoveredUp} / ${c.recoveredDown}`,
    ];
  });
  return align(head, body, 2, markdown);
}

/**
 * Delivered loss against the link's nominal loss, one line per FEC mode over the random
 * profiles; the bursty profile gets one point per mode of its own (it is a different kind of
 * loss at the same mean, so joining it to the random line would mislead).
 */
export function lossChart(
  cells: readonly NetworkCell[],
  title = 'Delivered loss through the tunnel vs link loss',
): string {
  const series: Series[] = [];
  const modes = [...new Set(cells.map((c) => c.fec))];
  for (const bursty of [false, true]) {
    for (const mode of modes) {
      const points = cells
        .filter((c) => c.fec === mode && c.profile.startsWith('bursty') === bursty)
        .map((c) => [c.nominalLossPercent, c.deliveredLossPercent] as const);
      if (points.length === 0) continue;
      series.push({ name: `${MODE_NAMES[mode]}${bursty ? ', bursty (GE)' : ''}`, points });
    }
  }
  return lineChart({
    title,
    xLabel: 'link loss, each direction (%)',
    yLabel: 'delivered loss, one way (%)',
    yLog: true,
    series,
  });
}
