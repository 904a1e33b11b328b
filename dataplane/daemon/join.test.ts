import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildConfig } from './config.js';
import { ControlError } from './control.js';
import { loadOrJoin, makeCsr, storedIdentity } from './join.js';

function selfSigned(dir: string, days: number): { certPem: string; keyPem: string } {
  const key = join(dir, 'k.pem');
  const crt = join(dir, 'c.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      '/CN=dp-test',
      '-days',
      String(days),
      '-keyout',
      key,
      '-out',
      crt,
    ],
    { stdio: 'ignore' },
  );
  return {
    certPem: execFileSync('cat', [crt]).toString(),
    keyPem: execFileSync('cat', [key]).toString(),
  };
}

test('tcp://HOST:PORT and HOST:PORT both mean gRPC over TCP; the rest is refused', () => {
  assert.equal(buildConfig(undefined, { control: 'tcp://10.0.0.1:7443' }).control, '10.0.0.1:7443');
  assert.equal(buildConfig(undefined, { control: 'cp.example:7443' }).control, 'cp.example:7443');
  assert.equal(buildConfig(undefined, {}).control, 'unix:./var/mq/control.sock');
  assert.throws(() => buildConfig(undefined, { control: 'http://cp:80' }), /tcp:\/\/HOST:PORT/);
});

test('a CSR and a PKCS#8 P-256 key that openssl accepts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-join-'));
  try {
    const { csrPem, keyPem } = await makeCsr('edge-1');
    writeFileSync(join(dir, 'r.csr'), csrPem);
    writeFileSync(join(dir, 'k.pem'), keyPem);
    const req = execFileSync(
      'openssl',
      ['req', '-in', join(dir, 'r.csr'), '-noout', '-verify', '-subject'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    assert.match(req, /CN\s*=\s*edge-1/);
    const key = execFileSync('openssl', [
      'pkey',
      '-in',
      join(dir, 'k.pem'),
      '-noout',
      '-text',
    ]).toString();
    assert.match(key, /prime256v1|P-256/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no identity and no token: a clear error naming the fix; nothing is contacted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-join-'));
  try {
    await assert.rejects(
      loadOrJoin({ address: '192.0.2.1:1', caPem: 'x', name: 'dp', stateDir: dir }),
      (e: unknown) =>
        e instanceof ControlError && /no data plane identity in .*--join-token/.test(e.message),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a stored identity is reused without a token; an expired one asks for a new join', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dp-join-'));
  try {
    assert.equal(storedIdentity(dir, Date.now()), undefined);
    const { certPem, keyPem } = selfSigned(dir, 2);
    writeFileSync(join(dir, 'control-client.crt'), certPem);
    writeFileSync(join(dir, 'control-client.key'), keyPem, { mode: 0o600 });
    const r = await loadOrJoin({
      address: '192.0.2.1:1',
      caPem: 'ca',
      name: 'dp',
      stateDir: dir,
      serverName: 'cp.test',
    });
    assert.equal(r.joined, false);
    assert.equal(r.tls.certPem, certPem);
    assert.equal(r.tls.keyPem, keyPem);
    assert.equal(r.tls.serverName, 'cp.test');
    assert.equal((statSync(join(dir, 'control-client.key')).mode & 0o777).toString(8), '600');

    const in3Days = Date.now() + 3 * 86_400_000;
    const later = storedIdentity(dir, in3Days);
    assert.ok(later !== undefined && 'problem' in later && /expired/.test(later.problem));
    await assert.rejects(
      loadOrJoin({
        address: '192.0.2.1:1',
        caPem: 'ca',
        name: 'dp',
        stateDir: dir,
        now: () => in3Days,
      }),
      /expired.*--join-token/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
