import { test } from 'node:test';
import assert from 'node:assert/strict';

import { matchHops, parseCaptures, parseTcpdumpLine, summarizeHops } from './hops.js';

test('tcpdump lines: echo request/reply and UDP, anything else ignored', () => {
  assert.deepEqual(
    parseTcpdumpLine(
      '1732540000.100000 IP 10.77.0.2 > 10.77.0.1: ICMP echo request, id 77, seq 3, length 64',
    ),
    { t: 1732540000.1, kind: 'echo', type: 'request', seq: 3 },
  );
  assert.deepEqual(
    parseTcpdumpLine('1732540000.200000 IP 10.200.0.2.40001 > 10.200.0.1.4433: UDP, length 131'),
    { t: 1732540000.2, kind: 'udp', from: '10.200.0.2.40001', to: '10.200.0.1.4433', length: 131 },
  );
  assert.equal(parseTcpdumpLine('listening on mq0, link-type RAW'), undefined);
  assert.equal(parseTcpdumpLine('1.0 IP6 fd00::1 > fd00::2: ICMP6, echo request'), undefined);
  assert.equal(parseTcpdumpLine('1.0 IP 10.0.0.1 > 10.0.0.2: ICMP host unreachable'), undefined);
});

const tun = (t: number, type: string, seq: number, a = '10.77.0.2', b = '10.77.0.1') =>
  `${t.toFixed(6)} IP ${type === 'request' ? a : b} > ${type === 'request' ? b : a}: ICMP echo ${type}, id 9, seq ${seq}, length 64`;
const wire = (t: number, up: boolean, length: number) =>
  up
    ? `${t.toFixed(6)} IP 10.200.0.2.40001 > 10.200.0.1.4433: UDP, length ${length}`
    : `${t.toFixed(6)} IP 10.200.0.1.4433 > 10.200.0.2.40001: UDP, length ${length}`;

test('hops of one echo, with an ACK-only packet and a keep-alive in the way', () => {
  const ms = (x: number) => 100 + x / 1000;
  const rows = matchHops({
    clientTun: parseCaptures([tun(ms(0), 'request', 1), tun(ms(2.0), 'reply', 1)].join('\n')),
    clientWire: parseCaptures(
      [wire(ms(0.3), true, 131), wire(ms(1.0), false, 40), wire(ms(1.6), false, 131)].join('\n'),
    ),
    serverWire: parseCaptures(
      [wire(ms(0.31), true, 131), wire(ms(0.99), false, 40), wire(ms(1.59), false, 131)].join('\n'),
    ),
    serverTun: parseCaptures([tun(ms(0.8), 'request', 1), tun(ms(0.81), 'reply', 1)].join('\n')),
    clientAddr: '10.200.0.2',
    minUdpLength: 84,
  });
  assert.equal(rows.length, 1);
  const r = rows[0];
  const close = (a: number, b: number) =>
    assert.ok(Math.abs(a * 1000 - b) < 1e-6, `${a * 1000} vs ${b}`);
  close(r.clientOut, 0.3);
  close(r.wireOut, 0.01);
  close(r.serverIn, 0.49);
  close(r.kernel, 0.01);
  close(r.serverOut, 0.78);
  close(r.wireIn, 0.01);
  close(r.clientIn, 0.4);
  const s = summarizeHops(rows);
  assert.equal(s?.echoes, 1);
  assert.ok(Math.abs((s?.p50.serverOut ?? 0) - 0.78) < 1e-6);
});

test('an echo with a missing crossing, or crossings out of order, is left out', () => {
  const rows = matchHops({
    clientTun: parseCaptures(
      [tun(1.0, 'request', 1), tun(1.01, 'reply', 1), tun(2.0, 'request', 2)].join('\n'),
    ),
    clientWire: parseCaptures([wire(1.001, true, 131), wire(1.009, false, 131)].join('\n')),
    serverWire: parseCaptures([wire(1.002, true, 131), wire(1.008, false, 131)].join('\n')),
    // seq 1's request reached the server TUN before it left the client: impossible, so skipped;
    // seq 2 never reached the server.
    serverTun: parseCaptures([tun(0.5, 'request', 1), tun(1.005, 'reply', 1)].join('\n')),
    clientAddr: '10.200.0.2',
    minUdpLength: 84,
  });
  assert.deepEqual(rows, []);
  assert.equal(summarizeHops(rows), undefined);
});
