import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImpairmentConfigError, ImpairmentModel, LOST } from './model.js';
import { parseImpairArgs, UsageError } from './main.js';
import { parseBurst, parseDuration, parsePercent, parseRate, UnitError } from './units.js';

const N = 50_000;

function lossPattern(model: ImpairmentModel, n = N): boolean[] {
  return Array.from({ length: n }, (_, i) => model.admit(100, i) === LOST);
}

test('random loss: measured rate within 4σ of the configured one', () => {
  for (const p of [0.01, 0.05, 0.1]) {
    const lost = lossPattern(new ImpairmentModel({ loss: p }, 7)).filter(Boolean).length;
    const sigma = Math.sqrt((p * (1 - p)) / N);
    assert.ok(Math.abs(lost / N - p) < 4 * sigma, `p=${p}: measured ${lost / N}`);
  }
});

test('same seed replays the same pattern; another seed does not', () => {
  const a = lossPattern(new ImpairmentModel({ loss: 0.1, jitterMs: 3 }, 42), 2000);
  const b = lossPattern(new ImpairmentModel({ loss: 0.1, jitterMs: 3 }, 42), 2000);
  const c = lossPattern(new ImpairmentModel({ loss: 0.1, jitterMs: 3 }, 43), 2000);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

test('Gilbert–Elliott: mean loss p/(p+r) and mean burst length 1/r', () => {
  const p = 0.01;
  const r = 0.25;
  const lost = lossPattern(new ImpairmentModel({ burst: { p, r } }, 3), 200_000);
  const rate = lost.filter(Boolean).length / lost.length;
  let bursts = 0;
  for (let i = 0; i < lost.length; i++) if (lost[i] && !lost[i - 1]) bursts++;
  const meanBurst = lost.filter(Boolean).length / bursts;
  assert.ok(Math.abs(rate - p / (p + r)) < 0.004, `loss ${rate}`);
  assert.ok(Math.abs(meanBurst - 1 / r) < 0.3, `burst ${meanBurst}`);
  // Bursty: far more back-to-back losses than independent loss at the same rate would give.
  let pairs = 0;
  for (let i = 1; i < lost.length; i++) if (lost[i] && lost[i - 1]) pairs++;
  assert.ok(pairs / lost.length > 10 * rate * rate);
});

test('delay and jitter bound the departure time', () => {
  const m = new ImpairmentModel({ delayMs: 20, jitterMs: 5 }, 1);
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < 5000; i++) {
    const d = m.admit(100, 1000) - 1000;
    min = Math.min(min, d);
    max = Math.max(max, d);
  }
  assert.ok(min >= 15 && min < 15.1, `min ${min}`);
  assert.ok(max <= 25 && max > 24.9, `max ${max}`);
});

test('reordering: the chosen share is held back past later packets', () => {
  const m = new ImpairmentModel({ delayMs: 1, reorder: 0.1, reorderDelayMs: 10 }, 9);
  const leave = Array.from({ length: 10_000 }, (_, i) => m.admit(100, i * 0.1));
  let overtaken = 0;
  for (let i = 0; i + 1 < leave.length; i++) if (leave[i] > leave[i + 1]) overtaken++;
  assert.ok(Math.abs(m.stats.reordered / 10_000 - 0.1) < 0.015);
  assert.ok(overtaken > 500, `${overtaken}`);
});

test('rate limit: a burst drains at the link rate and the queue drops its tail', () => {
  const m = new ImpairmentModel({ rateBps: 10e6, queueMs: 50 }, 1);
  // 100 packets of 1250 B = 1 Mbit arrive at once: 1 ms each at 10 Mbit/s, 50 ms of queue.
  const leave = Array.from({ length: 100 }, () => m.admit(1250, 0));
  const sent = leave.filter((t) => t !== LOST);
  assert.equal(sent.length, 51);
  assert.deepEqual(sent.slice(0, 3), [1, 2, 3]);
  assert.equal(m.stats.queueDrops, 49);
});

test('units and CLI parsing', () => {
  assert.equal(parsePercent('5%'), 0.05);
  assert.equal(parsePercent('0.5'), 0.005);
  assert.equal(parseDuration('10ms'), 10);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('500us'), 0.5);
  assert.equal(parseRate('100mbit'), 1e8);
  assert.equal(parseRate('1Gbit'), 1e9);
  assert.equal(parseRate('10mbps'), 8e7);
  assert.deepEqual(parseBurst('1%,25%'), { p: 0.01, r: 0.25, lossBad: 1, lossGood: 0 });
  for (const bad of ['', 'x', '150%', '-1%']) assert.throws(() => parsePercent(bad), UnitError);
  assert.throws(() => parseRate('100'), UnitError);
  assert.throws(() => parseBurst('1%,0%'), UnitError);
  const cli = parseImpairArgs([
    '--listen',
    '127.0.0.1:0',
    '--target',
    '127.0.0.1:9',
    '--loss',
    '5%',
    '--delay',
    '10ms',
    '--rate',
    '100mbit',
    '--seed',
    '4',
  ]);
  assert.notEqual(cli, 'help');
  if (cli !== 'help') {
    assert.deepEqual(cli.impairment, { loss: 0.05, delayMs: 10, rateBps: 1e8 });
    assert.equal(cli.seed, 4);
  }
  assert.throws(() => parseImpairArgs(['--listen', '127.0.0.1:0']), UsageError);
  assert.throws(() => parseImpairArgs(['--bogus', '1']), UsageError);
  assert.throws(() => parseImpairArgs(['--loss']), UsageError);
  assert.throws(() => new ImpairmentModel({ loss: 2 }, 1), ImpairmentConfigError);
});
