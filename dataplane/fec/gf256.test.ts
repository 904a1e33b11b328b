import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addInto,
  gfDiv,
  gfInv,
  gfMul,
  mulAddInto,
  mulAddMany,
  mulInPlace,
  GfDivisionByZero,
} from './gf256.js';

// Carry-less multiply reduced by 0x11d, bit by bit: an independent model of the table.
function slowMul(a: number, b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) if (b & (1 << i)) r ^= a << i;
  for (let bit = 15; bit >= 8; bit--) if (r & (1 << bit)) r ^= 0x11d << (bit - 8);
  return r;
}

test('table multiplication matches the polynomial definition for every pair', () => {
  for (let a = 0; a < 256; a++) {
    for (let b = 0; b < 256; b++) assert.equal(gfMul(a, b), slowMul(a, b), `${a}·${b}`);
  }
});

test('every nonzero element has an inverse; division undoes multiplication', () => {
  for (let a = 1; a < 256; a++) {
    assert.equal(gfMul(a, gfInv(a)), 1);
    for (const b of [1, 2, 0x53, 0xca, 255]) assert.equal(gfDiv(gfMul(a, b), b), a);
  }
  assert.throws(() => gfInv(0), GfDivisionByZero);
  assert.throws(() => gfDiv(3, 0), GfDivisionByZero);
  assert.equal(gfDiv(0, 7), 0);
});

test('slice multiply-add and in-place multiply agree with the scalar definition', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 300 }),
      fc.integer({ min: 0, max: 255 }),
      fc.nat(8),
      (src, c, off) => {
        const dst = new Uint8Array(src.length + off).map((_, i) => (i * 37) & 0xff);
        const want = dst.slice();
        for (let i = 0; i < src.length; i++) want[off + i] ^= slowMul(c, src[i]);
        mulAddInto(dst, off, src, 0, src.length, c);
        assert.deepEqual(dst, want);
        const x = src.slice();
        mulInPlace(x, 0, x.length, c);
        assert.deepEqual(
          x,
          src.map((v) => slowMul(c, v)),
        );
        const y = new Uint8Array(src.length);
        addInto(y, 0, src, 0, src.length);
        assert.deepEqual(y, src);
      },
    ),
  );
});

test('fused multiply-add into many rows equals one pass per row', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 100 }),
      fc.uint8Array({ minLength: 0, maxLength: 9 }),
      fc.nat(5),
      (src, coefs, off) => {
        const fused = Array.from(coefs, (_, j) => new Uint8Array(src.length + off).fill(j));
        const apart = fused.map((d) => d.slice());
        mulAddMany(fused, coefs, coefs.length, off, src, 0, src.length);
        apart.forEach((d, j) => mulAddInto(d, off, src, 0, src.length, coefs[j]));
        assert.deepEqual(fused, apart);
      },
    ),
  );
});
