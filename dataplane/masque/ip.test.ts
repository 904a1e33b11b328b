import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseIp, parsePrefix, type IpPrefix } from './address.js';
import {
  PROTOCOL_UNKNOWN,
  PacketInfo,
  Verdict,
  checkPacket,
  decrementHopLimit,
  inspectPacket,
  isIcmpError,
} from './ip.js';
import { fullRange, rangeFromPrefix } from './route.js';
import { hex, ipv4Packet, ipv6Packet, referenceChecksum } from './fixtures.js';

const ip = (s: string): Uint8Array => parseIp(s) as Uint8Array;
const pfx = (s: string): IpPrefix => parsePrefix(s) as IpPrefix;

test('§7.2 structural checks: version, full header, IHL ≥ 5, length fields equal to the datagram', () => {
  const info = new PacketInfo();
  const good = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1' });
  assert.equal(inspectPacket(good, 0, good.length, info), true);
  assert.equal(info.protocol, 17);
  assert.equal(
    inspectPacket(new TextEncoder().encode('asdf'), 0, 4, info),
    false,
    "quiche's junk first datagram",
  );
  assert.equal(inspectPacket(good, 0, 19, info), false, 'short');
  assert.equal(inspectPacket(good, 0, good.length - 1, info), false, 'total length ≠ datagram');
  const ihl4 = good.slice();
  ihl4[0] = 0x44;
  assert.equal(inspectPacket(ihl4, 0, ihl4.length, info), false);
  const v5 = good.slice();
  v5[0] = 0x55;
  assert.equal(inspectPacket(v5, 0, v5.length, info), false);
  const v6 = ipv6Packet({ src: ip('2001:db8::1'), dst: ip('2001:db8::2') });
  assert.equal(inspectPacket(v6, 0, v6.length, info), true);
  assert.equal(inspectPacket(v6, 0, 39, info), false);
  const jumbo = v6.slice();
  jumbo[4] = jumbo[5] = 0;
  assert.equal(inspectPacket(jumbo, 0, jumbo.length, info), false);
  // In the middle of a larger buffer.
  const framed = new Uint8Array(good.length + 10);
  framed.set(good, 3);
  assert.equal(inspectPacket(framed, 3, good.length, info), true);
  assert.equal(info.srcOffset, 15);
});

test('§7.2 IPv6 extension-header walk: hop-by-hop, routing, destination, AH, fragment, ESP', () => {
  const info = new PacketInfo();
  // HBH (8) → Routing (16) → AH (len 1 → 12 bytes) → Fragment first → TCP.
  const chain = hex(
    '2b 00 00000000 0000' + // HBH: next 43, len 0
      '33 01 0000 00000000 0000000000000000' + // Routing: next 51, 16 bytes
      '2c 01 0000 00000000 00000000' + // AH: next 44, (1+2)*4 = 12 bytes
      '06 00 0000 00000001' + // Fragment offset 0 (M=1): next 6
      '0000000000000000',
  );
  const p = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('2001:db8::2'),
    nextHeader: 0,
    payload: chain,
  });
  assert.equal(inspectPacket(p, 0, p.length, info), true);
  assert.equal(info.protocol, 6);
  assert.equal(info.headerLength, 40 + 8 + 16 + 12 + 8);
  const later = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('2001:db8::2'),
    nextHeader: 44,
    payload: hex('06 00 0008 00000001 0000000000000000'),
  });
  assert.equal(inspectPacket(later, 0, later.length, info), true);
  assert.equal(info.protocol, PROTOCOL_UNKNOWN, 'non-first fragment: protocol unknown');
  const esp = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('2001:db8::2'),
    nextHeader: 60,
    payload: hex('32 00 000000000000 ffffffff'),
  });
  assert.equal(inspectPacket(esp, 0, esp.length, info), true);
  assert.equal(info.protocol, 50, 'stops at ESP');
  const truncated = ipv6Packet({
    src: ip('2001:db8::1'),
    dst: ip('2001:db8::2'),
    nextHeader: 0,
    payload: hex('06 01 000000000000'),
  });
  assert.equal(
    inspectPacket(truncated, 0, truncated.length, info),
    false,
    'extension header past the end',
  );
});

