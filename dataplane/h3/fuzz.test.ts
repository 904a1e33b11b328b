import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H3Error, H3ErrorCode } from './error.js';
import { Rng, h3FuzzTargets, mutate, runFuzz, type FuzzTarget } from './fuzz.js';
import { main } from './fuzz-cli.js';

test('a short bounded fuzz round over every h3 target finds no failure', () => {
  const targets = h3FuzzTargets();
  // A generous per-input budget: CI shares two cores, and a GC pause is not a hang.
  const reports = runFuzz(targets, { seconds: 3, seed: 0xc0ffee, maxMsPerInput: 2000 });
  assert.equal(reports.length, targets.length);
  for (const r of reports) {
    assert.deepEqual(r.failures, [], r.target);
    assert.ok(r.inputs > 50, `${r.target} ran only ${r.inputs} inputs`);
  }
});

test('the runner reports untyped exceptions and slow inputs, and accepts typed ones', () => {
  const target: FuzzTarget = {
    name: 'self-test',
    seeds: [Uint8Array.of(1, 2, 3)],
    run(input) {
      if (input.length === 0) throw new H3Error(H3ErrorCode.FRAME_ERROR, 'empty');
      if (input[0] === 0xff) throw new TypeError('boom');
      if (input[0] === 0xfe) {
        const until = performance.now() + 30;
        while (performance.now() < until);
      }
    },
  };
  const [r] = runFuzz([target], {
    iterations: 5000,
    seed: 7,
    maxMsPerInput: 20,
    maxFailures: 1000,
  });
  assert.equal(r.inputs, 5000);
  assert.ok(r.expectedErrors > 0);
  assert.ok(r.failures.some((f) => f.reason.includes('TypeError: boom')));
  assert.ok(r.failures.some((f) => /took \d+ ms/.test(f.reason)));
  assert.ok(r.failures.every((f) => /^(ff|fe)/.test(f.input)));
});

test('mutation is reproducible from the seed and bounded in length', () => {
  const seed = Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7);
  const a = new Rng(42);
  const b = new Rng(42);
  for (let i = 0; i < 200; i++) {
    const x = mutate(seed, a, [seed], 16);
    assert.deepEqual(x, mutate(seed, b, [seed], 16));
    assert.ok(x.length <= 16);
  }
});

test('fuzz-cli main() runs a bounded round and returns 0', () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    assert.equal(main(['--iterations', '200', '--seed', '3']), 0);
  } finally {
    console.log = log;
  }
  assert.ok(lines.some((l) => l.startsWith('h3.qpack-decoder') && l.includes('/s')));
});
