import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { IperfResultError, parseIperf3 } from './iperf.js';

// Trimmed from real iperf3 3.12 -J output on this machine (loopback).
const TCP = JSON.stringify({
  start: { test_start: { protocol: 'TCP', num_streams: 2 } },
  end: {
    streams: [],
    sum_sent: { seconds: 1.005463, bytes: 1418199040, bits_per_second: 11283948111.467056, retransmits: 9, sender: true },
    sum_received: { seconds: 1.007993, bytes: 1418199040, bits_per_second: 11255626100.578081, sender: true },
  },
}); // prettier-ignore

const UDP = JSON.stringify({
  end: {
    sum: { seconds: 1.00034, bytes: 12493200, bits_per_second: 99933008.44, lost_percent: 0.41302468542887333, sender: true },
    sum_sent: { seconds: 1.000126, bytes: 12493200, bits_per_second: 99933008.44, lost_percent: 0, sender: true },
    sum_received: { seconds: 1.00034, bytes: 12441600, bits_per_second: 99498970.35008097, lost_percent: 0.41302468542887333, sender: false },
  },
}); // prettier-ignore

test('TCP: receiver goodput and sender retransmits', () => {
  const s = parseIperf3(TCP);
  assert.equal(s.bitsPerSecond, 11255626100.578081);
  assert.equal(s.bytes, 1418199040);
  assert.equal(s.retransmits, 9);
  assert.equal(s.lostPercent, undefined);
});

test('UDP: receiver goodput (not the sender rate) and loss', () => {
  const s = parseIperf3(UDP);
  assert.equal(s.bitsPerSecond, 99498970.35008097);
  assert.equal(s.bytes, 12441600);
  assert.equal(s.lostPercent, 0.41302468542887333);
});

test('older UDP output with only "sum" still parses', () => {
  const doc = JSON.parse(UDP) as { end: Record<string, unknown> };
  delete doc.end.sum_received;
  assert.equal(parseIperf3(JSON.stringify(doc)).bitsPerSecond, 99933008.44);
});

test('iperf3 errors and truncated output are IperfResultError', () => {
  assert.throws(
    () =>
      parseIperf3(
        '{"start":{},"intervals":[],"end":{},"error":"unable to connect to server: Connection refused"}',
      ),
    (e: unknown) => e instanceof IperfResultError && /Connection refused/.test(e.message),
  );
  assert.throws(() => parseIperf3(TCP.slice(0, 40)), IperfResultError);
  assert.throws(() => parseIperf3('{"end":{"sum_sent":{"bytes":1}}}'), IperfResultError);
  assert.throws(() => parseIperf3('[]'), IperfResultError);
});

test('hostile input throws nothing but IperfResultError', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.json()), (s) => {
      try {
        parseIperf3(s);
      } catch (e) {
        if (!(e instanceof IperfResultError)) throw e;
      }
    }),
  );
});
