import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseArgs, roleOf, MAX_HOLD_S, MAX_TUNNELS, type LoadOptions } from './args.js';
import { loadCharts } from './charts.js';
import { leakCheck } from './main.js';
import { UDP_PACKET_SIZE, parseUdpProbe, writeUdpProbe } from './udp.js';
import { LatencyHistogram, percentile } from './histogram.js';
import { internetChecksum } from '../../dataplane/masque/checksum.js';
import { ECHO_PACKET_SIZE, parseEchoReply, parseIpv4, writeEchoRequest } from './icmp.js';
import { busiestThreadCores, parseCpuTicks, parseRssKb } from './procstat.js';
import { shares } from './generator.js';
import { errorReason } from './wire.js';
import { buildReport, formatTable, perSecond, rssSlope } from './report.js';

test('percentile: nearest rank on raw samples', () => {
  const s = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(s, 0.5), 50);
  assert.equal(percentile(s, 0.99), 99);
  assert.equal(percentile(s, 1), 100);
  assert.equal(percentile(s, 0), 1);
  assert.equal(percentile([], 0.5), undefined);
  assert.equal(percentile([7], 0.999), 7);
});

test('histogram quantiles are within 2% of the exact percentile', () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: 1, max: 1e7, noNaN: true }), { minLength: 1, maxLength: 500 }),
      fc.constantFrom(0.5, 0.9, 0.99, 0.999),
      (values, q) => {
        const h = new LatencyHistogram();
        for (const v of values) h.record(v);
        const exact = percentile(values, q) as number;
        const approx = h.quantile(q) as number;
        assert.ok(Math.abs(approx - exact) / exact <= 0.021, `${approx} vs ${exact} at ${q}`);
      },
    ),
  );
});

test('histogram merge over the wire equals one histogram of all samples', () => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const all = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) {
    (i % 3 === 0 ? a : b).record(i * 7);
    all.record(i * 7);
  }
  const merged = LatencyHistogram.fromWire(a.toWire());
  merged.merge(LatencyHistogram.fromWire(JSON.parse(JSON.stringify(b.toWire()))));
  assert.equal(merged.count, 1000);
  for (const q of [0.5, 0.99, 0.999]) assert.equal(merged.quantile(q), all.quantile(q));
  assert.equal(new LatencyHistogram().quantile(0.5), undefined);
});

test('echo request: valid IPv4 and ICMP checksums, fields where ping puts them', () => {
  const out = new Uint8Array(64);
  const src = parseIpv4('10.77.0.5');
  const dst = parseIpv4('10.77.0.1');
  const len = writeEchoRequest(out, src, dst, 0x1234, 7, 123456.5);
  assert.equal(len, ECHO_PACKET_SIZE);
  const p = out.subarray(0, len);
  assert.equal(p[0], 0x45);
  assert.equal(p[9], 1);
  assert.equal(internetChecksum(p, 0, 20), 0);
  assert.equal(internetChecksum(p, 20, len - 20), 0);
  assert.equal(p[20], 8); // echo request
  assert.deepEqual([...p.subarray(12, 20)], [10, 77, 0, 5, 10, 77, 0, 1]);
  // Not a reply: the parser ignores requests.
  assert.equal(parseEchoReply(p), undefined);
});

/** What the server's kernel sends back: addresses swapped, type 0, ICMP checksum fixed. */
function replyTo(request: Uint8Array): Uint8Array {
  const r = request.slice();
  r.set(request.subarray(16, 20), 12);
  r.set(request.subarray(12, 16), 16);
  r[10] = r[11] = 0;
  const ip = internetChecksum(r, 0, 20);
  r[10] = ip >> 8;
  r[11] = ip & 0xff;
  r[20] = 0;
  r[22] = r[23] = 0;
  const icmp = internetChecksum(r, 20, r.length - 20);
  r[22] = icmp >> 8;
  r[23] = icmp & 0xff;
  return r;
}

test('echo reply round trip carries id, sequence and the send timestamp', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.integer({ min: 0, max: 0xffff }),
      fc.double({ min: 0, max: 1e12, noNaN: true }),
      (src, id, seq, sentUs) => {
        const out = new Uint8Array(ECHO_PACKET_SIZE);
        writeEchoRequest(out, src, 0x0a4d0001, id, seq, sentUs);
        const r = parseEchoReply(replyTo(out));
        assert.deepEqual(r, { src: 0x0a4d0001, dst: src, id, seq, sentUs });
      },
    ),
  );
});

