import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { buildConfig } from '../../dataplane/daemon/config.js';
import type { ClientStatus } from '../../client/status.js';
import { isRoot } from '../../test/e2e/netns.js';
import {
  bundleFor,
  cellResult,
  dataplaneConfig,
  dataplaneCounters,
  parseProxyStats,
  runNetworkMatrix,
  sumMetric,
} from './network.js';
import { PROFILES, selectModes, selectProfiles } from './profiles.js';

const METRICS = `# HELP masque_vpn_client_bytes_total IP bytes
# TYPE masque_vpn_client_bytes_total counter
masque_vpn_client_bytes_total{client="a",direction="rx"} 100
masque_vpn_client_bytes_total{client="a",direction="tx"} 1000
masque_vpn_client_bytes_total{client="b",direction="tx"} 500
masque_vpn_client_bytes_total_other{direction="tx"} 7
masque_vpn_client_fec_overhead_bytes_total{client="a"} 120
masque_vpn_client_fec_recovered_total{client="a"} 3
masque_vpn_client_fec_recovered_total{client="b"} 4
`;

test('data plane counters sum every client and match names exactly', () => {
  assert.equal(sumMetric(METRICS, 'masque_vpn_client_bytes_total', { direction: 'tx' }), 1500);
  assert.equal(sumMetric(METRICS, 'masque_vpn_client_bytes_total'), 1600);
  assert.equal(sumMetric(METRICS, 'absent_total'), 0);
  assert.deepEqual(dataplaneCounters(METRICS), {
    txBytes: 1500,
    fecOverheadBytes: 120,
    fecRecovered: 7,
  });
});

test("the proxy's exit summary is read for both directions", () => {
  const out =
    'impair: 10.200.0.1:5443 → 10.200.0.1:4433\n' +
    'up   packets 1000  forwarded 940  lost 50  queue drops 10  reordered 0  (6.00% dropped)\n' +
    'down packets 2000  forwarded 1900  lost 100  queue drops 0  reordered 0  (5.00% dropped)\n';
  assert.deepEqual(parseProxyStats(out), { packets: 3000, dropped: 160 });
});

test('the bundle is pointed at the proxy and gets the [fec] the cell asks for', () => {
  const original =
    'version = 1\n\n[server]\nendpoints = ["10.200.0.1:4433"]\nname = "vpn.test"\n\n' +
    '[fec]\nenabled = false\nblock_size = 4\n\n[tls]\nca = "x"\n';
  const text = bundleFor(original, '10.200.0.1:5443', true, 10, 25, 40, 8);
  assert.match(text, /^endpoints = \["10\.200\.0\.1:5443"\]$/m);
  assert.match(
    text,
    /\[fec\]\nenabled = true\nblock_size = 10\nredundancy_percent = 25\nflush_ms = 40\ninterleave = 8\n/,
  );
  assert.equal(text.match(/\[fec\]/g)?.length, 1);
  assert.match(text, /\[tls\]\nca = "x"/);
  const without = bundleFor('version = 1\nendpoints = ["a:1"]\n', 'b:2', false, 8, 30);
  assert.match(
    without,
    /\[fec\]\nenabled = false\nblock_size = 8\nredundancy_percent = 30\nflush_ms = 5\ninterleave = 1\n$/,
  );
});

test("the data plane's config is one the data plane accepts, limited to the schemes given", () => {
  const c = buildConfig(dataplaneConfig(['xor'], 10, 25), {}, 'bench.toml');
  assert.equal(c.drain_seconds, 0);
  assert.deepEqual(c.fec.schemes, ['xor']);
  assert.equal(c.fec.enabled, true);
  assert.equal(c.fec.block_size, 10);
  assert.equal(c.fec.max_repair, 3);
  assert.equal(c.fec.max_redundancy_percent, 25);
  const rs = buildConfig(dataplaneConfig(['rs', 'xor'], 200, 40), {}, 'bench.toml');
  assert.equal(rs.fec.max_repair, 56, 'k + m stays within 256');
});

const status = (over: Partial<ClientStatus>): ClientStatus =>
  ({ bytesSent: 0, fec: null, ...over }) as ClientStatus;