test('§7.2 source ∈ assigned prefixes, destination ∈ routes; ICMP always passes the protocol filter', () => {
  const info = new PacketInfo();
  const rules = {
    sources: [rangeFromPrefix(pfx('10.1.1.2/32'))],
    destinations: [rangeFromPrefix(pfx('192.0.2.0/24'), 6)],
  };
  const check = (p: Uint8Array) => (
    assert.ok(inspectPacket(p, 0, p.length, info)),
    checkPacket(p, info, rules)
  );
  assert.equal(check(ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.9', protocol: 6 })), Verdict.Ok);
  assert.equal(
    check(ipv4Packet({ src: '10.1.1.3', dst: '192.0.2.9', protocol: 6 })),
    Verdict.SourceNotAllowed,
  );
  assert.equal(
    check(ipv4Packet({ src: '10.1.1.2', dst: '192.0.3.9', protocol: 6 })),
    Verdict.DestinationNotAllowed,
  );
  assert.equal(
    check(ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.9', protocol: 17 })),
    Verdict.DestinationNotAllowed,
  );
  assert.equal(check(ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.9', protocol: 1 })), Verdict.Ok);
  const withPolicy = { ...rules, policy: () => false };
  const p = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.9', protocol: 6 });
  inspectPacket(p, 0, p.length, info);
  assert.equal(checkPacket(p, info, withPolicy), Verdict.PolicyDenied);
  const open = { sources: undefined, destinations: [fullRange(4)] };
  assert.equal(checkPacket(p, info, open), Verdict.Ok);
});

test('§7.2 TTL decrement with incremental checksum fix equals a recomputed checksum; TTL 1 refused', () => {
  const info = new PacketInfo();
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 255 }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 255 }),
      (ttl, src, proto) => {
        const p = ipv4Packet({ src: src.join('.'), dst: '192.0.2.1', ttl, protocol: proto });
        inspectPacket(p, 0, p.length, info);
        assert.equal(decrementHopLimit(p, 0, info), true);
        assert.equal(p[8], ttl - 1);
        const zeroed = p.slice(0, 20);
        zeroed[10] = zeroed[11] = 0;
        assert.equal((p[10] << 8) | p[11], referenceChecksum(zeroed));
        assert.equal(referenceChecksum(p.subarray(0, 20)), 0, 'header verifies');
      },
    ),
  );
  const one = ipv4Packet({ src: '10.0.0.1', dst: '10.0.0.2', ttl: 1 });
  const before = one.slice();
  inspectPacket(one, 0, one.length, info);
  assert.equal(decrementHopLimit(one, 0, info), false);
  assert.deepEqual(one, before, 'left untouched');
  const v6 = ipv6Packet({ src: ip('::1'), dst: ip('::2'), hopLimit: 2 });
  inspectPacket(v6, 0, v6.length, info);
  assert.equal(decrementHopLimit(v6, 0, info), true);
  assert.equal(v6[7], 1);
  assert.equal(decrementHopLimit(v6, 0, info), false);
});

test('ICMP error detection (never answer an error with an error)', () => {
  const info = new PacketInfo();
  const err = ipv4Packet({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    protocol: 1,
    payload: hex('0b00000000000000'),
  });
  inspectPacket(err, 0, err.length, info);
  assert.equal(isIcmpError(err, info, err.length), true);
  const echo = ipv4Packet({
    src: '10.0.0.1',
    dst: '10.0.0.2',
    protocol: 1,
    payload: hex('0800000000000000'),
  });
  inspectPacket(echo, 0, echo.length, info);
  assert.equal(isIcmpError(echo, info, echo.length), false);
  const v6err = ipv6Packet({
    src: ip('::1'),
    dst: ip('::2'),
    nextHeader: 58,
    payload: hex('0100000000000000'),
  });
  inspectPacket(v6err, 0, v6err.length, info);
  assert.equal(isIcmpError(v6err, info, v6err.length), true);
});
