import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  encodeVarint,
  readVarint,
  varintSize,
  varintSizeBigInt,
  VarintRangeError,
  writeVarint,
  writeVarintBigInt,
} from './varint.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

test('RFC 9000 §A.1 sample varints decode', () => {
  assert.deepEqual(readVarint(hex('c2197c5eff14e88c'), 0), {
    value: Number(0x02197c5eff14e88cn),
    length: 8,
  });
  assert.deepEqual(readVarint(hex('9d7f3e7d'), 0), { value: 494878333, length: 4 });
  assert.deepEqual(readVarint(hex('7bbd'), 0), { value: 15293, length: 2 });
  assert.deepEqual(readVarint(hex('25'), 0), { value: 37, length: 1 });
  assert.deepEqual(readVarint(hex('4025'), 0), { value: 37, length: 2 }, 'non-minimal accepted');
});

test('truncated input asks for more bytes', () => {
  assert.equal(readVarint(hex(''), 0), undefined);
  assert.equal(readVarint(hex('7b'), 0), undefined);
  assert.equal(readVarint(hex('9d7f3e'), 0), undefined);
  assert.equal(readVarint(hex('c2197c5eff14e8'), 0), undefined);
});

test('62-bit values decode (rounded) instead of failing; encoding past 2^53-1 is refused', () => {
  assert.deepEqual(readVarint(hex('ffffffffffffffff'), 0), {
    value: Number(2n ** 62n - 1n),
    length: 8,
  });
  assert.throws(() => varintSize(2 ** 53), VarintRangeError);
  assert.throws(() => writeVarint(new Uint8Array(1), 0, 64, 1), VarintRangeError);
});

test('decode(encode(x)) = x at every length', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (v) => {
      const enc = encodeVarint(v);
      assert.equal(enc.length, varintSize(v));
      assert.deepEqual(readVarint(enc, 0), { value: v, length: enc.length });
      const wide = encodeVarint(v, 8);
      assert.deepEqual(readVarint(wide, 0), { value: v, length: 8 });
    }),
  );
});

test('PROTOCOL.md §1.2 values used by this project encode exactly', () => {
  const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  assert.equal(toHex(encodeVarint(0x33)), '33');
  assert.equal(toHex(encodeVarint(0x276)), '4276');
  assert.equal(toHex(encodeVarint(1281)), '4501');
  const big = new Uint8Array(8);
  assert.equal(writeVarintBigInt(big, 0, 2n ** 62n - 4n), 8);
  assert.equal(toHex(big), 'fffffffffffffffc');
  assert.equal(varintSizeBigInt(2n ** 62n - 4n), 8);
  assert.equal(varintSizeBigInt(37n), 1);
  assert.throws(() => writeVarintBigInt(big, 0, 2n ** 62n), VarintRangeError);
});
