// The load run's two figures, from its report: setup latency over the run (per second: median and
// worst) and the data plane's RSS over the run, with the phases' start times named in the legend.
import { lineChart } from '../chart/svg.js';
import type { LoadReport } from './report.js';

export interface LoadCharts {
  setupLatency: string;
  rss: string;
}

export function loadCharts(r: LoadReport): LoadCharts {
  const over = r.setupOverTime;
  const what = `${r.options.scenario}, ${r.options.tunnels} tunnels`;
  const setupLatency = lineChart({
    title: `Tunnel setup latency over the run (${what})`,
    xLabel: 'seconds since the first setup started',
    yLabel: 'setup latency (ms)',
    yLog: true,
    series: [
      { name: 'median per second', points: over.map((b) => [b.t, b.p50Ms] as const) },
      { name: 'worst per second', points: over.map((b) => [b.t, b.maxMs] as const) },
    ],
  });
  const rss = lineChart({
    title: `Data plane RSS over the run (${what})`,
    xLabel: 'seconds since the benchmark started',
    yLabel: 'RSS (MB)',
    series: [
      {
        name: 'data plane RSS',
        points: r.dataplane.rss.map((s) => [s.t / 1000, Math.round(s.rssKb / 102.4) / 10] as const),
      },
    ],
  });
  return { setupLatency, rss };
}
