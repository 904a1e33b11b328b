import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkCell } from './network.js';
import { addedLatency, lossChart, networkTable } from './report.js';

const cell = (over: Partial<NetworkCell>): NetworkCell => ({
  profile: 'random 5%',
  fec: 'off',
  scheme: 'off',
  nominalLossPercent: 5,
  linkLossPercent: 5.1,
  sent: 1000,
  upDelivered: 950,
  downDelivered: 900,
  upLossPercent: 5,
  downLossPercent: 5.26,
  deliveredLossPercent: 5.13,
  goodputMbps: 9.1,
  rttP50Ms: 22,
  rttP99Ms: 40,
  upP50Ms: 11,
  upP99Ms: 20,
  downP50Ms: 11,
  downP99Ms: 20,
  overheadUpPercent: 0,
  overheadDownPercent: 0,
  recoveredUp: 0,
  recoveredDown: 0,
  measuredSeconds: 10,
  ...over,
});

const cells: NetworkCell[] = [
  cell({ profile: 'random 0%', nominalLossPercent: 0, deliveredLossPercent: 0 }),
  cell({
    profile: 'random 0%',
    fec: 'rs',
    scheme: 'rs',
    nominalLossPercent: 0,
    deliveredLossPercent: 0,
  }),
  cell({}),
  cell({
    fec: 'rs',
    scheme: 'rs',
    deliveredLossPercent: 0.4,
    rttP50Ms: 23.5,
    rttP99Ms: 55,
    overheadUpPercent: 22.5,
    overheadDownPercent: 19,
    recoveredUp: 48,
    recoveredDown: 51,
  }),
  cell({ fec: 'xor', scheme: 'rs' }),
  cell({ profile: 'bursty 3.8%', nominalLossPercent: 3.85, deliveredLossPercent: 3.9 }),
  cell({
    profile: 'bursty 3.8%',
    fec: 'rs',
    scheme: 'rs',
    nominalLossPercent: 3.85,
    deliveredLossPercent: 2.1,
  }),
];

test('added latency is against the same profile without FEC', () => {
  assert.deepEqual(addedLatency(cells[3], cells), { p50: 1.5, p99: 15 });
  assert.equal(addedLatency(cell({ profile: 'random 1%', fec: 'rs' }), cells), undefined);
});

test('the table shows both directions, FEC-only columns blank without FEC, and a wrong scheme', () => {
  const text = networkTable(cells);
  const rs5 = text.split('\n').find((l) => l.startsWith('random 5%') && / rs /.test(l));
  assert.ok(rs5 !== undefined, text);
  assert.match(rs5, /0\.400% \(5\.00 \/ 5\.26\)/);
  assert.match(rs5, /\+1\.5 \/ \+15\.0 ms/);
  assert.match(rs5, /22\.5% \/ 19\.0%/);
  assert.match(rs5, /48 \/ 51/);
  assert.match(text, /xor \(got rs\)/);
  const md = networkTable(cells, true);
  const lines = md.trim().split('\n');
  assert.match(lines[1], /^\| --- \| --- \| ---: \|/);
  assert.equal(lines.length, cells.length + 2);
  assert.ok(lines.every((l) => l.startsWith('| ') && l.endsWith(' |')));
});

test('the chart has a line per mode over random loss and separate bursty points', () => {
  const svg = lossChart(cells);
  const names = [...svg.matchAll(/<g class="series" data-name="([^"]+)"/g)].map((m) => m[1]);
  assert.deepEqual(names, [
    'FEC off',
    'Reed–Solomon',
    'XOR',
    'FEC off, bursty (GE)',
    'Reed–Solomon, bursty (GE)',
  ]);
  // Random: off and rs have two points each (a line), xor one; bursty one point each.
  assert.equal(svg.match(/<path /g)?.length, 2);
  // Zero delivered loss on the log axis is drawn hollow, not dropped.
  assert.equal(svg.match(/fill="#ffffff" stroke=/g)?.length, 2);
});
