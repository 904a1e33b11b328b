// The certificates as other TLS stacks judge them: openssl (what Node's TLS and grpc-js use) and
// GnuTLS 3.7 (what the QUIC transport uses), through their command-line tools.

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCa,
  createCrl,
  importCa,
  issueAdminCertificate,
  issueClientCertificate,
  issueServerCertificate,
  readCertificate,
  signCsr,
} from './index.js';

const has = (tool: string): boolean =>
  spawnSync(tool, ['--version'], { stdio: 'ignore' }).error === undefined;
const HAS_OPENSSL = has('openssl');
const HAS_CERTTOOL = has('certtool');
const HAS_GNUTLS_SERV = has('gnutls-serv') && has('gnutls-cli');

const dir = mkdtempSync(join(tmpdir(), 'masque-cert-interop-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}

function run(cmd: string, args: string[], input?: string): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 20_000 });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

function opensslVerify(
  caPath: string,
  certPath: string,
  purpose: 'sslclient' | 'sslserver',
  extra: string[] = [],
) {
  return run('openssl', ['verify', '-purpose', purpose, ...extra, '-CAfile', caPath, certPath]);
}

const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

function certtoolVerify(caPath: string, certPath: string, purpose: string, hostname?: string) {
  const args = [
    '--verify',
    '--load-ca-certificate',
    caPath,
    '--infile',
    certPath,
    `--verify-purpose=${purpose}`,
  ];
  if (hostname !== undefined) args.push(`--verify-hostname=${hostname}`);
  return run('certtool', args);
}

const ca = await createCa({ commonName: 'Interop CA' });
const caPath = file('ca.crt', ca.certPem);
const server = await issueServerCertificate(ca, 'vpn.example.com', ['127.0.0.1', '::1']);
const client = await issueClientCertificate(ca, 'alice/laptop');
const admin = await issueAdminCertificate(ca, 'ops/alice');
const serverPath = file('server.crt', server.certPem);
const clientPath = file('client.crt', client.certPem);
const adminPath = file('admin.crt', admin.certPem);

function skipUnless(t: TestContext, available: boolean, tool: string): boolean {
  if (!available) t.skip(`${tool} is not installed`);
  return !available;
}

test('openssl accepts each certificate for its purpose and refuses it for the other', (t) => {
  if (skipUnless(t, HAS_OPENSSL, 'openssl')) return;
  assert.equal(opensslVerify(caPath, serverPath, 'sslserver').code, 0);
  assert.equal(
    opensslVerify(caPath, serverPath, 'sslclient').code,
    0,
    'data planes use it as a client too',
  );
  for (const path of [clientPath, adminPath]) {
    const ok = opensslVerify(caPath, path, 'sslclient');
    assert.equal(ok.code, 0, ok.out);
    const wrong = opensslVerify(caPath, path, 'sslserver');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.out, /unsuitable certificate purpose/);
  }
  const host = run('openssl', [
    'verify',
    '-verify_hostname',
    'vpn.example.com',
    '-CAfile',
    caPath,
    serverPath,
  ]);
  assert.equal(host.code, 0, host.out);
  const ip = run('openssl', ['verify', '-verify_ip', '::1', '-CAfile', caPath, serverPath]);
  assert.equal(ip.code, 0, ip.out);
  const wrongHost = run('openssl', [
    'verify',
    '-verify_hostname',
    'evil.example.com',
    '-CAfile',
    caPath,
    serverPath,
  ]);
  assert.notEqual(wrongHost.code, 0);
  const other = run('openssl', ['verify', '-CAfile', serverPath, clientPath]);
  assert.notEqual(other.code, 0);
});

test('openssl reads the CRL and finds the revoked certificate', async (t) => {
  if (skipUnless(t, HAS_OPENSSL, 'openssl')) return;
  const crl = await createCrl(ca, [
    { serial: client.serial, revokedAt: new Date(), reason: 'keyCompromise' },
  ]);
  const crlPath = file('ca.crl', crl.pem);
  const revoked = opensslVerify(caPath, clientPath, 'sslclient', [
    '-crl_check',
    '-CRLfile',
    crlPath,
  ]);
  assert.notEqual(revoked.code, 0);
  assert.match(revoked.out, /certificate revoked/);
  const fine = opensslVerify(caPath, adminPath, 'sslclient', ['-crl_check', '-CRLfile', crlPath]);
  assert.equal(fine.code, 0, fine.out);
  const text = run('openssl', ['crl', '-in', crlPath, '-noout', '-text']);
  assert.match(text.out, /Version 2/);
  assert.match(text.out, new RegExp(`CRL Number: \\n\\s+${crl.crlNumber}`));
  assert.match(text.out, /Key Compromise/);
});

