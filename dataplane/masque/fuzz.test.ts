import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../h3/fuzz.js';
import { masqueFuzzTargets } from './fuzz.js';

test('fuzz round: every CONNECT-IP parser survives ~2 s of random and mutated inputs', () => {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 32);
  const reports = runFuzz(masqueFuzzTargets(), { seconds: 2, seed });
  for (const r of reports) {
    assert.ok(r.inputs > 100, `${r.target} ran only ${r.inputs} inputs`);
    assert.deepEqual(r.failures, [], `${r.target} (seed ${seed})`);
  }
});

test('fuzz targets are not vacuous: seeds decode, bad inputs raise typed errors', () => {
  const reports = runFuzz(masqueFuzzTargets(), { iterations: 3000, seed: 1 });
  const byName = new Map(reports.map((r) => [r.target, r]));
  for (const name of [
    'masque.capsule-stream',
    'masque.address-assign',
    'masque.address-request',
    'masque.route-advertisement',
  ])
    assert.ok((byName.get(name)?.expectedErrors ?? 0) > 0, `${name} never saw a malformed input`);
  for (const r of reports) assert.deepEqual(r.failures, [], r.target);
});