test('echo reply parser: corrupt or foreign packets are ignored, never thrown on', () => {
  const out = new Uint8Array(ECHO_PACKET_SIZE);
  writeEchoRequest(out, parseIpv4('10.77.0.9'), parseIpv4('10.77.0.1'), 1, 1, 5);
  const good = replyTo(out);
  const bad = good.slice();
  bad[30] ^= 0xff; // payload bit flip: ICMP checksum fails
  assert.equal(parseEchoReply(bad), undefined);
  const udp = good.slice();
  udp[9] = 17;
  assert.equal(parseEchoReply(udp), undefined);
  assert.equal(parseEchoReply(good.subarray(0, 30)), undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      parseEchoReply(bytes);
    }),
  );
});

test('parseIpv4 rejects what is not a dotted quad', () => {
  assert.equal(parseIpv4('10.77.0.1'), 0x0a4d0001);
  for (const t of ['10.77.0', '10.77.0.256', 'a.b.c.d', '1.2.3.4.5', '']) {
    assert.throws(() => parseIpv4(t), RangeError);
  }
});

test('parseArgs: defaults, flags, bounds and per-scenario traffic defaults', () => {
  const d = parseArgs([]) as LoadOptions;
  assert.equal(d.tunnels, 100);
  assert.equal(d.scenario, 'hold');
  assert.equal(d.pps, 0, 'hold is idle: keep-alives only');
  assert.equal(d.icmpPps, 0);
  const o = parseArgs([
    '--tunnels',
    '200',
    '--rate',
    '50',
    '--seconds',
    '20',
    '--pps',
    '3',
    '--churn',
    '--workers',
    '1',
    '--max-pending',
    '8',
    '--json',
    '--save',
  ]) as LoadOptions;
  assert.deepEqual(o, {
    scenario: 'churn',
    tunnels: 200,
    rate: 50,
    maxPending: 8,
    hold: 20,
    pps: 3,
    icmpPps: 0,
    workers: 1,
    clientThreads: 2,
    perGenerator: 0,
    json: true,
    save: true,
  });
  const steady = parseArgs(['--scenario', 'steady']) as LoadOptions;
  assert.equal(steady.pps, 10);
  assert.equal(steady.icmpPps, 1);
  assert.equal((parseArgs(['--scenario', 'mix', '--icmp-pps', '0']) as LoadOptions).icmpPps, 0);
  assert.equal(typeof parseArgs(['--scenario', 'soak']), 'string');
  assert.equal(typeof parseArgs(['--tunnels', String(MAX_TUNNELS + 1)]), 'string');
  assert.equal(typeof parseArgs(['--hold', String(MAX_HOLD_S + 1)]), 'string');
  assert.equal(
    typeof (parseArgs(['--tunnels', String(MAX_TUNNELS)]) as LoadOptions).tunnels,
    'number',
  );
  assert.equal(typeof parseArgs(['--tunnels', '1.5']), 'string');
  assert.equal(typeof parseArgs(['--tunnels']), 'string');
  assert.equal(typeof parseArgs(['--bogus']), 'string');
  assert.equal(parseArgs(['--help']), 'help');
});

test('roles: mix splits 1/4 churn, 1/4 idle, 1/2 traffic; other scenarios are uniform', () => {
  const count = (s: Parameters<typeof roleOf>[0]) => {
    const c: Record<string, number> = {};
    for (let i = 0; i < 400; i++) c[roleOf(s, i)] = (c[roleOf(s, i)] ?? 0) + 1;
    return c;
  };
  assert.deepEqual(count('mix'), { churn: 100, idle: 100, traffic: 200 });
  assert.deepEqual(count('churn'), { churn: 400 });
  assert.deepEqual(count('steady'), { traffic: 400 });
  assert.deepEqual(count('hold'), { traffic: 400 });
});