test('a cell: one-way losses, goodput, overheads and recoveries from deltas', () => {
  const profile = PROFILES[2];
  const c = cellResult(
    profile,
    'rs',
    1200,
    {
      sent: 1000,
      echoed: 940,
      payloadBytes: 1172,
      measuredSeconds: 2,
      rttMs: { p50: 20, p99: 40 },
      downMs: { p50: 10, p99: 22 },
    },
    { received: 950, upMs: { p50: 10, p99: 20 } },
    {
      before: status({
        bytesSent: 10_000,
        fec: { scheme: 'rs', repairSent: 0, repairReceived: 0, recovered: 5, unrecoverable: 0 },
      }),
      after: status({
        bytesSent: 1_210_000,
        fec: {
          scheme: 'rs',
          repairSent: 200,
          repairReceived: 180,
          recovered: 45,
          unrecoverable: 1,
          overheadBytes: 240_000,
        },
      }),
    },
    {
      before: { txBytes: 0, fecOverheadBytes: 0, fecRecovered: 2 },
      after: { txBytes: 1_000_000, fecOverheadBytes: 150_000, fecRecovered: 52 },
    },
    { packets: 4000, dropped: 200 },
  );
  assert.equal(c.scheme, 'rs');
  assert.equal(c.nominalLossPercent, 5);
  assert.equal(c.linkLossPercent, 5);
  assert.equal(c.upLossPercent, 5);
  assert.ok(Math.abs(c.downLossPercent - (100 * 10) / 950) < 1e-9);
  assert.ok(Math.abs(c.deliveredLossPercent - (5 + (100 * 10) / 950) / 2) < 1e-9);
  // (950 + 940) / 2 packets of 1200 B over 2 s.
  assert.ok(Math.abs(c.goodputMbps - (945 * 1200 * 8) / 2 / 1e6) < 1e-9);
  assert.equal(c.overheadUpPercent, 20);
  assert.equal(c.overheadDownPercent, 15);
  assert.equal(c.recoveredUp, 50);
  assert.equal(c.recoveredDown, 40);
  assert.equal(c.rttP99Ms, 40);
});

test('profiles and modes are chosen by name; the bursty mean is p / (p + r)', () => {
  assert.deepEqual(
    selectProfiles('10,bursty,0').map((p) => p.name),
    ['random 10%', 'bursty 3.8%', 'random 0%'],
  );
  assert.throws(() => selectProfiles('3'), /unknown profile '3'/);
  assert.deepEqual(selectModes('rs,off'), ['rs', 'off']);
  assert.throws(() => selectModes('ldpc'), /unknown FEC mode/);
});

test('the real stack: FEC off vs XOR at 10% random loss', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const lines: string[] = [];
  const cells = await runNetworkMatrix({
    profiles: selectProfiles('10'),
    modes: ['off', 'xor'],
    rate: 500,
    size: 600,
    // Long enough for the adaptive controller to switch on (it samples every 200 ms) and for
    // 1,500 datagrams a cell; a 1.5 s window was at the mercy of the machine's load.
    seconds: 3,
    warmupSeconds: 1,
    delayMs: 2,
    blockSize: 5,
    redundancyPercent: 20,
    flushMs: 5,
    interleave: 1,
    seed: 5,
    log: (l) => lines.push(l),
  });
  const ns = /namespaces (\S+) (\S+)/.exec(lines[0]);
  assert.ok(ns !== null, lines.join('\n'));
  const left = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  assert.ok(!left.includes(ns[1]) && !left.includes(ns[2]), 'namespaces removed');
  const [off, xor] = cells;
  for (const c of cells) t.diagnostic(JSON.stringify(c));
  t.diagnostic(`load average ${loadavg().join(' ')}`);
  assert.equal(off.fec, 'off');
  assert.equal(off.scheme, 'off');
  assert.equal(xor.scheme, 'xor', 'the xor-only data plane agreed to XOR');
  assert.ok(off.linkLossPercent > 6 && xor.linkLossPercent > 6, 'the proxy dropped');
  assert.ok(off.deliveredLossPercent > 6, `off: ${off.deliveredLossPercent}%`);
  assert.ok(
    xor.deliveredLossPercent < off.deliveredLossPercent * 0.8,
    `xor ${xor.deliveredLossPercent}% vs off ${off.deliveredLossPercent}%`,
  );
  assert.ok(xor.recoveredUp + xor.recoveredDown > 0);
  assert.ok(xor.overheadUpPercent > 0 && xor.overheadDownPercent > 0);
  assert.equal(off.overheadUpPercent, 0);
});
