import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  fullRange,
  normaliseRoutes,
  rangesContain,
  validateRoutes,
  type IpRange,
} from './route.js';
import { hex } from './fixtures.js';

const v4 = (s: string, e: string, p = 0): IpRange => ({
  version: 4,
  start: hex(s),
  end: hex(e),
  ipProtocol: p,
});

test('normaliser merges touching and overlapping ranges and sorts by (version, protocol, start)', () => {
  const out = normaliseRoutes([
    fullRange(6),
    v4('0a000100', '0a0001ff'),
    v4('0a000000', '0a0000ff'),
    v4('0a000080', '0a000180', 17),
  ]);
  assert.deepEqual(out, [v4('0a000000', '0a0001ff'), fullRange(6)]);
  assert.equal(validateRoutes(out), undefined);
});

test('normaliser removes the parts of protocol-specific ranges that protocol 0 covers', () => {
  const out = normaliseRoutes([v4('0a000000', '0a0000ff'), v4('0a000080', '0a0002ff', 6)]);
  assert.deepEqual(out, [v4('0a000000', '0a0000ff'), v4('0a000100', '0a0002ff', 6)]);
  assert.equal(validateRoutes(out), undefined);
  const hole = normaliseRoutes([v4('0a000010', '0a000020'), v4('0a000000', '0a0000ff', 6)]);
  assert.deepEqual(hole, [
    v4('0a000010', '0a000020'),
    v4('0a000000', '0a00000f', 6),
    v4('0a000021', '0a0000ff', 6),
  ]);
  assert.equal(validateRoutes(hole), undefined);
});

test('range lookup honours protocol, always admits ICMP, and unknown protocol only matches protocol 0', () => {
  const set = normaliseRoutes([v4('0a000000', '0a0000ff', 6)]);
  assert.equal(rangesContain(set, 4, hex('0a000005'), 0, 6), true);
  assert.equal(rangesContain(set, 4, hex('0a000005'), 0, 17), false);
  assert.equal(rangesContain(set, 4, hex('0a000005'), 0, 1), true, 'ICMP always allowed');
  assert.equal(rangesContain(set, 4, hex('0a000100'), 0, 6), false);
  assert.equal(rangesContain(set, 4, hex('0a000005'), 0, -1), false);
  assert.equal(rangesContain([fullRange(6)], 6, new Uint8Array(16), 0, -1), true);
  assert.equal(rangesContain([fullRange(6)], 4, new Uint8Array(4), 0, 6), false);
});

const arbRange: fc.Arbitrary<IpRange> = fc
  .tuple(
    fc.constantFrom(4 as const, 6 as const),
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 40 }),
    fc.constantFrom(0, 6, 17),
  )
  .map(([version, a, b, ipProtocol]) => {
    // Small values at the end of the address space make merging, touching and holes likely.
    const len = version === 4 ? 4 : 16;
    const at = (v: number): Uint8Array => {
      const x = new Uint8Array(len);
      x[len - 1] = v;
      return x;
    };
    return { version, start: at(a), end: at(b), ipProtocol };
  });

test('property: normalisation is valid, idempotent and independent of input order', () => {
  fc.assert(
    fc.property(
      fc.array(arbRange, { maxLength: 12 }),
      fc.infiniteStream(fc.nat()),
      (ranges, rnd) => {
        const once = normaliseRoutes(ranges);
        assert.equal(validateRoutes(once), undefined);
        assert.deepEqual(normaliseRoutes(once), once);
        const shuffled = ranges.slice();
        const it = rnd[Symbol.iterator]();
        for (let i = shuffled.length - 1; i > 0; i--) {
          const j = (it.next().value as number) % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
        }
        assert.deepEqual(normaliseRoutes(shuffled), once);
      },
    ),
    { numRuns: 500 },
  );
});

test('property: normalisation preserves which (address, protocol) pairs are routed', () => {
  fc.assert(
    fc.property(fc.array(arbRange, { maxLength: 8 }), (ranges) => {
      const norm = normaliseRoutes(ranges);
      for (const version of [4, 6] as const) {
        for (let v = 0; v <= 41; v++) {
          const addr = new Uint8Array(version === 4 ? 4 : 16);
          addr[addr.length - 1] = v;
          for (const proto of [6, 17, 0]) {
            // The raw set answers by any range regardless of order; compare to the normalised set.
            const raw = ranges.some(
              (r) =>
                r.version === version &&
                r.start[r.start.length - 1] <= v &&
                v <= r.end[r.end.length - 1] &&
                (r.ipProtocol === 0 || r.ipProtocol === proto),
            );
            assert.equal(
              rangesContain(norm, version, addr, 0, proto),
              raw,
              `${version} ${v} ${proto}`,
            );
          }
        }
      }
    }),
    { numRuns: 200 },
  );
});
