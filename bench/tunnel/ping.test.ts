import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';

import { parsePing, percentile, pingTimes } from './ping.js';

const OUT = `PING 10.77.0.1 (10.77.0.1) 56(84) bytes of data.
64 bytes from 10.77.0.1: icmp_seq=1 ttl=64 time=0.039 ms
64 bytes from 10.77.0.1: icmp_seq=2 ttl=64 time=0.050 ms
64 bytes from 10.77.0.1: icmp_seq=4 ttl=64 time=1.05 ms
64 bytes from 10.77.0.1: icmp_seq=5 ttl=64 time=12 ms

--- 10.77.0.1 ping statistics ---
5 packets transmitted, 4 received, 20% packet loss, time 48ms
rtt min/avg/max/mdev = 0.039/3.285/12.000/5.040 ms
`;

test('per-reply times, counts, avg and percentiles', () => {
  assert.deepEqual(pingTimes(OUT), [0.039, 0.05, 1.05, 12]);
  const s = parsePing(OUT);
  assert.equal(s.transmitted, 5);
  assert.equal(s.received, 4);
  assert.ok(Math.abs(s.avgMs - 3.28475) < 1e-9);
  assert.equal(s.p50Ms, 0.05);
  assert.equal(s.p99Ms, 12);
});

test('no replies: NaN figures, counts kept', () => {
  const s = parsePing(
    'PING x\n\n--- x ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss\n',
  );
  assert.equal(s.transmitted, 3);
  assert.equal(s.received, 0);
  assert.ok(Number.isNaN(s.avgMs) && Number.isNaN(s.p99Ms));
});

test('nearest-rank percentile', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal(percentile(v, 50), 50);
  assert.equal(percentile(v, 99), 99);
  assert.equal(percentile(v, 100), 100);
  assert.equal(percentile(v, 0), 1);
});

test('percentiles are ordered and inside the sample', () => {
  fc.assert(
    fc.property(fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1 }), (v) => {
      const p50 = percentile(v, 50);
      const p99 = percentile(v, 99);
      assert.ok(p50 <= p99);
      assert.ok(v.includes(p50) && v.includes(p99));
    }),
  );
});
