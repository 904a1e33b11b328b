// masque-cert end to end: the real launcher (bin/masque-cert.js → dist/cert/main.js) in a child process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCa, importCa, readCertificate, readCrl, verifyCertificate } from './index.js';

// dist/cert/main.test.js → repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'masque-cert.js');
const dir = mkdtempSync(join(tmpdir(), 'masque-cert-cli-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    cwd: dir,
    timeout: 30_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 1, one line on stderr, no stack trace. */
function assertUserError(r: ReturnType<typeof cli>, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit code; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const mode = (path: string): number => statSync(path).mode & 0o777;

/** A CA directory made in-process: each CLI run loads the ASN.1 stack, so tests spend them sparingly. */
async function caDirectory(name: string): Promise<string> {
  const caDir = join(dir, name);
  mkdirSync(caDir);
  const ca = await createCa();
  writeFileSync(join(caDir, 'ca.crt'), ca.certPem);
  writeFileSync(join(caDir, 'ca.key'), ca.keyPem, { mode: 0o600 });
  return caDir;
}

test('ca init, issue server/client/admin, crl, show: files, modes and contents', async () => {
  const caDir = join(dir, 'ca');
  let r = cli('ca', 'init', '--out', caDir, '--name', 'CLI Test CA', '--days', '400');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /CA CN=CLI Test CA/);
  assert.equal(mode(join(caDir, 'ca.key')), 0o600);
  assert.equal(mode(join(caDir, 'ca.crt')), 0o644);
  const ca = await importCa(
    readFileSync(join(caDir, 'ca.crt'), 'utf8'),
    readFileSync(join(caDir, 'ca.key'), 'utf8'),
  );
  assert.equal(ca.subject, 'CN=CLI Test CA');
  assert.ok(Math.abs(ca.notAfter.getTime() - Date.now() - 400 * 86_400_000) < 120_000);

  const srvDir = join(dir, 'srv');
  r = cli(
    'issue',
    'server',
    '--ca',
    caDir,
    '--name',
    'vpn.example.com',
    '--ip',
    '10.0.0.1',
    '--ip',
    'fd00::1',
    '--out',
    srvDir,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(join(srvDir, 'server.key')), 0o600);
  const srv = await verifyCertificate(readFileSync(join(srvDir, 'server.crt'), 'utf8'), ca, {
    purpose: 'server',
  });
  assert.deepEqual([srv.dnsNames, srv.ipAddresses], [['vpn.example.com'], ['10.0.0.1', 'fd00::1']]);
  assert.match(r.stdout, new RegExp(`serial\\s+${srv.serial}`));

  const cliDir = join(dir, 'alice');
  r = cli(
    'issue',
    'client',
    '--ca',
    caDir,
    '--name',
    'alice/laptop',
    '--out',
    cliDir,
    '--days',
    '30',
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(mode(join(cliDir, 'client.key')), 0o600);
  const alice = await verifyCertificate(readFileSync(join(cliDir, 'client.crt'), 'utf8'), ca, {
    purpose: 'client',
  });
  assert.equal(alice.commonName, 'alice/laptop');
  assert.equal(alice.role, 'client');

  r = cli('issue', 'admin', '--ca', caDir, '--name', 'ops/alice', '--out', join(dir, 'ops'));
  assert.equal(r.code, 0, r.stderr);
  assert.equal(readCertificate(readFileSync(join(dir, 'ops', 'admin.crt'), 'utf8')).role, 'admin');

  const revokedFile = join(dir, 'revoked.txt');
  writeFileSync(
    revokedFile,
    `# lost laptop\n${alice.serial} 2026-01-02T03:04:05Z keyCompromise\n\n0a:0b\n`,
  );
  r = cli('crl', '--ca', caDir, '--revoked', revokedFile, '--days', '2');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /with 2 revoked certificate/);
  const list = await readCrl(readFileSync(join(caDir, 'crl.pem'), 'utf8'), ca);
  assert.deepEqual(list.entries[0], {
    serial: alice.serial,
    revokedAt: new Date('2026-01-02T03:04:05Z'),
    reason: 'keyCompromise',
  });
  assert.ok(list.isRevoked('a0b'));

  r = cli('show', join(cliDir, 'client.crt'), '--ca', caDir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /role\s+client/);
  assert.match(r.stdout, /verified\s+OK against CN=CLI Test CA for TLS client/);
  r = cli('show', join(caDir, 'crl.pem'), '--ca', caDir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /signature OK/);
  assert.match(
    r.stdout,
    new RegExp(`${alice.serial}\\s+2026-01-02T03:04:05.000Z\\s+keyCompromise`),
  );
});

test('issue --csr signs a request and writes no key', async (t) => {
  if (spawnSync('openssl', ['version']).error !== undefined) {
    t.skip('openssl is not installed (it makes the CSR)');
    return;
  }
  const caDir = await caDirectory('ca-csr');
  const csr = join(dir, 'req.csr');
  const made = spawnSync('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    join(dir, 'req.key'),
    '-out',
    csr,
    '-subj',
    '/CN=whatever',
  ]);
  assert.equal(made.status, 0);
  const out = join(dir, 'csr-out');
  const r = cli(
    'issue',
    'client',
    '--ca',
    caDir,
    '--name',
    'erin/phone',
    '--csr',
    csr,
    '--out',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.equal(
    readCertificate(readFileSync(join(out, 'client.crt'), 'utf8')).commonName,
    'erin/phone',
  );
  assert.throws(() => statSync(join(out, 'client.key')), /ENOENT/);
});

test('user errors: one line, exit 1, nothing overwritten', async () => {
  const caDir = await caDirectory('ca-err');
  const before = readFileSync(join(caDir, 'ca.key'), 'utf8');
  assertUserError(cli('ca', 'init', '--out', caDir), /already holds a CA \(use --force/);
  assert.equal(readFileSync(join(caDir, 'ca.key'), 'utf8'), before);

  assertUserError(
    cli('issue', 'client', '--ca', join(dir, 'nope'), '--name', 'a', '--out', dir),
    /no CA in .*nope.*masque-cert ca init/,
  );
  assertUserError(
    cli('issue', 'client', '--ca', caDir, '--name', 'a,b', '--out', join(dir, 'x')),
    /contains one of/,
  );
  assertUserError(
    cli('issue', 'server', '--ca', caDir, '--name', 'bad_name', '--out', join(dir, 'x')),
    /not a valid server name/,
  );
  assertUserError(
    cli(
      'issue',
      'server',
      '--ca',
      caDir,
      '--name',
      'ok.example',
      '--ip',
      '999.1.1.1',
      '--out',
      join(dir, 'x'),
    ),
    /not an IP address/,
  );
  assertUserError(
    cli(
      'issue',
      'client',
      '--ca',
      caDir,
      '--name',
      'a',
      '--ip',
      '10.0.0.1',
      '--out',
      join(dir, 'x'),
    ),
    /--ip applies to server/,
  );
  assertUserError(
    cli('issue', 'client', '--ca', caDir, '--name', 'a', '--days', '0', '--out', join(dir, 'x')),
    /--days/,
  );
  assertUserError(
    cli('issue', 'client', '--ca', caDir, '--out', join(dir, 'x')),
    /required option '--name/,
  );
  assertUserError(
    cli(
      'issue',
      'client',
      '--ca',
      caDir,
      '--name',
      'a',
      '--csr',
      join(dir, 'missing.csr'),
      '--out',
      join(dir, 'x'),
    ),
    /CSR .* does not exist/,
  );

  // A key that does not match the certificate in the CA directory.
  const mixed = await caDirectory('ca-mixed');
  writeFileSync(join(mixed, 'ca.key'), before);
  assertUserError(
    cli('issue', 'client', '--ca', mixed, '--name', 'a', '--out', join(dir, 'x')),
    /does not belong to the CA/,
  );

  const out = join(dir, 'twice');
  assert.equal(cli('issue', 'client', '--ca', caDir, '--name', 'a', '--out', out).code, 0);
  const key = readFileSync(join(out, 'client.key'), 'utf8');
  assertUserError(
    cli('issue', 'client', '--ca', caDir, '--name', 'a', '--out', out),
    /client\.(crt|key) already exists/,
  );
  assert.equal(readFileSync(join(out, 'client.key'), 'utf8'), key);
  assert.equal(
    cli('issue', 'client', '--ca', caDir, '--name', 'a', '--out', out, '--force').code,
    0,
  );
  assert.notEqual(readFileSync(join(out, 'client.key'), 'utf8'), key);
  assert.equal(mode(join(out, 'client.key')), 0o600);

  const badList = join(dir, 'bad-revoked.txt');
  writeFileSync(badList, '0a 2026-01-01T00:00:00Z\nnot-hex\n');
  assertUserError(
    cli('crl', '--ca', caDir, '--revoked', badList),
    /bad-revoked\.txt:2: "not-hex" is not a hex serial/,
  );
  writeFileSync(badList, '0a yesterday\n');
  assertUserError(
    cli('crl', '--ca', caDir, '--revoked', badList),
    /:1: "yesterday" is neither an RFC 3339 time/,
  );
  assertUserError(
    cli('crl', '--ca', caDir, '--revoked', join(dir, 'none.txt')),
    /revoked list .* does not exist/,
  );
  assertUserError(cli('show', join(dir, 'none.crt')), /does not exist/);
  assertUserError(cli('show', badList), /not a readable X.509 certificate/);
});

test('--help on every command', () => {
  for (const args of [
    [],
    ['ca'],
    ['ca', 'init'],
    ['issue'],
    ['issue', 'server'],
    ['issue', 'client'],
    ['issue', 'admin'],
    ['crl'],
    ['show'],
  ]) {
    const r = cli(...args, '--help');
    assert.equal(r.code, 0, `${args.join(' ')} --help: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: masque-cert/);
  }
  assert.match(cli('issue', 'server', '--help').stdout, /--ip <address>/);
  assert.doesNotMatch(cli('issue', 'client', '--help').stdout, /--ip/);
});
