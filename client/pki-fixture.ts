// Test support: a throwaway CA and client certificates (good, expired, not yet valid, foreign)
// and bundle text built from them. Not a test file itself; imported by the client's tests.
// Made with the openssl CLI through the QUIC tests' TestCa (dataplane/quic/testing/pki.ts), so
// the tests share no code with what they check.
import { OpensslDir, TestCa, type Identity } from '../dataplane/quic/testing/pki.js';

export type Issued = Readonly<Identity>;

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

export function makePki(): Pki {
  const dir = new OpensslDir();
  try {
    const now = Date.now();
    const ca = new TestCa(dir, 'ca', 'masque test CA');
    const other = new TestCa(dir, 'other', 'someone else CA');
    const window = (from: number, to: number) => ({
      notBefore: new Date(now + from * DAY),
      notAfter: new Date(now + to * DAY),
    });
    return {
      ca: { certPem: ca.certPem, keyPem: ca.keyPem },
      client: ca.issue('alice', window(-1, 30)),
      expired: ca.issue('old', window(-60, -30)),
      notYetValid: ca.issue('future', window(30, 60)),
      foreign: other.issue('mallory', window(-1, 30)),
      strayKeyPem: dir.key('stray.key'),
    };
  } finally {
    dir.dispose();
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