test('an openssl-made CA is imported and issues certificates openssl accepts', async (t) => {
  if (skipUnless(t, HAS_OPENSSL, 'openssl')) return;
  const keyPath = join(dir, 'ossl-ca.key');
  const certPath = join(dir, 'ossl-ca.crt');
  let r = run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', keyPath]); // SEC1
  assert.equal(r.code, 0, r.out);
  r = run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    keyPath,
    '-out',
    certPath,
    '-days',
    '30',
    '-subj',
    '/O=Offline Org/CN=Offline CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  assert.equal(r.code, 0, r.out);
  const imported = await importCa(readFileSync(certPath, 'utf8'), readFileSync(keyPath, 'utf8'));
  const leaf = await issueClientCertificate(imported, 'bob/phone');
  const ok = opensslVerify(certPath, file('bob.crt', leaf.certPem), 'sslclient');
  assert.equal(ok.code, 0, ok.out);
});

test('an openssl-made CSR is signed; its own subject is not used', async (t) => {
  if (skipUnless(t, HAS_OPENSSL, 'openssl')) return;
  const keyPath = join(dir, 'csr.key');
  const csrPath = join(dir, 'csr.pem');
  const r = run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    csrPath,
    '-subj',
    '/OU=masque-admin/CN=root',
  ]);
  assert.equal(r.code, 0, r.out);
  const issued = await signCsr(ca, readFileSync(csrPath, 'utf8'), {
    kind: 'client',
    identity: 'carol/tablet',
  });
  const certPath = file('carol.crt', issued.certPem);
  assert.equal(opensslVerify(caPath, certPath, 'sslclient').code, 0);
  assert.equal(readCertificate(issued.certPem).role, 'client');
  // The certificate matches the key the requester kept.
  const fromKey = run('openssl', ['pkey', '-in', keyPath, '-pubout']).out;
  const fromCert = run('openssl', ['x509', '-in', certPath, '-noout', '-pubkey']).out;
  assert.equal(fromCert, fromKey);
});

test('GnuTLS certtool accepts each certificate for its key purpose and the CRL', async (t) => {
  if (skipUnless(t, HAS_CERTTOOL, 'certtool (gnutls-bin)')) return;
  const s = certtoolVerify(caPath, serverPath, SERVER_AUTH, 'vpn.example.com');
  assert.equal(s.code, 0, s.out);
  for (const path of [clientPath, adminPath, serverPath]) {
    const ok = certtoolVerify(caPath, path, CLIENT_AUTH);
    assert.equal(ok.code, 0, ok.out);
  }
  const wrong = certtoolVerify(caPath, clientPath, SERVER_AUTH);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.out, /does not match the intended purpose/);
  const crl = await createCrl(ca, [{ serial: client.serial, revokedAt: new Date() }]);
  const c = run('certtool', [
    '--verify-crl',
    '--load-ca-certificate',
    caPath,
    '--infile',
    file('g.crl', crl.pem),
  ]);
  assert.equal(c.code, 0, c.out);
  assert.match(c.out, new RegExp(`Serial Number \\(hex\\): ${client.serial}`));
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function waitForListener(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const up = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`gnutls-serv did not listen on ${port}`);
}

test('a GnuTLS server requiring client certificates completes mTLS with ours, refuses a foreign one', async (t) => {
  if (skipUnless(t, HAS_GNUTLS_SERV, 'gnutls-serv/gnutls-cli (gnutls-bin)')) return;
  const port = await freePort();
  const serverKey = file('server.key', server.keyPem);
  const serv = spawn(
    'gnutls-serv',
    [
      '--echo',
      '-p',
      String(port),
      '--x509certfile',
      serverPath,
      '--x509keyfile',
      serverKey,
      '--x509cafile',
      caPath,
      '--require-client-cert',
      '--verify-client-cert',
    ],
    { stdio: 'ignore' },
  );
  try {
    await waitForListener(port, Date.now() + 5000);
    const cli = (certPath: string, keyPem: string) =>
      run(
        'gnutls-cli',
        [
          '-p',
          String(port),
          '--x509cafile',
          caPath,
          '--x509certfile',
          certPath,
          '--x509keyfile',
          file(`k-${Math.random().toString(16).slice(2)}.key`, keyPem),
          '127.0.0.1',
          '--verify-hostname',
          'vpn.example.com',
        ],
        'ping-over-mtls\n',
      );
    const good = cli(clientPath, client.keyPem);
    assert.equal(good.code, 0, good.out);
    assert.match(good.out, /The certificate is trusted/);
    assert.match(
      good.out,
      /ping-over-mtls/,
      'echo came back: the server accepted the client certificate',
    );

    const foreignCa = await createCa({ commonName: 'Interop CA' });
    const mallory = await issueClientCertificate(foreignCa, 'alice/laptop');
    const bad = cli(file('mallory.crt', mallory.certPem), mallory.keyPem);
    assert.notEqual(bad.code, 0);
    assert.doesNotMatch(bad.out, /ping-over-mtls/);
  } finally {
    serv.kill('SIGTERM');
  }
});
