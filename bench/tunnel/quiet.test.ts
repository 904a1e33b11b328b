import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { clockTicksPerSecond } from './cpu.js';
import { ForeignCpu, foreignPercent, ownTicks, parseBusyTicks, ProcCpuError } from './quiet.js';

describe('quiet gate arithmetic', () => {
  it('sums user, nice and system of the all-CPU line', () => {
    const text = 'cpu  100 5 40 9000 12 3 7 0 0 0\ncpu0 50 2 20 4500 6 1 3 0 0 0\n';
    assert.equal(parseBusyTicks(text), 145);
  });

  it('rejects what is not /proc/stat', () => {
    assert.throws(() => parseBusyTicks('cpu0 1 2 3 4'), ProcCpuError);
    assert.throws(() => parseBusyTicks('cpu  a b c d'), ProcCpuError);
    assert.throws(() => parseBusyTicks(''), ProcCpuError);
  });

  it("turns tick deltas into others' CPU in % of one core", () => {
    // 2 s at 100 Hz: 150 busy ticks of which 50 ours -> 100 ticks = 50% of a core.
    assert.equal(foreignPercent(150, 50, 2, 100), 50);
    // Accounting skew can make ours exceed the machine's busy time: never negative.
    assert.equal(foreignPercent(10, 20, 1, 100), 0);
    assert.equal(foreignPercent(10, 0, 0, 100), 0);
  });

  it('counts the CPU of an exited child as our own, not as foreign', async () => {
    assert.ok(parseBusyTicks(readFileSync('/proc/stat', 'latin1')) > 0);
    const hz = clockTicksPerSecond();
    const before = ownTicks();
    // A child that burns 300 ms of its own CPU (however long that takes on a busy machine) and
    // exits: afterwards its time exists only in our cutime/cstime.
    const child = spawn(process.execPath, [
      '-e',
      'while (process.cpuUsage().user + process.cpuUsage().system < 300000);',
    ]);
    await new Promise((r) => child.once('exit', r));
    const delta = ownTicks() - before;
    assert.ok(delta >= 0.25 * hz, `child CPU missing from own ticks: ${delta} ticks at ${hz} Hz`);
    assert.ok(new ForeignCpu().read() >= 0);
  });
});
