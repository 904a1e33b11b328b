// Throw-away PKI for the QUIC tests, made with the openssl CLI: an ECDSA P-256 CA, a server
// certificate (SAN localhost/127.0.0.1/::1, serverAuth), client certificates with and without the
// clientAuth purpose, and a second CA with its own client.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Identity {
  certPem: string;
  keyPem: string;
}

export interface TestPki {
  caPem: string;
  otherCaPem: string;
  server: Identity;
  client: Identity;
  /** Issued by our CA but only for serverAuth. */
  clientWrongPurpose: Identity;
  /** A clientAuth certificate from the other CA. */
  clientOtherCa: Identity;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function issue(dir: string, ca: string, name: string, cn: string, ext: string): Identity {
  openssl(dir, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    `${name}.key`,
  ]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-extfile',
    `${name}.ext`,
  ]);
  return {
    certPem: readFileSync(join(dir, `${name}.pem`), 'utf8'),
    keyPem: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

function makeCa(dir: string, name: string): string {
  openssl(dir, [
    'genpkey',
    '-algorithm',
    'EC',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-out',
    `${name}.key`,
  ]);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
    '-out',
    `${name}.pem`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return readFileSync(join(dir, `${name}.pem`), 'utf8');
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'quic-pki-'));
  try {
    const caPem = makeCa(dir, 'ca');
    const otherCaPem = makeCa(dir, 'other-ca');
    const leaf = 'keyUsage=critical,digitalSignature\n';
    cached = {
      caPem,
      otherCaPem,
      server: issue(
        dir,
        'ca',
        'server',
        'localhost',
        `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n`,
      ),
      client: issue(dir, 'ca', 'client', 'alice', `${leaf}extendedKeyUsage=clientAuth\n`),
      clientWrongPurpose: issue(
        dir,
        'ca',
        'client-wrong',
        'mallory',
        `${leaf}extendedKeyUsage=serverAuth\n`,
      ),
      clientOtherCa: issue(
        dir,
        'other-ca',
        'client-other',
        'eve',
        `${leaf}extendedKeyUsage=clientAuth\n`,
      ),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
