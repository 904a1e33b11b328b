// The client config bundle (docs/bundle.md): TOML text and its masque:// URI form. Pure functions;
// the certificate and key come from the caller.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { stringify } from 'smol-toml';

export const BUNDLE_VERSION = 1;

export interface BundleFields {
  user: string;
  device: string;
  endpoints: string[];
  serverName: string;
  templatePath: string;
  mtu: number;
  ipv4?: string;
  ipv6?: string;
  fec: { enabled: boolean; blockSize: number; redundancyPercent: number };
  caPem: string;
  certPem: string;
  /** Absent when the client sent a CSR and keeps its key. */
  keyPem?: string;
}

export function bundleToml(b: BundleFields): string {
  const tunnel: Record<string, string | number> = { mtu: b.mtu };
  if (b.ipv4) tunnel.ipv4 = b.ipv4;
  if (b.ipv6) tunnel.ipv6 = b.ipv6;
  const tls: Record<string, string> = { ca: b.caPem, cert: b.certPem };
  if (b.keyPem !== undefined) tls.key = b.keyPem;
  const doc = {
    version: BUNDLE_VERSION,
    user: b.user,
    device: b.device,
    server: { endpoints: b.endpoints, server_name: b.serverName, template_path: b.templatePath },
    tunnel,
    fec: {
      enabled: b.fec.enabled,
      block_size: b.fec.blockSize,
      redundancy_percent: b.fec.redundancyPercent,
    },
    tls,
  };
  const secret = b.keyPem !== undefined ? ' It contains a private key: keep it secret.' : '';
  return `# masque-vpn client bundle: ${b.user}/${b.device}.${secret}\n${stringify(doc)}\n`;
}

export function bundleUri(serverName: string, toml: string): string {
  const payload = deflateRawSync(Buffer.from(toml, 'utf8'), { level: 9 }).toString('base64url');
  return `masque://${serverName}/?v=${BUNDLE_VERSION}&b=${payload}`;
}

/** The TOML text inside a masque:// URI; throws Error with a readable message otherwise. */
export function bundleFromUri(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error('not a URI');
  }
  if (url.protocol !== 'masque:') throw new Error(`not a masque:// URI (${url.protocol})`);
  const v = url.searchParams.get('v');
  if (v !== String(BUNDLE_VERSION)) throw new Error(`unsupported bundle URI version ${v}`);
  const b = url.searchParams.get('b');
  if (b === null || b === '') throw new Error('bundle URI without payload');
  return inflateRawSync(Buffer.from(b, 'base64url'), { maxOutputLength: 1 << 20 }).toString('utf8');
}
