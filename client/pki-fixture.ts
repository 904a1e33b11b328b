// Test support: a throwaway CA and client certificates (good, expired, not yet valid, foreign)
// and bundle text built from them. Not a test file itself; imported by the client's tests.
// Made with the openssl CLI: `openssl ca` can back-date certificates, which expired and
// not-yet-valid fixtures need, and the tests then do not share code with what they check.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Issued {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface Pki {
  readonly ca: Issued;
  readonly client: Issued;
  readonly expired: Issued;
  readonly notYetValid: Issued;
  /** Signed by a different CA than `ca`. */
  readonly foreign: Issued;
  /** A key that belongs to no certificate. */
  readonly strayKeyPem: string;
}

const DAY = 86_400_000;

function stamp(date: Date): string {
  // openssl ca wants YYYYMMDDHHMMSSZ.
  return date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'mqc-pki-'));
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const read = (name: string): string => readFileSync(join(dir, name), 'utf8');
  try {
    const key = (name: string): void =>
      openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name);
    const makeCa = (name: string, cn: string): void => {
      key(`${name}.key`);
      openssl(
        'req',
        '-x509',
        '-new',
        '-key',
        `${name}.key`,
        '-subj',
        `/CN=${cn}`,
        '-days',
        '365',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-out',
        `${name}.pem`,
      );
      writeFileSync(
        join(dir, `${name}.cnf`),
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
      writeFileSync(join(dir, `${name}.index`), '');
      writeFileSync(join(dir, `${name}.serial`), '1000\n');
    };
    const issue = (ca: string, cn: string, from: Date, to: Date): Issued => {
      key(`${cn}.key`);
      openssl('req', '-new', '-key', `${cn}.key`, '-subj', `/CN=${cn}`, '-out', `${cn}.csr`);
      openssl(
        'ca',
        '-batch',
        '-notext',
        '-config',
        `${ca}.cnf`,
        '-cert',
        `${ca}.pem`,
        '-keyfile',
        `${ca}.key`,
        '-in',
        `${cn}.csr`,
        '-out',
        `${cn}.pem`,
        '-startdate',
        stamp(from),
        '-enddate',
        stamp(to),
      );
      return { certPem: read(`${cn}.pem`), keyPem: read(`${cn}.key`) };
    };
    const now = Date.now();
    makeCa('ca', 'masque test CA');
    makeCa('other', 'someone else CA');
    key('stray.key');
    return {
      ca: { certPem: read('ca.pem'), keyPem: read('ca.key') },
      client: issue('ca', 'alice', new Date(now - DAY), new Date(now + 30 * DAY)),
      expired: issue('ca', 'old', new Date(now - 60 * DAY), new Date(now - 30 * DAY)),
      notYetValid: issue('ca', 'future', new Date(now + 30 * DAY), new Date(now + 60 * DAY)),
      foreign: issue('other', 'mallory', new Date(now - DAY), new Date(now + 30 * DAY)),
      strayKeyPem: read('stray.key'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** TOML basic string: JSON escaping is valid TOML for the characters PEM uses. */
function str(value: string): string {
  return JSON.stringify(value);
}

export interface BundleParts {
  version?: number;
  endpoint?: string;
  name?: string;
  template?: string;
  ca?: string;
  cert?: string;
  key?: string;
  mtu?: number;
  dns?: string[];
  /** Lines placed before the first table (top-level keys). */
  top?: string;
  /** Lines appended inside [tls], the last table. */
  extra?: string;
  /** Key names to leave out (e.g. "key", "endpoints", "version"). */
  omit?: string[];
}

/** Bundle text in the docs/bundle.md v1 layout, with the given parts. */
export function bundleText(pki: Pki, parts: BundleParts = {}): string {
  const omit = new Set(parts.omit ?? []);
  const line = (key: string, value: string): string => (omit.has(key) ? '' : `${key} = ${value}\n`);
  return (
    line('version', String(parts.version ?? 1)) +
    'user = "alice"\ndevice = "laptop"\n' +
    (parts.top ?? '') +
    '\n[server]\n' +
    line('endpoints', JSON.stringify([parts.endpoint ?? '127.0.0.1:4433'])) +
    line('server_name', str(parts.name ?? 'vpn.test')) +
    (parts.template === undefined ? '' : line('template_path', str(parts.template))) +
    '\n[tunnel]\n' +
    line('mtu', String(parts.mtu ?? 1280)) +
    line('ipv4', str('10.77.0.2')) +
    (parts.dns ? line('dns', JSON.stringify(parts.dns)) : '') +
    '\n[fec]\nenabled = false\nblock_size = 10\nredundancy_percent = 20\n' +
    '\n[tls]\n' +
    line('ca', str(parts.ca ?? pki.ca.certPem)) +
    line('cert', str(parts.cert ?? pki.client.certPem)) +
    line('key', str(parts.key ?? pki.client.keyPem)) +
    (parts.extra ?? '')
  );
}
