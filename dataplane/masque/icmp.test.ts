import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIp } from './address.js';
import { ICMP_ERROR_BUFFER_SIZE, IcmpError, writeIcmpError } from './icmp.js';
import { PacketInfo, inspectPacket } from './ip.js';
import { hex, ipv4Packet, ipv6Packet, referenceChecksum, toHex } from './fixtures.js';

const ip = (s: string): Uint8Array => parseIp(s) as Uint8Array;

function build(p: Uint8Array, kind: IcmpError, mtu = 1280, from?: Uint8Array): Uint8Array {
  const info = new PacketInfo();
  assert.ok(inspectPacket(p, 0, p.length, info));
  const out = new Uint8Array(ICMP_ERROR_BUFFER_SIZE);
  const n = writeIcmpError(out, 0, p, 0, p.length, info, kind, mtu, from);
  return out.subarray(0, n);
}

/** Verifies an ICMPv6 checksum over the RFC 4443 §2.3 pseudo-header, independently. */
function icmp6ChecksumOk(pkt: Uint8Array): boolean {
  const len = pkt.length - 40;
  const pseudo = new Uint8Array(40);
  pseudo.set(pkt.subarray(8, 40), 0);
  pseudo[32] = len >>> 24;
  pseudo[33] = (len >>> 16) & 0xff;
  pseudo[34] = (len >>> 8) & 0xff;
  pseudo[35] = len & 0xff;
  pseudo[39] = 58;
  return referenceChecksum(pseudo, pkt.subarray(40)) === 0;
}

