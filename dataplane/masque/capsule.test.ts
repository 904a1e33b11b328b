import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePrefix, type IpPrefix } from './address.js';
import {
  CapsuleParser,
  decodeAddressAssign,
  decodeAddressRequest,
  decodeRouteAdvertisement,
  encodeCapsule,
  type AddressEntry,
  type Capsule,
} from './capsule.js';
import { CapsuleError, H3_EXCESSIVE_LOAD, H3_MESSAGE_ERROR } from './errors.js';
import { fullRange, normaliseRoutes, type IpRange } from './route.js';
import { hex, toHex } from './fixtures.js';

function parseAll(bytes: Uint8Array, parser = new CapsuleParser()): Capsule[] {
  const out: Capsule[] = [];
  parser.push(bytes, (c) => out.push(c));
  return out;
}

function prefix(text: string): IpPrefix {
  const p = parsePrefix(text);
  assert.ok(p, text);
  return p;
}

function assertCapsuleError(fn: () => unknown, code: number, re?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CapsuleError, `expected CapsuleError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.scope, 'stream');
    if (re) assert.match(err.message, re);
    return true;
  });
}

// ---- PROTOCOL.md §6 byte examples ------------------------------------------------------------

test('§6.3 ADDRESS_ASSIGN 10.1.1.2/32 ID 0 decodes and re-encodes', () => {
  const bytes = hex('01 07 00 04 0a 01 01 02 20');
  const [c] = parseAll(bytes);
  assert.equal(c.kind, 'address-assign');
  assert.ok(c.kind === 'address-assign');
  assert.deepEqual(c.addresses, [{ requestId: 0, prefix: prefix('10.1.1.2/32') }]);
  assert.equal(toHex(encodeCapsule(c)), toHex(bytes));
});

test('§6.3 ADDRESS_ASSIGN 2001:db8::1/128 decodes and re-encodes', () => {
  const bytes = hex('01 13 00 06 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 80');
  const [c] = parseAll(bytes);
  assert.ok(c.kind === 'address-assign');
  assert.deepEqual(c.addresses, [{ requestId: 0, prefix: prefix('2001:db8::1/128') }]);
  assert.equal(toHex(encodeCapsule(c)), toHex(bytes));
});

test('§6.4 ADDRESS_REQUEST examples decode and re-encode', () => {
  const v4 = hex('02 07 01 04 00 00 00 00 20');
  const [a] = parseAll(v4);
  assert.ok(a.kind === 'address-request');
  assert.deepEqual(a.addresses, [{ requestId: 1, prefix: prefix('0.0.0.0/32') }]);
  assert.equal(toHex(encodeCapsule(a)), toHex(v4));
  const v6 = hex('02 13 02 06' + '00'.repeat(16) + '80');
  const [b] = parseAll(v6);
  assert.ok(b.kind === 'address-request');
  assert.deepEqual(b.addresses, [{ requestId: 2, prefix: prefix('::/128') }]);
  assert.equal(toHex(encodeCapsule(b)), toHex(v6));
});

test('§6.5 ROUTE_ADVERTISEMENT full IPv4+IPv6 tunnel (length 44) decodes and re-encodes', () => {
  const bytes = hex(
    '03 2c 04 00 00 00 00 ff ff ff ff 00 06' + '00'.repeat(16) + 'ff'.repeat(16) + '00',
  );
  const [c] = parseAll(bytes);
  assert.ok(c.kind === 'route-advertisement');
  assert.deepEqual(c.ranges, [fullRange(4), fullRange(6)]);
  assert.equal(toHex(encodeCapsule(c)), toHex(bytes));
  assert.equal(
    toHex(
      encodeCapsule({
        kind: 'route-advertisement',
        ranges: normaliseRoutes([fullRange(6), fullRange(4)]),
      }),
    ),
    toHex(bytes),
  );
});

test('§6.2 DATAGRAM capsule 00 15 00 <20-byte packet> decodes and re-encodes', () => {
  const packet = hex('45000014000000004001f93d0a0101020a010101');
  const bytes = hex('00 15 00' + toHex(packet));
  const [c] = parseAll(bytes);
  assert.ok(c.kind === 'datagram');
  assert.equal(toHex(c.payload), '00' + toHex(packet));
  assert.equal(toHex(encodeCapsule(c)), toHex(bytes));
});

test('Appendix B: proxy capsules ADDRESS_ASSIGN 10.1.1.2/32 and ROUTE_ADV 0.0.0.0-255.255.255.255', () => {
  // DATA frame payloads of the trace, i.e. after the "00 09" / "00 0c" DATA frame headers.
  const assign = hex('01 07 00 04 0a 01 01 02 20');
  const route = hex('03 0a 04 00 00 00 00 ff ff ff ff 00');
  const got = parseAll(Uint8Array.from([...assign, ...route]));
  assert.equal(got.length, 2);
  assert.equal(toHex(encodeCapsule(got[0])), toHex(assign));
  assert.equal(toHex(encodeCapsule(got[1])), toHex(route));
  assert.ok(got[1].kind === 'route-advertisement');
  assert.deepEqual(got[1].ranges, [fullRange(4)]);
});

// ---- streaming ---------------------------------------------------------------------------

test('capsules parse identically across every split point and byte-by-byte', () => {
  const stream = Uint8Array.from([
    ...hex('01 07 00 04 0a 01 01 02 20'),
    ...encodeCapsule({ kind: 'other', type: 0x1ace79ec, value: new Uint8Array(40).fill(7) }),
    ...hex('03 0a 04 00 00 00 00 ff ff ff ff 00'),
    ...hex('00 01 00'),
  ]);
  const whole = parseAll(stream);
  assert.deepEqual(
    whole.map((c) => c.kind),
    ['address-assign', 'route-advertisement', 'datagram'],
  );
  for (let cut = 0; cut <= stream.length; cut++) {
    const p = new CapsuleParser();
    const out: Capsule[] = [];
    p.push(stream.subarray(0, cut), (c) => out.push(c));
    p.push(stream.subarray(cut), (c) => out.push(c));
    assert.deepEqual(out, whole, `split at ${cut}`);
    p.finish();
  }
  const p = new CapsuleParser();
  const out: Capsule[] = [];
  for (const b of stream) p.push(Uint8Array.of(b), (c) => out.push(c));
  assert.deepEqual(out, whole);
  assert.equal(p.stats.skippedUnknown, 1);
});

test('non-minimal varints in capsule type and length are accepted', () => {
  const [c] = parseAll(hex('40 01 80 00 00 07 00 04 0a 01 01 02 20'));
  assert.ok(c.kind === 'address-assign');
  assert.deepEqual(c.addresses[0].prefix, prefix('10.1.1.2/32'));
});

// ---- §10.2 rows --------------------------------------------------------------------------

test('§10.2 unknown capsule type: skipped silently (DNS_ASSIGN, PREF64, GREASE, legacy, huge)', () => {
  const p = new CapsuleParser({ maxControlCapsule: 16 });
  const types = [0x1ace79ec, 0x274c0fbc, 0x29 * 3 + 0x17, 0xff37a0, 0xff37a5, 0x04];
  for (const type of types) {
    assert.deepEqual(
      parseAll(encodeCapsule({ kind: 'other', type, value: new Uint8Array(100) }), p),
      [],
    );
  }
  assert.equal(p.stats.skippedUnknown, types.length);
});

test('§10.2 unknown capsule type is skipped without buffering its payload', () => {
  const p = new CapsuleParser();
  // Header announcing 1 GiB of an unknown type, followed by a trickle of its payload: nothing
  // is held, and a known capsule after exactly that many bytes is still found.
  parseAll(hex('52 34 80 00 10 00'), p); // type 0x1234, length 4096
  const chunk = new Uint8Array(1024);
  for (let i = 0; i < 4; i++) assert.deepEqual(parseAll(chunk, p), []);
  assert.equal(parseAll(hex('01 07 00 04 0a 01 01 02 20'), p).length, 1);
  const huge = new CapsuleParser();
  parseAll(hex('52 34 c0 00 00 00 40 00 00 00'), huge); // 2^30 bytes of unknown: no allocation
  huge.push(new Uint8Array(65536), () => assert.fail('nothing is delivered'));
  assert.equal(huge.idle, false);
});

test('§10.2 capsule truncated at FIN → H3_MESSAGE_ERROR', () => {
  const p = new CapsuleParser();
  parseAll(hex('01 07 00 04 0a 01'), p);
  assertCapsuleError(() => p.finish(), H3_MESSAGE_ERROR, /inside a capsule/);
  const headerOnly = new CapsuleParser();
  parseAll(hex('41'), headerOnly);
  assertCapsuleError(() => headerOnly.finish(), H3_MESSAGE_ERROR);
  const clean = new CapsuleParser();
  parseAll(hex('01 07 00 04 0a 01 01 02 20'), clean);
  clean.finish();
});

test('§10.2 capsule value with trailing bytes → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(() => parseAll(hex('01 08 00 04 0a 01 01 02 20 00')), H3_MESSAGE_ERROR);
  assertCapsuleError(
    () => parseAll(hex('03 0b 04 00 00 00 00 ff ff ff ff 00 04')),
    H3_MESSAGE_ERROR,
  );
});

test('§10.2 capsule value with missing bytes → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(() => parseAll(hex('01 06 00 04 0a 01 01 02')), H3_MESSAGE_ERROR, /truncated/);
  assertCapsuleError(() => parseAll(hex('02 06 01 04 00 00 00 00')), H3_MESSAGE_ERROR);
  assertCapsuleError(() => parseAll(hex('03 09 04 00 00 00 00 ff ff ff ff')), H3_MESSAGE_ERROR);
  assertCapsuleError(() => parseAll(hex('01 01 40')), H3_MESSAGE_ERROR, /request ID/);
});

test('§10.2 IP version not 4 or 6 → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(
    () => parseAll(hex('01 07 00 05 0a 01 01 02 20')),
    H3_MESSAGE_ERROR,
    /version 5/,
  );
  assertCapsuleError(
    () => parseAll(hex('02 07 01 00 00 00 00 00 20')),
    H3_MESSAGE_ERROR,
    /version 0/,
  );
  assertCapsuleError(
    () => parseAll(hex('03 0a 05 00 00 00 00 ff ff ff ff 00')),
    H3_MESSAGE_ERROR,
    /version 5/,
  );
});

test('§10.2 prefix length > 32/128 → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(
    () => parseAll(hex('01 07 00 04 0a 01 01 02 21')),
    H3_MESSAGE_ERROR,
    /prefix length 33/,
  );
  assertCapsuleError(
    () => parseAll(hex('01 13 00 06 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 81')),
    H3_MESSAGE_ERROR,
    /prefix length 129/,
  );
});

test('§10.2 host bits set → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(
    () => parseAll(hex('01 07 00 04 0a 01 01 02 18')),
    H3_MESSAGE_ERROR,
    /host bits/,
  );
  assertCapsuleError(
    () => parseAll(hex('02 07 01 04 0a 00 00 01 08')),
    H3_MESSAGE_ERROR,
    /host bits/,
  );
});

test('§10.2 route start > end → H3_MESSAGE_ERROR', () => {
  assertCapsuleError(
    () => parseAll(hex('03 0a 04 0a 00 00 02 0a 00 00 01 00')),
    H3_MESSAGE_ERROR,
    /start after end/,
  );
});

test('§10.2 ADDRESS_REQUEST with 0 entries → abort the stream (H3_MESSAGE_ERROR)', () => {
  assertCapsuleError(() => parseAll(hex('02 00')), H3_MESSAGE_ERROR, /without entries/);
  assert.throws(() => decodeAddressRequest(new Uint8Array(0)), CapsuleError);
});

test('§10.2 ADDRESS_REQUEST with Request ID 0 → abort the stream (H3_MESSAGE_ERROR)', () => {
  assertCapsuleError(
    () => parseAll(hex('02 07 00 04 00 00 00 00 20')),
    H3_MESSAGE_ERROR,
    /request ID 0/,
  );
});

test('§10.2 ROUTE_ADVERTISEMENT ordering violation → abort (H3_MESSAGE_ERROR)', () => {
  // IPv6 before IPv4.
  const v6v4 = encodeCapsule({ kind: 'route-advertisement', ranges: [fullRange(6), fullRange(4)] });
  assertCapsuleError(() => parseAll(v6v4), H3_MESSAGE_ERROR, /version out of order/);
  // Protocol 17 before protocol 6.
  const r = (s: string, e: string, p: number): IpRange => ({
    version: 4,
    start: hex(s),
    end: hex(e),
    ipProtocol: p,
  });
  const protoOrder = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0a000000', '0a0000ff', 17), r('0b000000', '0b0000ff', 6)],
  });
  assertCapsuleError(() => parseAll(protoOrder), H3_MESSAGE_ERROR, /protocol out of order/);
  // Same version and protocol, B before A.
  const startOrder = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0b000000', '0b0000ff', 0), r('0a000000', '0a0000ff', 0)],
  });
  assertCapsuleError(() => parseAll(startOrder), H3_MESSAGE_ERROR, /overlaps or is not after/);
});

test('§10.2 ROUTE_ADVERTISEMENT overlap and touching violations → abort (H3_MESSAGE_ERROR)', () => {
  const r = (s: string, e: string, p: number): IpRange => ({
    version: 4,
    start: hex(s),
    end: hex(e),
    ipProtocol: p,
  });
  const overlap = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0a000000', '0a0000ff', 0), r('0a000080', '0a0001ff', 0)],
  });
  assertCapsuleError(() => parseAll(overlap), H3_MESSAGE_ERROR, /overlaps/);
  const touching = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0a000000', '0a0000ff', 0), r('0a000100', '0a0001ff', 0)],
  });
  assertCapsuleError(() => parseAll(touching), H3_MESSAGE_ERROR, /touches/);
  // Protocol-0 range overlapping a protocol-specific one of the same version.
  const proto0 = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0a000000', '0a0000ff', 0), r('0a000010', '0a000020', 6)],
  });
  assertCapsuleError(() => parseAll(proto0), H3_MESSAGE_ERROR, /protocol-0/);
  // Same ranges on different protocols, non-overlapping with proto 0: valid.
  const ok = encodeCapsule({
    kind: 'route-advertisement',
    ranges: [r('0a000000', '0a0000ff', 6), r('0a000000', '0a0000ff', 17)],
  });
  assert.equal(parseAll(ok).length, 1);
});

test('§10.2 oversized control capsule beyond the local limit → H3_EXCESSIVE_LOAD, before buffering', () => {
  const p = new CapsuleParser({ maxControlCapsule: 1024 });
  assertCapsuleError(() => parseAll(hex('03 48 00'), p), H3_EXCESSIVE_LOAD, /exceeds/);
  // The limit applies to the announced length: the header alone triggers it.
  const q = new CapsuleParser();
  assertCapsuleError(() => parseAll(hex('01 c0 00 00 00 40 00 00 00'), q), H3_EXCESSIVE_LOAD);
});

test('§10.2 oversized DATAGRAM capsule is skipped without buffering', () => {
  const p = new CapsuleParser({ maxDatagramCapsule: 100 });
  const big = encodeCapsule({ kind: 'datagram', payload: new Uint8Array(101) });
  assert.deepEqual(parseAll(big, p), []);
  assert.equal(p.stats.skippedOversizeDatagrams, 1);
  assert.equal(
    parseAll(encodeCapsule({ kind: 'datagram', payload: new Uint8Array(100) }), p).length,
    1,
  );
});

test('request IDs above 2^53-1 (legal varints, not echoable exactly) are refused, not rounded', () => {
  assertCapsuleError(
    () => parseAll(hex('02 0e e7 e7 04 d2 01 01 02 20 04 00 00 00 00 20')),
    H3_MESSAGE_ERROR,
    /2\^53/,
  );
  const ok = parseAll(hex('02 0e c0 1f ff ff ff ff ff ff 04 00 00 00 00 20'));
  assert.ok(ok[0].kind === 'address-request');
  assert.equal(ok[0].addresses[0].requestId, Number.MAX_SAFE_INTEGER);
});

test('decoders used directly give the same results as the parser', () => {
  assert.deepEqual(decodeAddressAssign(hex('00 04 0a 01 01 02 20')), [
    { requestId: 0, prefix: prefix('10.1.1.2/32') },
  ]);
  assert.deepEqual(
    decodeAddressAssign(new Uint8Array(0)),
    [],
    'an empty ADDRESS_ASSIGN withdraws everything',
  );
  assert.deepEqual(
    decodeRouteAdvertisement(new Uint8Array(0)),
    [],
    'an empty ROUTE_ADVERTISEMENT withdraws all routes',
  );
});

// ---- properties --------------------------------------------------------------------------

const arbPrefix: fc.Arbitrary<IpPrefix> = fc
  .oneof(
    fc
      .tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 32 }))
      .map(([a, l]) => ({ version: 4 as const, a, l })),
    fc
      .tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.integer({ min: 0, max: 128 }))
      .map(([a, l]) => ({ version: 6 as const, a, l })),
  )
  .map(({ version, a, l }) => {
    const address = Uint8Array.from(a);
    for (let bit = l; bit < address.length * 8; bit++) address[bit >> 3] &= ~(0x80 >> (bit & 7));
    return { version, address, prefixLength: l };
  });

const arbEntry = (minId: number): fc.Arbitrary<AddressEntry> =>
  fc
    .record({ requestId: fc.integer({ min: minId, max: 2 ** 40 }), prefix: arbPrefix })
    .map((e) => ({ ...e }));

const arbRange: fc.Arbitrary<IpRange> = fc
  .oneof(
    fc.tuple(
      fc.constant(4 as const),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.uint8Array({ minLength: 4, maxLength: 4 }),
      fc.integer({ min: 0, max: 255 }),
    ),
    fc.tuple(
      fc.constant(6 as const),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.uint8Array({ minLength: 16, maxLength: 16 }),
      fc.integer({ min: 0, max: 255 }),
    ),
  )
  .map(([version, a, b, ipProtocol]) => {
    const [start, end] = Buffer.compare(Buffer.from(a), Buffer.from(b)) <= 0 ? [a, b] : [b, a];
    return { version, start: Uint8Array.from(start), end: Uint8Array.from(end), ipProtocol };
  });

const arbCapsule: fc.Arbitrary<Capsule> = fc.oneof(
  fc.uint8Array({ maxLength: 1500 }).map((payload) => ({ kind: 'datagram' as const, payload })),
  fc
    .array(arbEntry(0), { maxLength: 20 })
    .map((addresses) => ({ kind: 'address-assign' as const, addresses })),
  fc
    .array(arbEntry(1), { minLength: 1, maxLength: 20 })
    .map((addresses) => ({ kind: 'address-request' as const, addresses })),
  fc
    .array(arbRange, { maxLength: 20 })
    .map((r) => ({ kind: 'route-advertisement' as const, ranges: normaliseRoutes(r) })),
);

test('property: decode(encode(capsule)) = capsule, also when streamed in random pieces', () => {
  fc.assert(
    fc.property(
      fc.array(arbCapsule, { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 30 }),
      (capsules, cuts) => {
        const bytes = Uint8Array.from(capsules.flatMap((c) => [...encodeCapsule(c)]));
        const p = new CapsuleParser();
        const out: Capsule[] = [];
        let off = 0;
        for (let i = 0; off < bytes.length; i++) {
          const n = cuts[i % cuts.length];
          p.push(bytes.subarray(off, off + n), (c) =>
            out.push(c.kind === 'datagram' ? { kind: 'datagram', payload: c.payload.slice() } : c),
          );
          off += n;
        }
        p.finish();
        assert.deepEqual(out, capsules);
      },
    ),
    { numRuns: 300 },
  );
});
