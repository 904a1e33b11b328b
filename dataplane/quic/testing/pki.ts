// Throw-away PKI for tests, made with the openssl CLI (so tests share no code with cert/, which
// they may be checking): `TestCa` issues leaf certificates with any extensions and any validity
// window (`openssl ca` can back-date, which expired and not-yet-valid fixtures need). `testPki()`
// is the QUIC tests' set: an ECDSA P-256 CA, a server certificate (SAN localhost/127.0.0.1/::1,
// serverAuth), client certificates with and without the clientAuth purpose, and a second CA with
// its own client.
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

const DAY = 86_400_000;

/** openssl ca wants YYYYMMDDHHMMSSZ. */
function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

/** A working directory for openssl; everything in it is gone after `dispose()`. */
export class OpensslDir {
  readonly path = mkdtempSync(join(tmpdir(), 'mq-test-pki-'));

  run(...args: string[]): void {
    execFileSync('openssl', args, { cwd: this.path, stdio: ['ignore', 'ignore', 'pipe'] });
  }

  read(name: string): string {
    return readFileSync(join(this.path, name), 'utf8');
  }

  write(name: string, text: string): void {
    writeFileSync(join(this.path, name), text);
  }

  /** A fresh P-256 key in `name`; returns its PEM. */
  key(name: string): string {
    this.run('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
    return this.read(name);
  }

  dispose(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface LeafOptions {
  /** x509v3 extension lines (default: none beyond what openssl ca adds). */
  ext?: string;
  notBefore?: Date;
  notAfter?: Date;
}

export class TestCa {
  readonly certPem: string;
  readonly keyPem: string;

  /** A self-signed P-256 CA named `name` in `dir`, valid for a year from a day ago. */
  constructor(
    private readonly dir: OpensslDir,
    private readonly name: string,
    cn: string,
  ) {
    this.keyPem = dir.key(`${name}.key`);
    dir.run(
      'req', '-x509', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-days', '365',
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
      '-out', `${name}.pem`,
    ); // prettier-ignore
    this.certPem = dir.read(`${name}.pem`);
    dir.write(
      `${name}.cnf`,
      [
        '[ca]',
        `default_ca = ${name}`,
        `[${name}]`,
        `database = ${name}.index`,
        'new_certs_dir = .',
        `serial = ${name}.serial`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'email_in_dn = no',
        '[any]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    dir.write(`${name}.index`, '');
    dir.write(`${name}.serial`, '1000\n');
  }

  /** A leaf certificate for `cn` (also the file stem, so unique per directory) and its key. */
  issue(cn: string, options: LeafOptions = {}): Identity {
    const now = Date.now();
    const keyPem = this.dir.key(`${cn}.key`);
    this.dir.run('req', '-new', '-key', `${cn}.key`, '-subj', `/CN=${cn}`, '-out', `${cn}.csr`);
    const ext: string[] = [];
    if (options.ext !== undefined) {
      this.dir.write(`${cn}.ext`, options.ext);
      ext.push('-extfile', `${cn}.ext`);
    }
    this.dir.run(
      'ca', '-batch', '-notext', '-config', `${this.name}.cnf`,
      '-cert', `${this.name}.pem`, '-keyfile', `${this.name}.key`,
      '-in', `${cn}.csr`, '-out', `${cn}.pem`,
      '-startdate', stamp(options.notBefore ?? new Date(now - DAY)),
      '-enddate', stamp(options.notAfter ?? new Date(now + 2 * DAY)),
      ...ext,
    ); // prettier-ignore
    return { certPem: this.dir.read(`${cn}.pem`), keyPem };
  }
}

let cached: TestPki | undefined;

export function testPki(): TestPki {
  if (cached) return cached;
  const dir = new OpensslDir();
  try {
    const ca = new TestCa(dir, 'ca', 'ca');
    const other = new TestCa(dir, 'other-ca', 'other-ca');
    const leaf = 'keyUsage=critical,digitalSignature\n';
    cached = {
      caPem: ca.certPem,
      otherCaPem: other.certPem,
      server: ca.issue('localhost', {
        ext: `${leaf}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n`,
      }),
      client: ca.issue('alice', { ext: `${leaf}extendedKeyUsage=clientAuth\n` }),
      clientWrongPurpose: ca.issue('mallory', { ext: `${leaf}extendedKeyUsage=serverAuth\n` }),
      clientOtherCa: other.issue('eve', { ext: `${leaf}extendedKeyUsage=clientAuth\n` }),
    };
    return cached;
  } finally {
    dir.dispose();
  }
}