test('UDP probe: valid IPv4 and UDP checksums; the echo (swapped) parses with its fields', () => {
  const p = new Uint8Array(UDP_PACKET_SIZE);
  const src = parseIpv4('10.77.0.9');
  const dst = parseIpv4('10.77.0.1');
  const probe = {
    src,
    dst,
    srcPort: 40000,
    dstPort: 7,
    tunnel: 70000,
    seq: 123456,
    sentUs: 98765.5,
  };
  assert.equal(writeUdpProbe(p, probe), UDP_PACKET_SIZE);
  assert.equal(internetChecksum(p, 0, 20), 0);
  assert.deepEqual(parseUdpProbe(p), probe);
  // What the responder sends back: addresses and ports swapped, checksum still valid.
  const r = p.slice();
  r.set(p.subarray(16, 20), 12);
  r.set(p.subarray(12, 16), 16);
  r.set(p.subarray(22, 24), 20);
  r.set(p.subarray(20, 22), 22);
  assert.deepEqual(parseUdpProbe(r), { ...probe, src: dst, dst: src, srcPort: 7, dstPort: 40000 });
  // A zero checksum means none (IPv4): accepted.
  const none = r.slice();
  none[26] = 0;
  none[27] = 0;
  assert.equal(parseUdpProbe(none)?.seq, 123456);
});

test('UDP probe parser: corrupt or foreign packets are ignored, never thrown on', () => {
  const p = new Uint8Array(UDP_PACKET_SIZE);
  writeUdpProbe(p, { src: 1, dst: 2, srcPort: 3, dstPort: 4, tunnel: 5, seq: 6, sentUs: 7 });
  for (const at of [9, 21, 30, 40]) {
    const bad = p.slice();
    bad[at] ^= 0x01;
    assert.equal(parseUdpProbe(bad), undefined, `byte ${at} flipped`);
  }
  assert.equal(parseUdpProbe(p.subarray(0, UDP_PACKET_SIZE - 1)), undefined);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
      parseUdpProbe(bytes);
    }),
  );
});

test('perSecond groups setup latencies by second since the first start', () => {
  const b = perSecond([10_000, 5, 10_400, 7, 11_100, 30, 10_200, 6]);
  assert.deepEqual(b, [
    { t: 0, count: 3, p50Ms: 6, maxMs: 7 },
    { t: 1, count: 1, p50Ms: 30, maxMs: 30 },
  ]);
  assert.deepEqual(perSecond([]), []);
});

test('rssSlope: kB per minute over the hold; flat is 0; too few samples is null', () => {
  const at = (t: number, rssKb: number) => ({ t, rssKb, cpuTicks: 0 });
  const rising = [0, 1, 2, 3, 4].map((i) => at(10_000 + i * 1000, 1000 + i * 10));
  assert.equal(rssSlope(rising, 10_000, 14_000), 600);
  const flat = [0, 1, 2, 3].map((i) => at(i * 1000, 500));
  assert.equal(rssSlope(flat, 0, 3000), 0);
  assert.equal(rssSlope(flat.slice(0, 2), 0, 3000), null);
  assert.equal(rssSlope(rising, undefined, 1), null);
});

test('leakCheck: clean when the server is back to its start, else names each leak', () => {
  const zero = { activeConnections: 0, workerSessions: 0, quicConnections: 0, ringDepth: 0 };
  const clean = leakCheck({ server: zero, fds: [40, 44], leased: [0, 0], rssKb: [1, 2] });
  assert.equal(clean.clean, true);
  const dirty = leakCheck({
    server: { ...zero, workerSessions: 3 },
    fds: [40, 140],
    leased: [0, 5],
    rssKb: [1, 2],
  });
  assert.equal(dirty.clean, false);
  assert.equal(dirty.problems.length, 3);
  assert.match(dirty.problems.join('|'), /workerSessions 3/);
  assert.match(dirty.problems.join('|'), /40 → 140/);
  assert.match(dirty.problems.join('|'), /leases 0 → 5/);
  assert.equal(
    leakCheck({ server: undefined, fds: [1, 1], leased: [0, 0], rssKb: [1, 1] }).clean,
    false,
  );
});

