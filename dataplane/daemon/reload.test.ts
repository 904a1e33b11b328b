import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, configSchema } from './config.js';
import { planReload, RELOADABLE_KEYS, RESTART_KEYS } from './reload.js';

test('every config key is either reloadable or needs a restart, never both', () => {
  const keys = Object.keys(configSchema.shape).sort();
  const listed = [...RELOADABLE_KEYS, ...RESTART_KEYS].sort();
  assert.deepEqual(listed, keys);
});

test('reloadable changes are applied; the rest keep their running values and are named', () => {
  const current = buildConfig('workers = 2\nlog_level = "info"\n', {});
  const wanted = buildConfig(
    [
      'workers = 4',
      'log_level = "debug"',
      'drain_seconds = 1',
      'metrics = "127.0.0.1:9999"',
      'paths = ["/vpn", "/tunnel"]',
      '[fec]',
      'enabled = false',
      '[quic]',
      'cc = "cubic"',
    ].join('\n'),
    {},
  );
  const plan = planReload(current, wanted);
  assert.deepEqual([...plan.changed].sort(), [
    'drain_seconds',
    'fec',
    'log_level',
    'metrics',
    'paths',
  ]);
  assert.deepEqual([...plan.needsRestart].sort(), ['quic', 'workers']);
  assert.equal(plan.next.log_level, 'debug');
  assert.equal(plan.next.metrics, '127.0.0.1:9999');
  assert.equal(plan.next.fec.enabled, false);
  assert.deepEqual(plan.next.paths, ['/vpn', '/tunnel']);
  assert.equal(plan.next.workers, 2, 'workers keeps its running value');
  assert.equal(plan.next.quic.cc, 'bbr');
  assert.equal(current.log_level, 'info', 'the current config is not modified');
});

test('an unchanged file changes nothing; flags keep winning over the reloaded file', () => {
  const flags = { log_level: 'warn' };
  const current = buildConfig('log_level = "info"\n', flags);
  const plan = planReload(current, buildConfig('log_level = "debug"\n', flags));
  assert.deepEqual(plan.changed, []);
  assert.deepEqual(plan.needsRestart, []);
  assert.equal(plan.next.log_level, 'warn');
});

test('a metrics listener removed from the file is a change to undefined', () => {
  const current = buildConfig('metrics = "127.0.0.1:9000"\n', {});
  const plan = planReload(current, buildConfig('', {}));
  assert.deepEqual(plan.changed, ['metrics']);
  assert.equal(plan.next.metrics, undefined);
});
