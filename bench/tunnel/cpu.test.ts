import { test } from 'node:test';
import assert from 'node:assert/strict';

import { cpuPerGbit, parseProcStat, ProcStatError, readProcessTable, treeTicks } from './cpu.js';

test('utime + stime, with a command name holding spaces and parentheses', () => {
  const line =
    '4242 (node (worker) x) S 4200 4242 27877 0 -1 4194304 99 0 0 0 150 37 5 6 20 0 1 0 691071 2998272 395';
  assert.deepEqual(parseProcStat(line), { pid: 4242, ppid: 4200, ticks: 187, childTicks: 11 });
});

test('malformed lines are ProcStatError', () => {
  assert.throws(() => parseProcStat(''), ProcStatError);
  assert.throws(() => parseProcStat('12 (x) S 1 2'), ProcStatError);
  assert.throws(() => parseProcStat('12 x S 1 2 3 4 5 6 7 8 9 10 11 12'), ProcStatError);
});

test('our own /proc entry parses', () => {
  const me = readProcessTable().find((p) => p.pid === process.pid);
  assert.ok(me, 'own process in the table');
  assert.equal(me.ppid, process.ppid);
  assert.ok(me.ticks >= 0);
});

test('tree sum: roots and descendants only, each once', () => {
  const table = [
    { pid: 1, ppid: 0, ticks: 1000, childTicks: 500 },
    { pid: 10, ppid: 1, ticks: 5, childTicks: 0 }, // ip netns exec wrapper (root)
    { pid: 11, ppid: 10, ticks: 100, childTicks: 3 }, // daemon, which reaped a helper
    { pid: 12, ppid: 11, ticks: 40, childTicks: 0 }, // its worker process
    { pid: 20, ppid: 1, ticks: 7, childTicks: 0 }, // second root
    { pid: 30, ppid: 1, ticks: 999, childTicks: 50 }, // somebody else's
  ];
  assert.equal(treeTicks([10, 20], table), 152);
  assert.equal(treeTicks([10, 20], table, true), 155);
  assert.equal(treeTicks([11, 12, 11], table), 140);
  assert.equal(treeTicks([99], table), 0);
  assert.equal(treeTicks([], table), 0);
});

test('CPU per gigabit', () => {
  assert.equal(cpuPerGbit(2, 125_000_000), 2); // 1 Gbit in 2 CPU-seconds
  assert.equal(cpuPerGbit(1, 0), undefined);
});
