import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, ConfigError } from './config.js';

test('defaults work on one machine', () => {
  const c = buildConfig(undefined, {});
  assert.equal(c.data_dir, './var/mq');
  assert.deepEqual(c.pools, { ipv4: '10.77.0.0/16', ipv6: 'fd77::/64' });
  assert.deepEqual(c.endpoints, ['127.0.0.1:4433']);
  assert.equal(c.policy.default_action, 'deny');
  assert.equal(c.tunnel.mtu, 1280);
  assert.equal(c.store.synchronous, 'full');
});

test('unknown keys are rejected with their name, at top level and in tables', () => {
  assert.throws(
    () => buildConfig('datadir = "x"\n', {}, 'cp.toml'),
    (e: unknown) => e instanceof ConfigError && /cp\.toml: unknown key 'datadir'/.test(e.message),
  );
  assert.throws(
    () => buildConfig('[fec]\nenabled = true\nredundancy = 3\n', {}, 'cp.toml'),
    (e: unknown) =>
      e instanceof ConfigError && /unknown key 'redundancy' in \[fec\]/.test(e.message),
  );
});

test('bad values name the key; bad TOML says so', () => {
  assert.throws(
    () => buildConfig('[tunnel]\nmtu = 100\n', {}, 'cp.toml'),
    (e: unknown) => e instanceof ConfigError && /'tunnel\.mtu'/.test(e.message),
  );
  assert.throws(
    () => buildConfig('endpoints = ["nohostport"]\n', {}),
    (e: unknown) => e instanceof ConfigError && /'endpoints\.0'.*HOST:PORT/.test(e.message),
  );
  assert.throws(
    () => buildConfig('x = [', {}, 'cp.toml'),
    (e: unknown) => e instanceof ConfigError && /cp\.toml: not valid TOML/.test(e.message),
  );
});

test('flags override the file', () => {
  const c = buildConfig('server_name = "a.example"\nendpoints = ["10.0.0.1:443"]\n', {
    serverName: 'b.example',
    endpoint: ['10.0.0.2:4433'],
    dataDir: '/tmp/x',
  });
  assert.equal(c.server_name, 'b.example');
  assert.deepEqual(c.endpoints, ['10.0.0.2:4433']);
  assert.equal(c.data_dir, '/tmp/x');
  assert.throws(
    () => buildConfig(undefined, { serverName: 'bad name!' }),
    (e: unknown) =>
      e instanceof ConfigError && /^--server-name: expected a DNS name/.test(e.message),
  );
  assert.throws(
    () => buildConfig(undefined, { endpoint: ['nohostport'] }),
    (e: unknown) => e instanceof ConfigError && /^--endpoint: expected HOST:PORT/.test(e.message),
  );
});
