import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatIp,
  formatPrefix,
  hostBitsZero,
  parseIp,
  parsePrefix,
  prefixContains,
  prefixLastAddress,
} from './address.js';
import { hex, toHex } from './fixtures.js';

test('IPv4 and IPv6 addresses parse to bytes and format back (RFC 5952)', () => {
  assert.equal(toHex(parseIp('10.1.1.2') as Uint8Array), '0a010102');
  assert.equal(toHex(parseIp('2001:db8::1') as Uint8Array), '20010db8000000000000000000000001');
  assert.equal(toHex(parseIp('::') as Uint8Array), '0'.repeat(32));
  assert.equal(toHex(parseIp('::ffff:10.0.0.1') as Uint8Array), '00000000000000000000ffff0a000001');
  assert.equal(formatIp(hex('20010db8000000000000000000000001')), '2001:db8::1');
  assert.equal(formatIp(hex('20010db8000000010000000000000001')), '2001:db8:0:1::1');
  assert.equal(formatIp(hex('00000000000000000000000000000000')), '::');
  assert.equal(formatIp(hex('20010db8000100010001000100010001')), '2001:db8:1:1:1:1:1:1');
  for (const bad of [
    '1.2.3',
    '1.2.3.256',
    '01.2.3.4',
    '1::2::3',
    '12345::',
    'g::',
    '1:2:3:4:5:6:7:8:9',
    '',
  ])
    assert.equal(parseIp(bad), undefined, bad);
});

test('prefixes: host bits must be zero, containment works on bytes in place', () => {
  assert.equal(parsePrefix('10.0.0.1/8'), undefined);
  const p = parsePrefix('10.0.0.0/9');
  assert.ok(p);
  assert.equal(formatPrefix(p), '10.0.0.0/9');
  const pkt = hex('ffff 0a7fffff');
  assert.equal(prefixContains(p, pkt, 2), true);
  assert.equal(prefixContains(p, hex('0a800000'), 0), false);
  assert.equal(formatIp(prefixLastAddress(p)), '10.127.255.255');
  assert.equal(parsePrefix('2001:db8::/129'), undefined);
  assert.equal(
    formatIp(prefixLastAddress(parsePrefix('2001:db8::/32') as never)),
    '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
  );
});

test('property: format(parse(x)) round-trips and containment matches the last-address bound', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 0, max: 128 }),
      (a, len) => {
        assert.equal(toHex(parseIp(formatIp(a)) as Uint8Array), toHex(a));
        const masked = Uint8Array.from(a);
        for (let bit = len; bit < 128; bit++) masked[bit >> 3] &= ~(0x80 >> (bit & 7));
        assert.ok(hostBitsZero(masked, len));
        const prefix = { version: 6 as const, address: masked, prefixLength: len };
        assert.ok(prefixContains(prefix, a, 0));
        assert.ok(prefixContains(prefix, prefixLastAddress(prefix), 0));
      },
    ),
  );
});
