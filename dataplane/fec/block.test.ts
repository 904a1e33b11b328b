import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeBlock, encodeBlock } from './block.js';
import type { ErasureCode } from './code.js';
import { reedSolomonCode } from './reed-solomon.js';
import { xorCode } from './xor.js';

const packets = fc.array(fc.uint8Array({ minLength: 1, maxLength: 120 }), {
  minLength: 1,
  maxLength: 24,
});

/** A block, its code and m, and a set of lost symbol positions (0..k-1 data, k.. repair). */
function blockWithLoss(code: ErasureCode, maxM: number, lossAtMostM: boolean) {
  return packets.chain((data) =>
    fc.integer({ min: 1, max: maxM }).chain((m) =>
      fc
        .subarray(
          Array.from({ length: data.length + m }, (_, i) => i),
          lossAtMostM ? { maxLength: m } : { minLength: Math.min(m + 1, data.length + m) },
        )
        .map((lost) => ({ code, data, m, lost: new Set(lost) })),
    ),
  );
}

function erase(data: Uint8Array[], repair: Uint8Array[], lost: Set<number>) {
  const k = data.length;
  return {
    d: data.map((p, i) => (lost.has(i) ? undefined : p)),
    r: repair.map((p, j) => (lost.has(k + j) ? undefined : p)),
  };
}

for (const [code, maxM] of [
  [xorCode, 1],
  [reedSolomonCode, 6],
] as const) {
  test(`${code.scheme}: any ≤ m erasures in a block give back exactly the original packets`, () => {
    fc.assert(
      fc.property(blockWithLoss(code, maxM, true), ({ data, m, lost }) => {
        const repair = encodeBlock(code, data, m);
        const { d, r } = erase(data, repair, lost);
        const out = decodeBlock(code, d, r);
        assert.ok(out !== undefined);
        assert.equal(out.length, data.length);
        for (let i = 0; i < data.length; i++) assert.deepEqual(out[i], data[i]);
      }),
      { numRuns: 300 },
    );
  });

  test(`${code.scheme}: more than m erasures never yields a packet that was not sent`, () => {
    fc.assert(
      fc.property(blockWithLoss(code, maxM, false), ({ data, m, lost }) => {
        const repair = encodeBlock(code, data, m);
        const { d, r } = erase(data, repair, lost);
        const lostData = [...lost].filter((i) => i < data.length).length;
        const out = decodeBlock(code, d, r);
        if (lostData === 0) {
          assert.deepEqual(out, data);
        } else {
          // More symbols lost than repair rows exist: fewer than k symbols remain.
          assert.equal(out, undefined);
        }
      }),
      { numRuns: 300 },
    );
  });
}

test('rs: the largest legal block (k + m = 256) recovers m erasures', () => {
  const k = 200;
  const m = 56;
  const data = Array.from({ length: k }, (_, i) => new Uint8Array([i, i ^ 0x5a, 255 - i]));
  const repair = encodeBlock(reedSolomonCode, data, m);
  const lost = new Set(Array.from({ length: m }, (_, i) => i * 3));
  const { d, r } = erase(data, repair, lost);
  const out = decodeBlock(reedSolomonCode, d, r);
  assert.deepEqual(out, data);
});

test('rs with m = 1 is byte-identical to XOR parity', () => {
  fc.assert(
    fc.property(packets, (data) => {
      assert.deepEqual(encodeBlock(reedSolomonCode, data, 1), encodeBlock(xorCode, data, 1));
    }),
    { numRuns: 50 },
  );
});
