import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLossArgs, PROFILES, runLoss, type LossOptions } from './main.js';

const opts = (over: Partial<LossOptions> = {}): LossOptions => {
  const o = parseLossArgs(['--simulated', '--seconds', '2', '--seed', '3']);
  assert.notEqual(o, 'help');
  return { ...(o as LossOptions), ...over };
};
const profile = (name: string) => PROFILES.find((p) => p.name === name) ?? assert.fail(name);

test('at 5% random loss Reed–Solomon delivers far more than no FEC, within its overhead', async () => {
  // 5 s: the first 200 ms go unprotected until the controller sees loss.
  const off = await runLoss(profile('random 5%'), 'off', opts({ seconds: 5 }));
  const rs = await runLoss(profile('random 5%'), 'rs', opts({ seconds: 5 }));
  assert.ok(off.deliveredLossPercent > 3, `off lost ${off.deliveredLossPercent}%`);
  assert.ok(rs.deliveredLossPercent < 1.2, `rs lost ${rs.deliveredLossPercent}%`);
  assert.ok(rs.deliveredLossPercent < off.deliveredLossPercent / 4);
  assert.ok(rs.overheadPercent > 5 && rs.overheadPercent <= 27, `overhead ${rs.overheadPercent}%`);
  assert.ok(rs.recovered > 0);
  assert.equal(off.overheadPercent, 0);
});

test('without loss adaptive FEC costs nothing and adds no latency', async () => {
  for (const mode of ['xor', 'rs'] as const) {
    const r = await runLoss(profile('random 0%'), mode, opts());
    assert.equal(r.delivered, r.sent);
    assert.equal(r.overheadPercent, 0);
    assert.equal(r.addedLatencyP99Ms, 0);
  }
});

test('options are checked', () => {
  assert.throws(() => parseLossArgs(['--rate', 'x']), /--rate/);
  assert.throws(() => parseLossArgs(['--nope']), /unknown option/);
  assert.equal(parseLossArgs(['--help']), 'help');
});
