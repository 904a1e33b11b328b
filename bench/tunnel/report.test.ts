import { test } from 'node:test';
import assert from 'node:assert/strict';

import { computeRatios, formatTable, ratio, targets, type PathResult } from './report.js';

const ping = (avgMs: number) => ({
  transmitted: 50,
  received: 50,
  avgMs,
  p50Ms: avgMs,
  p99Ms: avgMs * 2,
});

const RESULTS: PathResult[] = [
  { path: 'veth', label: 'plain veth', tcp1: { mbps: 7000, bytes: 1 }, ping: ping(0.05) },
  {
    path: 'ours',
    label: 'masque-vpn',
    tcp1: { mbps: 600, bytes: 375e6, cpuPerGbit: 3 },
    tcp4: { mbps: 400, bytes: 1 },
    udp: { mbps: 300, bytes: 1, lostPercent: 5 },
    ping: ping(0.75),
  },
  {
    path: 'wg',
    label: 'wireguard-go',
    tcp1: { mbps: 500, bytes: 1, cpuPerGbit: 4 },
    tcp4: { mbps: 500, bytes: 1 },
    udp: { mbps: 0, bytes: 0 },
    ping: ping(0.5),
  },
  { path: 'ovpn', label: 'OpenVPN', error: 'openvpn did not start' },
];

test('ratio: a/b, undefined when a side is missing or b is zero', () => {
  assert.equal(ratio(3, 2), 1.5);
  assert.equal(ratio(undefined, 2), undefined);
  assert.equal(ratio(3, 0), undefined);
  assert.equal(ratio(Number.NaN, 2), undefined);
});

test('ratios ours/peer and the targets against wireguard-go', () => {
  const r = computeRatios(RESULTS);
  assert.equal(r.tcp1_ours_wg, 1.2);
  assert.equal(r.tcp4_ours_wg, 0.8);
  assert.equal(r.udp_ours_wg, undefined); // wg delivered nothing
  assert.equal(r.rtt_avg_ours_wg, 1.5);
  assert.equal(r.cpu_per_gbit_tcp1_ours_wg, 0.75);
  assert.equal(r.tcp1_ours_ovpn, undefined); // failed peer: no ratio, not a crash
  assert.deepEqual(
    targets(r).map((t) => t.met),
    [true, false, false],
  );
});

test('no ratios without our path', () => {
  assert.deepEqual(computeRatios(RESULTS.filter((x) => x.path !== 'ours')), {});
});

test('table: one row per path, errors shown, ratios and verdicts', () => {
  const text = formatTable(RESULTS, computeRatios(RESULTS));
  assert.match(
    text,
    /\| masque-vpn \| 600 \| 400 \| 300 \(5\.0% loss\) \| 0\.750 \/ 0\.750 \/ 1\.500 \|/,
  );
  assert.match(text, /OpenVPN \(error: openvpn did not start\)/);
  assert.match(text, /\| ours\/wg \| 1\.20 \| 0\.80 \| — \| 1\.50 \|/);
  assert.match(text, /TCP 1 stream >= 1\.0x wireguard-go: 1\.20x — met/);
  assert.match(text, /ping RTT avg <= 1\.0x wireguard-go: 1\.50x — NOT met/);
});
