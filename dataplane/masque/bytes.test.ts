import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { copyBytes } from './bytes.js';

test('copyBytes honours offsets, including views that start inside their ArrayBuffer', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 300 }),
      fc.nat(50),
      fc.nat(50),
      fc.nat(300),
      (bytes, viewStart, dstOff, lenSeed) => {
        const backing = new Uint8Array(viewStart + bytes.length);
        backing.set(bytes, viewStart);
        const src = backing.subarray(viewStart);
        const srcOff = lenSeed % bytes.length;
        const len = bytes.length - srcOff;
        const dst = new Uint8Array(dstOff + len + 3).fill(0xee);
        copyBytes(src, srcOff, dst, dstOff, len);
        assert.deepEqual(dst.subarray(dstOff, dstOff + len), bytes.subarray(srcOff));
        assert.ok(dst.subarray(0, dstOff).every((b) => b === 0xee));
        assert.ok(dst.subarray(dstOff + len).every((b) => b === 0xee));
      },
    ),
  );
});

test('copyBytes sees later writes to a cached source', () => {
  const src = new Uint8Array(4);
  const dst = new Uint8Array(4);
  copyBytes(src, 0, dst, 0, 4);
  src[2] = 9;
  copyBytes(src, 0, dst, 0, 4);
  assert.deepEqual([...dst], [0, 0, 9, 0]);
});
