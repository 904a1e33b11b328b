import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllArgs, parseJsonOutput } from './main.js';
import { derivedRatios, flatten, formatValue, renderReport, type StepResult } from './markdown.js';
import { QUICK_PLAN, selectSteps } from './plan.js';

test('the quick plan runs every benchmark once, each bounded, with JSON where it exists', () => {
  const names = QUICK_PLAN.map((s) => s.name);
  assert.deepEqual(
    [...names].sort(),
    ['control', 'fec', 'fuzz', 'load', 'loss', 'quic', 'ring', 'tunnel'].sort(),
  );
  for (const s of QUICK_PLAN) {
    assert.ok(s.timeoutS > 0 && s.timeoutS <= 600, s.name);
    assert.equal(s.json, s.args.includes('--json'), s.name);
  }
});

test('selectSteps: --only and --skip, unknown names refused', () => {
  const only = selectSteps(QUICK_PLAN, ['fec', 'quic'], []) as { name: string }[];
  assert.deepEqual(
    only.map((s) => s.name),
    ['quic', 'fec'],
  );
  const skipped = selectSteps(QUICK_PLAN, undefined, ['tunnel']) as { name: string }[];
  assert.equal(skipped.length, QUICK_PLAN.length - 1);
  assert.match(selectSteps(QUICK_PLAN, ['nope'], []) as string, /unknown benchmark 'nope'/);
});

test('parseAllArgs: flags, defaults and errors', () => {
  assert.deepEqual(parseAllArgs(['--quick', '--out', 'r.md', '--skip', 'tunnel,loss']), {
    quick: true,
    out: 'r.md',
    only: undefined,
    skip: ['tunnel', 'loss'],
  });
  assert.equal(parseAllArgs(['--help']), 'help');
  assert.equal(typeof parseAllArgs(['--out']), 'string');
  assert.equal(typeof parseAllArgs(['--bogus']), 'string');
});

test('parseJsonOutput: whole stdout, or from the first line opening JSON; else undefined', () => {
  assert.deepEqual(parseJsonOutput('{"a":1}\n'), { a: 1 });
  assert.deepEqual(parseJsonOutput('warming up\n[1,2]\n'), [1, 2]);
  assert.equal(parseJsonOutput('a table\n| x |\n'), undefined);
  assert.equal(parseJsonOutput(''), undefined);
});

test('flatten: scalars by dotted path, arrays of objects as tables, short scalar arrays joined', () => {
  const f = flatten({
    date: 'd',
    setup: { ratePerS: 41.25, p50Ms: null },
    load: [1, 2, 3],
    paths: [
      { path: 'ours', tcp1: { mbps: 900 } },
      { path: 'wg', tcp1: { mbps: 1000 }, extra: true },
    ],
  });
  assert.deepEqual(f.values, [
    ['date', 'd'],
    ['setup.ratePerS', 41.25],
    ['setup.p50Ms', null],
    ['load', '1, 2, 3'],
  ]);
  assert.equal(f.tables.length, 1);
  assert.equal(f.tables[0].path, 'paths');
  assert.deepEqual(f.tables[0].rows[1], { path: 'wg', 'tcp1.mbps': 1000, extra: true });
});

test('formatValue: integers as they are, others to 4 digits, pipes escaped, null as a dash', () => {
  assert.equal(formatValue(1234567), '1234567');
  assert.equal(formatValue(3.14159), '3.142');
  assert.equal(formatValue(null), '—');
  assert.equal(formatValue('a|b'), 'a\\|b');
  assert.equal(formatValue(true), 'yes');
});

test('renderReport: machine, outcome per benchmark, tables, ratios against peers, text output', () => {
  const step = (name: string) => QUICK_PLAN.find((s) => s.name === name) as (typeof QUICK_PLAN)[0];
  const results: StepResult[] = [
    {
      step: step('tunnel'),
      command: 'npx masque-bench tunnel --quick --json',
      exitCode: 0,
      timedOut: false,
      seconds: 61.2,
      json: { results: [{ path: 'ours', mbps: 800 }], ratios: { tcp1_ours_wg: 0.8 } },
      text: '',
      stderrTail: '',
    },
    {
      step: step('fuzz'),
      command: 'npx masque-bench fuzz --seconds 2',
      exitCode: 0,
      timedOut: false,
      seconds: 40,
      text: 'h3.frame-reader  23040 inputs\n',
      stderrTail: '',
    },
    {
      step: step('load'),
      command: 'npx masque-bench load ...',
      exitCode: null,
      timedOut: true,
      seconds: 300,
      text: '',
      stderrTail: 'ramp open 10/200',
    },
  ];
  const md = renderReport({
    command: 'npx masque-bench all --quick',
    machine: {
      date: '2026-11-25T14:00:00.000Z',
      kernel: '6.1.0',
      cores: 2,
      model: 'cpu',
      node: 'v20',
      uptimeBefore: 'load average: 1.00',
      uptimeAfter: 'load average: 2.00',
    },
    results,
  });
  assert.match(md, /^# masque-vpn benchmarks \(2026-11-25\)/);
  assert.match(md, /\| kernel \(`uname -r`\) \| 6\.1\.0 \|/);
  assert.match(md, /\| cores \| 2 × cpu \|/);
  assert.match(md, /\| tunnel \| ok in 61 s \|/);
  assert.match(md, /\| load \| \*\*stopped after 300 s\*\*/);
  assert.match(md, /Did not finish cleanly: load\./);
  assert.match(
    md,
    /Ratios against peers \(wireguard-go and OpenVPN[^\n]*\n\n\| figure \| value \|\n\| --- \| --- \|\n\| ratios\.tcp1_ours_wg \| 0\.8 \|/,
  );
  assert.match(md, /\| path \| mbps \|\n\| --- \| --- \|\n\| ours \| 800 \|/);
  assert.match(md, /```\nh3\.frame-reader {2}23040 inputs\n```/);
  assert.match(md, /stderr \(end\):[\s\S]*ramp open 10\/200/);
});

test('derivedRatios: loss gets each scheme against FEC off on the same profile', () => {
  const doc = {
    cells: [
      { profile: 'random 5%', fec: 'off', deliveredLossPercent: 4 },
      { profile: 'random 5%', fec: 'xor', deliveredLossPercent: 0.5 },
      { profile: 'random 5%', fec: 'rs', deliveredLossPercent: 1 },
      { profile: 'random 0%', fec: 'off', deliveredLossPercent: 0 },
      { profile: 'random 0%', fec: 'rs', deliveredLossPercent: 0 },
    ],
  };
  assert.deepEqual(derivedRatios('loss', doc), [
    ['delivered loss xor / off, random 5%', 0.125],
    ['delivered loss rs / off, random 5%', 0.25],
  ]);
  assert.deepEqual(derivedRatios('quic', doc), []);
  assert.deepEqual(derivedRatios('loss', { cells: 'x' }), []);
});
