import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Backoff } from './backoff.js';

describe('Backoff', () => {
  it('doubles the ceiling up to the cap, drawing under it', () => {
    const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.5 });
    assert.deepEqual(
      Array.from({ length: 6 }, () => b.next()),
      [50, 100, 200, 400, 500, 500],
    );
  });

  it('uses the whole [0, ceiling) interval (full jitter)', () => {
    const lo = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 });
    const hi = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0.999999 });
    for (let i = 0; i < 3; i++) lo.next();
    for (let i = 0; i < 3; i++) hi.next();
    assert.equal(lo.next(), 0);
    assert.equal(hi.next(), 799);
  });

  it('starts over after reset', () => {
    const b = new Backoff({ baseMs: 100, capMs: 10_000, random: () => 0.5 });
    b.next();
    b.next();
    b.next();
    assert.equal(b.attempt, 3);
    b.reset();
    assert.equal(b.attempt, 0);
    assert.equal(b.next(), 50);
  });

  it('never exceeds the cap nor goes negative, whatever the random source', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.array(fc.double({ noNaN: false }), { minLength: 1, maxLength: 80 }),
        (base, extra, draws) => {
          const cap = base + extra;
          let i = 0;
          const b = new Backoff({
            baseMs: base,
            capMs: cap,
            random: () => draws[i++ % draws.length],
          });
          for (let n = 0; n < draws.length + 70; n++) {
            const d = b.next();
            assert.ok(
              Number.isInteger(d) && d >= 0 && d < cap + 1,
              `delay ${d} within [0, ${cap}]`,
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses nonsense settings', () => {
    assert.throws(() => new Backoff({ baseMs: 0, capMs: 10 }), RangeError);
    assert.throws(() => new Backoff({ baseMs: 100, capMs: 10 }), RangeError);
  });
});
