import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildConfig, ConfigError, splitHostPort } from './config.js';

test('embedded defaults need no file and no flags', () => {
  const c = buildConfig(undefined, {});
  assert.equal(c.listen, '0.0.0.0:4433');
  assert.equal(c.mtu, 1280);
  assert.equal(c.nat, false);
  assert.ok(c.workers >= 1);
  assert.equal(c.quic.cc, 'bbr');
});

test('flags override the file, the file overrides defaults', () => {
  const c = buildConfig('workers = 3\nmtu = 1400\n[quic]\ncc = "cubic"\n', { workers: 2 });
  assert.equal(c.workers, 2);
  assert.equal(c.mtu, 1400);
  assert.equal(c.quic.cc, 'cubic');
  assert.equal(c.quic.idle_timeout_ms, 30_000);
});

test('unknown keys are rejected by name, also in tables', () => {
  assert.throws(
    () => buildConfig('wokers = 3\n', {}, 'dp.toml'),
    (e: unknown) => e instanceof ConfigError && /dp\.toml: unknown key 'wokers'/.test(e.message),
  );
  assert.throws(
    () => buildConfig('[quic]\ncc = "bbr"\nfoo = 1\n', {}, 'dp.toml'),
    (e: unknown) => e instanceof ConfigError && /unknown key 'foo' in \[quic\]/.test(e.message),
  );
});

test('bad values and bad TOML say what is wrong', () => {
  assert.throws(() => buildConfig('mtu = 100\n', {}, 'f'), /f: 'mtu': /);
  assert.throws(() => buildConfig('listen = "nowhere"\n', {}, 'f'), /'listen': expected HOST:PORT/);
  assert.throws(() => buildConfig('mtu = = 3\n', {}, 'f'), /f: not valid TOML/);
  assert.throws(() => buildConfig(undefined, { tun_name: 'x'.repeat(16) }), /'tun_name'/);
});

test('splitHostPort handles IPv4, names and bracketed IPv6', () => {
  assert.deepEqual(splitHostPort('0.0.0.0:4433'), { host: '0.0.0.0', port: 4433 });
  assert.deepEqual(splitHostPort('[::1]:443'), { host: '::1', port: 443 });
  assert.deepEqual(splitHostPort('vpn.test:1'), { host: 'vpn.test', port: 1 });
  assert.throws(() => splitHostPort('a:99999'), ConfigError);
});

test('[fec] uses the engine schema: accepts offers by default, unknown keys rejected', () => {
  const d = buildConfig(undefined, {});
  assert.equal(d.fec.enabled, true);
  assert.equal(d.fec.adaptive, true);
  const c = buildConfig('[fec]\nblock_size = 8\nschemes = ["xor"]\n', {});
  assert.equal(c.fec.enabled, true);
  assert.equal(c.fec.block_size, 8);
  assert.deepEqual(c.fec.schemes, ['xor']);
  assert.equal(buildConfig('[fec]\nenabled = false\n', {}).fec.enabled, false);
  assert.throws(
    () => buildConfig('[fec]\nblocksize = 8\n', {}, 'dp.toml'),
    (e: unknown) => e instanceof ConfigError && /unknown key 'blocksize'/.test(e.message),
  );
});

test("--fec on|off switches [fec] and keeps the file's other keys", () => {
  const off = buildConfig('[fec]\nblock_size = 8\n', { fec: { enabled: 'off' } });
  assert.equal(off.fec.enabled, false);
  assert.equal(off.fec.block_size, 8);
  assert.equal(
    buildConfig('[fec]\nenabled = false\n', { fec: { enabled: 'on' } }).fec.enabled,
    true,
  );
  assert.throws(() => buildConfig(undefined, { fec: { enabled: 'maybe' } }), ConfigError);
});
