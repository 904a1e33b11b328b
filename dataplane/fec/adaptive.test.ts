import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdaptiveRedundancy, residualLoss, type LossSample } from './adaptive.js';

/** Drives the controller with `ticks` samples of `perTick` datagrams at loss rate `p`. */
function drive(a: AdaptiveRedundancy, p: number, ticks: number, from: LossSample): LossSample {
  let s = from;
  for (let i = 0; i < ticks; i++) {
    s = { datagramsSent: s.datagramsSent + 1000, datagramsLost: s.datagramsLost + 1000 * p };
    a.tick(s);
  }
  return s;
}

test('residual loss: no repair equals the link loss; more repair is strictly better', () => {
  assert.ok(Math.abs(residualLoss(10, 0, 0.05) - 0.05) < 1e-12);
  assert.equal(residualLoss(10, 3, 0), 0);
  let prev = 1;
  for (let m = 0; m <= 6; m++) {
    const r = residualLoss(10, m, 0.05);
    assert.ok(r < prev, `m=${m}`);
    prev = r;
  }
  // Closed form for k=1, m=1 (both copies lost): p².
  assert.ok(Math.abs(residualLoss(1, 1, 0.1) - 0.01) < 1e-12);
});

test('no loss: redundancy is zero', () => {
  const a = new AdaptiveRedundancy({
    scheme: 'rs',
    maxK: 10,
    maxM: 5,
    minRatio: 0.1,
    maxRatio: 0.5,
  });
  drive(a, 0, 20, { datagramsSent: 0, datagramsLost: 0 });
  assert.equal(a.current.m, 0);
  assert.equal(a.current.ratio, 0);
});

test('rs: repair follows loss, stays within bounds, and switches off after a quiet spell', () => {
  const a = new AdaptiveRedundancy({
    scheme: 'rs',
    maxK: 10,
    maxM: 6,
    minRatio: 0.1,
    maxRatio: 0.5,
    quietTicks: 5,
  });
  let s = drive(a, 0.01, 20, { datagramsSent: 0, datagramsLost: 0 });
  const at1 = a.current;
  s = drive(a, 0.05, 20, s);
  const at5 = a.current;
  s = drive(a, 0.3, 20, s);
  const at30 = a.current;
  assert.ok(at1.m >= 1 && at1.m < at5.m, `1%: m=${at1.m}, 5%: m=${at5.m}`);
  assert.ok(Math.abs(at5.lossEstimate - 0.05) < 0.005);
  assert.equal(at30.m, 5, 'clamped at maxRatio·k');
  assert.ok(residualLoss(10, at5.m, 0.05) <= 0.0005);
  drive(a, 0, 4, s);
  assert.ok(a.current.m > 0, 'not yet quiet long enough');
  drive(a, 0, 1, s);
  assert.equal(a.current.m, 0);
});

test('xor: block size shrinks as loss grows, within the ratio bounds', () => {
  const a = new AdaptiveRedundancy({
    scheme: 'xor',
    maxK: 20,
    maxM: 1,
    minRatio: 0.05,
    maxRatio: 0.5,
  });
  const s = drive(a, 0.002, 20, { datagramsSent: 0, datagramsLost: 0 });
  const low = a.current;
  drive(a, 0.05, 30, s);
  const high = a.current;
  assert.equal(low.m, 1);
  assert.ok(low.k > high.k, `${low.k} vs ${high.k}`);
  assert.ok(high.k >= 2 && high.ratio <= 0.5);
});

test('unrecoverable blocks reported by the receiver raise redundancy (bursts)', () => {
  const opts = { scheme: 'rs' as const, maxK: 10, maxM: 8, minRatio: 0.1, maxRatio: 0.8 };
  const plain = new AdaptiveRedundancy(opts);
  const bursty = new AdaptiveRedundancy(opts);
  let a: LossSample = { datagramsSent: 0, datagramsLost: 0 };
  let b: LossSample = { ...a, dataPacketsReceived: 0, packetsRecovered: 0, unrecoverableBlocks: 0 };
  for (let i = 0; i < 10; i++) {
    a = { datagramsSent: a.datagramsSent + 1000, datagramsLost: a.datagramsLost + 20 };
    b = {
      datagramsSent: a.datagramsSent,
      datagramsLost: a.datagramsLost,
      dataPacketsReceived: (b.dataPacketsReceived ?? 0) + 1000,
      packetsRecovered: (b.packetsRecovered ?? 0) + 10,
      unrecoverableBlocks: (b.unrecoverableBlocks ?? 0) + 3,
    };
    plain.tick(a);
    bursty.tick(b);
  }
  assert.ok(bursty.current.m > plain.current.m, `${bursty.current.m} vs ${plain.current.m}`);
});
