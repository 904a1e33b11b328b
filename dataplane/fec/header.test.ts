import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FEC_HEADER_SIZE,
  FecHeaderError,
  blockDistance,
  decodeFecHeader,
  encodeFecHeader,
  type FecHeader,
} from './header.js';

const header: fc.Arbitrary<FecHeader> = fc
  .record({
    scheme: fc.constantFrom(0 as const, 1 as const),
    blockId: fc.integer({ min: 0, max: 0xffff }),
    k: fc.integer({ min: 1, max: 255 }),
  })
  .chain((h) =>
    fc
      .integer({ min: 1, max: h.scheme === 0 ? 1 : 256 - h.k })
      .chain((m) => fc.integer({ min: 0, max: h.k + m - 1 }).map((index) => ({ ...h, m, index }))),
  );

function withBody(h: FecHeader): Uint8Array {
  const out = new Uint8Array(FEC_HEADER_SIZE + 1);
  out.set(encodeFecHeader(h));
  return out;
}

test('header round trip', () => {
  fc.assert(
    fc.property(header, (h) => {
      assert.deepEqual(decodeFecHeader(withBody(h)), h);
    }),
  );
});

test('known bytes: RS block 0x1234, index 3 of 10+3', () => {
  const bytes = encodeFecHeader({ scheme: 1, blockId: 0x1234, index: 3, k: 10, m: 3 });
  assert.deepEqual([...bytes], [0x11, 0x12, 0x34, 0x03, 0x0a, 0x03]);
});

test('malformed headers are typed errors with a reason', () => {
  const cases: [number[], string][] = [
    [[], 'truncated'],
    [[0x11, 0, 0, 0, 10], 'truncated'],
    [[0x01, 0, 0, 0, 10, 3, 9], 'unsupported-version'],
    [[0x21, 0, 0, 0, 10, 3, 9], 'unsupported-version'],
    [[0x12, 0, 0, 0, 10, 3, 9], 'unknown-scheme'],
    [[0x11, 0, 0, 0, 0, 3, 9], 'invalid-k'],
    [[0x11, 0, 0, 0, 10, 0, 9], 'invalid-m'],
    [[0x11, 0, 0, 0, 200, 57, 9], 'invalid-m'],
    [[0x10, 0, 0, 0, 10, 2, 9], 'invalid-m'],
    [[0x11, 0, 0, 13, 10, 3, 9], 'invalid-index'],
    [[0x11, 0, 0, 0, 10, 3], 'empty-payload'],
  ];
  for (const [bytes, reason] of cases) {
    assert.throws(
      () => decodeFecHeader(new Uint8Array(bytes)),
      (err: unknown) => err instanceof FecHeaderError && err.reason === reason,
      `${bytes.join(',')} → ${reason}`,
    );
  }
  assert.throws(
    () => encodeFecHeader({ scheme: 1, blockId: 0x10000, index: 0, k: 1, m: 1 }),
    FecHeaderError,
  );
});

test('hostile bytes only ever raise FecHeaderError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 12 }), (bytes) => {
      try {
        decodeFecHeader(bytes);
      } catch (err) {
        assert.ok(err instanceof FecHeaderError);
      }
    }),
    { numRuns: 2000 },
  );
});

test('block ids compare as 16-bit serial numbers', () => {
  assert.equal(blockDistance(10, 12), 2);
  assert.equal(blockDistance(12, 10), -2);
  assert.equal(blockDistance(0xfffe, 1), 3);
  assert.equal(blockDistance(1, 0xfffe), -3);
});