test('ICMPv4 Fragmentation Needed: type 3 code 4, Next-Hop MTU in bytes 6–7, checksums valid', () => {
  const p = ipv4Packet({
    src: '10.1.1.2',
    dst: '192.0.2.1',
    payload: new Uint8Array(1400),
    df: true,
  });
  const e = build(p, IcmpError.PacketTooBig, 1280);
  assert.equal(e.length, 576, 'RFC 1812 size bound');
  assert.equal(e[9], 1);
  assert.equal(toHex(e.subarray(12, 16)), toHex(ip('192.0.2.1')), 'from the original destination');
  assert.equal(toHex(e.subarray(16, 20)), toHex(ip('10.1.1.2')));
  assert.equal(referenceChecksum(e.subarray(0, 20)), 0, 'IPv4 header checksum');
  assert.equal(e[20], 3);
  assert.equal(e[21], 4);
  assert.equal((e[26] << 8) | e[27], 1280);
  assert.equal(referenceChecksum(e.subarray(20)), 0, 'ICMP checksum');
  assert.equal(toHex(e.subarray(28, 48)), toHex(p.subarray(0, 20)), 'quotes the invoking header');
  assert.equal(
    build(ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', df: false }), IcmpError.PacketTooBig)
      .length,
    0,
    'only if DF is set',
  );
});

test('ICMPv4 Time Exceeded (11/0) and admin prohibited (3/13) and no route (3/0)', () => {
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', ttl: 1 });
  for (const [kind, type, code] of [
    [IcmpError.TimeExceeded, 11, 0],
    [IcmpError.AdminProhibited, 3, 13],
    [IcmpError.NoRoute, 3, 0],
  ] as const) {
    const e = build(p, kind, 1280, ip('10.0.0.1'));
    assert.equal(e.length, 28 + p.length);
    assert.deepEqual([e[20], e[21]], [type, code]);
    assert.equal(toHex(e.subarray(12, 16)), '0a000001');
    assert.equal(referenceChecksum(e.subarray(0, 20)), 0);
    assert.equal(referenceChecksum(e.subarray(20)), 0);
  }
});

test('ICMPv6 Packet Too Big: type 2, 32-bit MTU, ≤ 1280 bytes, pseudo-header checksum valid', () => {
  const p = ipv6Packet({
    src: ip('2001:db8::2'),
    dst: ip('2001:db8:1::9'),
    payload: new Uint8Array(1500),
  });
  const e = build(p, IcmpError.PacketTooBig, 1280);
  assert.equal(e.length, 1280);
  assert.equal(e[6], 58);
  assert.equal((e[4] << 8) | e[5], 1240);
  assert.deepEqual([e[40], e[41]], [2, 0]);
  assert.equal(toHex(e.subarray(44, 48)), '00000500');
  assert.ok(icmp6ChecksumOk(e));
  assert.equal(toHex(e.subarray(8, 24)), toHex(ip('2001:db8:1::9')));
  assert.equal(toHex(e.subarray(24, 40)), toHex(ip('2001:db8::2')));
  assert.equal(toHex(e.subarray(48, 88)), toHex(p.subarray(0, 40)));
});

test('ICMPv6 Time Exceeded (3/0), admin prohibited (1/1), no route (1/0)', () => {
  const p = ipv6Packet({ src: ip('2001:db8::2'), dst: ip('2001:db8:1::9') });
  for (const [kind, type, code] of [
    [IcmpError.TimeExceeded, 3, 0],
    [IcmpError.AdminProhibited, 1, 1],
    [IcmpError.NoRoute, 1, 0],
  ] as const) {
    const e = build(p, kind);
    assert.deepEqual([e[40], e[41]], [type, code]);
    assert.equal(toHex(e.subarray(44, 48)), '00000000');
    assert.ok(icmp6ChecksumOk(e));
    assert.equal(e.length, 48 + p.length);
  }
});

test('no ICMP about ICMP errors, multicast or unspecified sources', () => {
  const v4err = ipv4Packet({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    protocol: 1,
    payload: hex('0300000000000000'),
  });
  assert.equal(build(v4err, IcmpError.TimeExceeded).length, 0);
  assert.equal(
    build(ipv4Packet({ src: '224.0.0.5', dst: '10.0.0.2' }), IcmpError.NoRoute).length,
    0,
  );
  assert.equal(build(ipv4Packet({ src: '0.0.0.0', dst: '10.0.0.2' }), IcmpError.NoRoute).length, 0);
  assert.equal(
    build(ipv6Packet({ src: ip('ff02::1'), dst: ip('::2') }), IcmpError.NoRoute).length,
    0,
  );
  assert.equal(build(ipv6Packet({ src: ip('::'), dst: ip('::2') }), IcmpError.NoRoute).length, 0);
  const v6err = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('::2'),
    nextHeader: 58,
    payload: hex('0200000000000500'),
  });
  assert.equal(build(v6err, IcmpError.PacketTooBig).length, 0);
  // An echo request is not an error: it gets an answer.
  const echo = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('::2'),
    nextHeader: 58,
    payload: hex('8000000000000000'),
  });
  assert.ok(build(echo, IcmpError.TimeExceeded).length > 0);
});

test('property: every ICMP error built verifies with the independent checksum', () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.integer({ min: 0, max: 1600 }),
      fc.constantFrom(0, 1, 2, 3) as fc.Arbitrary<IcmpError>,
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      (v6, size, kind, addr) => {
        addr[0] = 0x20; // a unicast source
        const p = v6
          ? ipv6Packet({
              src: addr,
              dst: ip('2001:db8::1'),
              payload: new Uint8Array(size).fill(0xa5),
            })
          : ipv4Packet({
              src: `10.${addr[1]}.${addr[2]}.${addr[3]}`,
              dst: '192.0.2.1',
              payload: new Uint8Array(size).fill(0x5a),
            });
        const e = build(p, kind, 1280);
        assert.ok(e.length > 0);
        if (v6) {
          assert.ok(e.length <= 1280);
          assert.ok(icmp6ChecksumOk(e));
        } else {
          assert.ok(e.length <= 576);
          assert.equal(referenceChecksum(e.subarray(0, 20)), 0);
          assert.equal(referenceChecksum(e.subarray(20)), 0);
        }
      },
    ),
  );
});