test('/proc parsers: VmRSS and utime+stime past a command name with spaces', () => {
  assert.equal(parseRssKb('Name:\tnode\nVmRSS:\t  139368 kB\nRssAnon:\t1 kB\n'), 139368);
  assert.equal(parseRssKb('Name:\tnode\n'), undefined);
  const stat = '4242 (node (a) b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 11 0';
  assert.equal(parseCpuTicks(stat), 325);
  assert.equal(parseCpuTicks('garbage'), undefined);
  const a = { t: 0, rssKb: 0, cpuTicks: 0, threads: { '1': 10, '2': 0 } };
  const b = { t: 2000, rssKb: 0, cpuTicks: 0, threads: { '1': 60, '2': 190, '3': 20 } };
  assert.equal(busiestThreadCores(a, b), 0.95); // thread 2: 190 ticks over 2 s
  assert.equal(busiestThreadCores({ ...a, threads: undefined }, b), undefined);
});

test('shares split devices evenly and keep every device once', () => {
  const items = Array.from({ length: 11 }, (_, i) => i);
  const s = shares(items, 3);
  assert.deepEqual(
    s.map((p) => p.items.length),
    [4, 4, 3],
  );
  assert.deepEqual(
    s.flatMap((p) => p.items),
    items,
  );
  assert.deepEqual(
    s.map((p) => p.first),
    [0, 4, 8],
  );
  assert.equal(shares([1], 4).length, 1);
});

test('errorReason groups messages that differ only in numbers and addresses', () => {
  assert.equal(
    errorReason('10.200.0.1:4433: no tunnel within 10 s (10.200.0.1)'),
    errorReason('10.200.0.1:4433: no tunnel within 10 s (10.200.0.2)'),
  );
  assert.match(errorReason('closed (transport 0x10c)'), /0x10c/);
});

test('buildReport: setup rate, loss, RSS per tunnel above idle, CPU in cores', () => {
  const setup = new LatencyHistogram();
  const rtt = new LatencyHistogram();
  for (let i = 1; i <= 100; i++) setup.record(i * 1000);
  for (let i = 1; i <= 1000; i++) rtt.record(i);
  const r = buildReport({
    options: parseArgs([]) as LoadOptions,
    command: 'npx masque-bench load',
    machine: { cpus: 2, model: 'x', loadavg: [0, 0, 0] },
    result: {
      attempted: 100,
      opened: 100,
      ready: 100,
      open: 0,
      closedByClient: 100,
      reopened: 0,
      echoesSent: 1000,
      echoesReceived: 990,
      udpSent: 2000,
      udpReceived: 1999,
      udpDuplicates: 0,
      errors: {},
      connect: setup.toWire(),
      setup: setup.toWire(),
      rtt: rtt.toWire(),
      udpRtt: rtt.toWire(),
      setupTimeline: [10_000, 40, 10_500, 60],
      rampFirstStartMs: 10_000,
      rampLastReadyMs: 12_000,
      rampReady: 100,
    },
    idle: { t: 0, rssKb: 100_000, cpuTicks: 0 },
    marks: {
      ramp: { dataplane: { t: 1000, rssKb: 100_000, cpuTicks: 10 } },
      hold: { dataplane: { t: 3000, rssKb: 104_000, cpuTicks: 110 } },
      drain: { dataplane: { t: 13_000, rssKb: 105_000, cpuTicks: 610 } },
    },
    openAtHoldEnd: 100,
    samples: [],
  });
  assert.equal(r.setup.ratePerS, 50);
  assert.equal(r.echo.lossPercent, 1);
  assert.equal(r.udp.lossPercent, 0.05);
  assert.deepEqual(r.setupOverTime, [{ t: 0, count: 2, p50Ms: 40, maxMs: 60 }]);
  const charts = loadCharts(r);
  assert.match(charts.setupLatency, /^<svg[\s\S]*median per second[\s\S]*<\/svg>\s*$/);
  assert.match(charts.rss, /data plane RSS/);
  assert.ok(Math.abs((r.setup.p50Ms as number) - 50) <= 1);
  assert.equal(r.dataplane.rssPerTunnelKb, 50);
  assert.equal(r.dataplane.rampCpuCores, 0.5);
  assert.equal(r.dataplane.holdCpuCores, 0.5);
  assert.equal(r.generator.holdCpuCores, null);
  assert.equal(r.cpuMsPerSetup.dataplane, 10); // 100 ticks = 1 s over 100 setups
  assert.equal(r.cpuMsPerSetup.generator, null);
  assert.match(formatTable(r), /RSS per tunnel above idle\s+\| 50 kB/);
});
