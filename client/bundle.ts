// The client config bundle: one TOML file with the server endpoint(s), the TLS server name, the CA,
// the client certificate and key, and tunnel settings. Everything a person can get wrong in it is
// found here, before any packet is sent, and reported as one line naming the key at fault.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { BundleError, CertificateError, ResolveError } from './errors.js';
import type { FecPreference, ResolvedEndpoint, TransportSettings } from './transport.js';

export const DEFAULT_TEMPLATE = '/.well-known/masque/ip/{target}/{ipproto}/';
export const DEFAULT_MTU = 1280;
/** 1280 is the IPv6 minimum link MTU (RFC 8200 §5), and the TUN carries IPv6; 9000 is the usual
 * jumbo-frame ceiling, and the outer path must carry MTU + QUIC/HTTP-3 overhead anyway. */
export const MTU_MIN = 1280;
export const MTU_MAX = 9000;
export const BUNDLE_VERSION = 1;

const pem = z.string().min(1);

// docs/bundle.md: keys unknown *inside known tables* are ignored (later versions add optional keys
// without bumping `version`); they are still reported by name, as warnings, so a typo is visible.
// Unknown top-level keys and tables are errors.
const serverSchema = z.object({
  endpoints: z.array(z.string()).min(1),
  server_name: z.string().min(1),
  template_path: z.string().optional(),
});
const tunnelSchema = z.object({
  mtu: z.number().int().optional(),
  ipv4: z.string().optional(),
  ipv6: z.string().optional(),
  /** Resolvers to use while the tunnel is up, applied only with --dns. Not in docs/bundle.md v1. */
  dns: z.array(z.string()).optional(),
});
const fecSchema = z.object({
  enabled: z.boolean().optional(),
  block_size: z.number().int().min(1).max(255).optional(),
  redundancy_percent: z.number().int().min(0).max(100).optional(),
  /** Longest a half-full block waits before its repair goes out (dataplane/fec). */
  flush_ms: z.number().min(0).max(1000).optional(),
  /** Blocks filled in turn, so one loss burst hits each block once. */
  interleave: z.number().int().min(1).max(16).optional(),
});
const tlsSchema = z.object({
  ca: pem,
  cert: pem,
  /** Absent when the bundle was exported from a CSR: the key then comes from --key. */
  key: pem.optional(),
});
const schema = z.strictObject({
  version: z.number().int(),
  user: z.string().optional(),
  device: z.string().optional(),
  server: serverSchema,
  tunnel: tunnelSchema.optional(),
  fec: fecSchema.optional(),
  tls: tlsSchema,
});
const tables = { server: serverSchema, tunnel: tunnelSchema, fec: fecSchema, tls: tlsSchema };

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Bundle {
  readonly source: string;
  readonly endpoints: readonly Endpoint[];
  readonly serverName: string;
  /** Path of the URI template; the full template is built per endpoint (uriTemplate()). */
  readonly templatePath: string;
  readonly mtu: number;
  readonly fec: FecPreference;
  readonly dns: readonly string[];
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Subject of the client certificate, for logs and status. */
  readonly subject: string;
  readonly certExpires: Date;
  /** "user/device" when the bundle names them. */
  readonly identity: string | undefined;
  /** Keys ignored as unknown (forward compatibility), by full name. */
  readonly ignoredKeys: readonly string[];
}

/**
 * What a transport needs from a bundle and its resolved endpoints. The CLI's flags may override
 * the template, the address request (on unless said otherwise) and the MTU.
 */
export function transportSettings(
  bundle: Bundle,
  endpoints: readonly ResolvedEndpoint[],
  o: { template?: string; addressRequest?: boolean; mtu?: number } = {},
): TransportSettings {
  return {
    endpoints,
    serverName: bundle.serverName,
    templatePath: o.template ?? bundle.templatePath,
    caPem: bundle.caPem,
    certPem: bundle.certPem,
    keyPem: bundle.keyPem,
    addressRequest: o.addressRequest ?? true,
    fec: bundle.fec,
    mtu: o.mtu ?? bundle.mtu,
  };
}

/**
 * The CONNECT-IP URI template for one endpoint (docs/bundle.md): https://server_name:port + path.
 * An absolute `https://` template (from --template) is used as written: its authority is what
 * goes into :authority, byte for byte (PROTOCOL.md §10.1 item 4).
 */
export function uriTemplate(serverName: string, port: number, pathOrTemplate: string): string {
  if (/^https:\/\//i.test(pathOrTemplate)) return pathOrTemplate;
  const host = serverName.includes(':') ? `[${serverName}]` : serverName;
  return `https://${host}:${port}${pathOrTemplate}`;
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

function schemaError(error: z.ZodError, source: string): BundleError {
  // A misspelt key shows up twice: as unknown, and as the missing key it was meant to be. The
  // unknown name is the better clue, so it is reported first.
  const issue = error.issues.find((i) => i.code === 'unrecognized_keys') ?? error.issues[0];
  const base = issuePath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = base ? `${base}.${issue.keys[0]}` : issue.keys[0];
    return new BundleError(`${source}: unknown key ${key}`, key);
  }
  if (issue.code === 'invalid_type') {
    if (/received undefined$/.test(issue.message)) {
      return new BundleError(`${source}: missing key ${base}`, base);
    }
    const got = /received (\w+)$/.exec(issue.message)?.[1] ?? 'something else';
    return new BundleError(`${source}: ${base} must be ${issue.expected} (got ${got})`, base);
  }
  if (issue.code === 'invalid_value') {
    const allowed = issue.values.map(String).join(', ');
    return new BundleError(`${source}: ${base} must be one of ${allowed}`, base);
  }
  return new BundleError(`${source}: ${base}: ${issue.message}`, base);
}

/** Parses host:port, [v6]:port. */
export function parseEndpoint(text: string, key: string, source: string): Endpoint {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (!m) {
    throw new BundleError(
      `${source}: ${key} "${text}" is not host:port (IPv6 as [addr]:port)`,
      key,
    );
  }
  const port = Number(m[2]);
  if (port < 1 || port > 65535) {
    throw new BundleError(`${source}: ${key} "${text}" has an invalid port`, key);
  }
  if (m[1].includes(':') && isIP(m[1]) !== 6) {
    throw new BundleError(`${source}: ${key} "${text}" has an invalid IPv6 address`, key);
  }
  return { host: m[1], port };
}

/** Checks a URI template the way PROTOCOL.md §4.1 constrains it; returns it unchanged. */
export function checkTemplate(template: string, key: string, source: string): string {
  const fail = (why: string): never => {
    throw new BundleError(`${source}: ${key} "${template}" ${why}`, key);
  };
  if (!/^[\x21-\x7e]+$/.test(template)) fail('may contain only visible ASCII characters');
  let path = template;
  if (/^[a-z][a-z0-9+.-]*:/i.test(template)) {
    const m = /^https:\/\/([^/]+)(\/.*)$/i.exec(template);
    if (!m) fail('must be a path or an https:// template with a path');
    path = m![2];
  } else if (!template.startsWith('/')) {
    fail('must start with /');
  }
  for (const expr of path.match(/\{[^}]*\}/g) ?? []) {
    if (/^\{[+#./;]/.test(expr)) fail(`uses the operator in ${expr}, which CONNECT-IP forbids`);
  }
  if (/[{}]/.test(path.replace(/\{[^{}]*\}/g, ''))) fail('has unbalanced braces');
  return template;
}

export function checkMtu(mtu: number, key: string, source: string): number {
  if (!Number.isInteger(mtu) || mtu < MTU_MIN || mtu > MTU_MAX) {
    throw new BundleError(`${source}: ${key} ${mtu} is out of range (${MTU_MIN}-${MTU_MAX})`, key);
  }
  return mtu;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function parseCertificates(text: string, key: string, source: string): X509Certificate[] {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new CertificateError(`${source}: ${key} is not a PEM certificate`, key);
  }
  return blocks.map((block) => {
    try {
      return new X509Certificate(block);
    } catch {
      throw new CertificateError(`${source}: ${key} is not a readable certificate`, key);
    }
  });
}

function parseKey(text: string, key: string, source: string): KeyObject {
  try {
    const k = createPrivateKey(text);
    return k;
  } catch {
    throw new CertificateError(`${source}: ${key} is not a readable private key`, key);
  }
}

function day(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function checkValidity(
  cert: X509Certificate,
  what: string,
  key: string,
  source: string,
  now: Date,
): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (now < from) {
    throw new CertificateError(`${source}: ${what} is not valid before ${day(from)}`, key);
  }
  if (now > to) {
    throw new CertificateError(`${source}: ${what} expired on ${day(to)}`, key);
  }
}

/** Keys present in known tables that the schema does not know, as "table.key". */
function ignoredKeys(raw: unknown): string[] {
  if (typeof raw !== 'object' || raw === null) return [];
  const out: string[] = [];
  for (const [table, shape] of Object.entries(tables)) {
    const value = (raw as Record<string, unknown>)[table];
    if (typeof value !== 'object' || value === null || Array.isArray(value)) continue;
    for (const key of Object.keys(value)) {
      if (!(key in shape.shape)) out.push(`${table}.${key}`);
    }
  }
  return out;
}

export interface ParseOptions {
  /** Validity reference for the certificates. */
  readonly now?: Date;
  /** PEM key to use when the bundle carries none (exported from a CSR; --key). */
  readonly keyPem?: string;
  /** Name of where keyPem came from, for messages. */
  readonly keySource?: string;
}

/**
 * Parses and validates bundle text (docs/bundle.md v1): schema, endpoints, template path, MTU,
 * and the certificates (readable, key matches, within validity, issued by the bundle's CA).
 */
export function parseBundle(text: string, source: string, options: ParseOptions = {}): Bundle {
  const now = options.now ?? new Date();
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    const first = String((err as Error).message).split('\n')[0];
    throw new BundleError(`${source}: not valid TOML: ${first}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw schemaError(parsed.error, source);
  const b = parsed.data;
  if (b.version !== BUNDLE_VERSION) {
    throw new BundleError(
      `${source}: bundle format version ${b.version} is not supported (this client reads ${BUNDLE_VERSION})`,
      'version',
    );
  }

  const endpoints = b.server.endpoints.map((e) => parseEndpoint(e, 'server.endpoints', source));
  const templatePath = checkTemplate(
    b.server.template_path ?? DEFAULT_TEMPLATE,
    'server.template_path',
    source,
  );
  if (templatePath.startsWith('https:')) {
    throw new BundleError(
      `${source}: server.template_path must be a path starting with /`,
      'server.template_path',
    );
  }
  const mtu = checkMtu(b.tunnel?.mtu ?? DEFAULT_MTU, 'tunnel.mtu', source);
  for (const key of ['ipv4', 'ipv6'] as const) {
    const value = b.tunnel?.[key];
    if (value !== undefined && isIP(value) !== (key === 'ipv4' ? 4 : 6)) {
      throw new BundleError(
        `${source}: tunnel.${key} "${value}" is not an ${key === 'ipv4' ? 'IPv4' : 'IPv6'} address`,
        `tunnel.${key}`,
      );
    }
  }
  const dns = b.tunnel?.dns ?? [];
  for (const server of dns) {
    if (isIP(server) === 0) {
      throw new BundleError(`${source}: tunnel.dns "${server}" is not an IP address`, 'tunnel.dns');
    }
  }

  let keyPem: string;
  let keyName: string;
  if (b.tls.key !== undefined) {
    keyPem = b.tls.key;
    keyName = 'tls.key';
  } else if (options.keyPem !== undefined) {
    keyPem = options.keyPem;
    keyName = options.keySource ?? '--key';
  } else {
    throw new BundleError(
      `${source}: missing key tls.key (a bundle exported from a CSR needs --key FILE)`,
      'tls.key',
    );
  }

  const cas = parseCertificates(b.tls.ca, 'tls.ca', source);
  const [cert] = parseCertificates(b.tls.cert, 'tls.cert', source);
  const privateKey = parseKey(keyPem, keyName, source);
  if (!cert.checkPrivateKey(privateKey)) {
    throw new CertificateError(
      `${source}: ${keyName} does not belong to tls.cert (certificate/key mismatch)`,
      keyName,
    );
  }
  checkValidity(cert, 'the client certificate (tls.cert)', 'tls.cert', source, now);
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) {
    throw new CertificateError(
      `${source}: tls.cert was not signed by tls.ca (certificate issuer: ${oneLine(cert.issuer)})`,
      'tls.cert',
    );
  }
  checkValidity(issuer, 'the CA certificate (tls.ca)', 'tls.ca', source, now);

  return {
    source,
    endpoints,
    serverName: b.server.server_name,
    templatePath,
    mtu,
    fec: {
      enabled: b.fec?.enabled ?? false,
      blockSize: b.fec?.block_size ?? 10,
      redundancyPercent: b.fec?.redundancy_percent ?? 20,
      flushMs: b.fec?.flush_ms ?? 5,
      interleave: b.fec?.interleave ?? 1,
    },
    dns,
    caPem: b.tls.ca,
    certPem: b.tls.cert,
    keyPem,
    subject: oneLine(cert.subject),
    certExpires: new Date(cert.validTo),
    identity: b.user !== undefined ? `${b.user}/${b.device ?? 'default'}` : undefined,
    ignoredKeys: ignoredKeys(raw),
  };
}

function oneLine(dn: string): string {
  return dn.split('\n').filter(Boolean).join(', ');
}

export type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Resolves every endpoint (literals pass through); fails if one does not resolve in time. */
export async function resolveEndpoints(
  endpoints: readonly Endpoint[],
  options: { timeoutMs?: number; lookup?: Lookup } = {},
): Promise<ResolvedEndpoint[]> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const resolver = options.lookup ?? systemLookup;
  return Promise.all(
    endpoints.map(async ({ host, port }) => {
      if (isIP(host) !== 0) return { host, port, addresses: [host] };
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(new ResolveError(`server ${host} did not resolve within ${timeoutMs} ms`, host)),
          timeoutMs,
        );
      });
      try {
        const addresses = await Promise.race([resolver(host), timeout]);
        if (addresses.length === 0) throw new ResolveError(`server ${host} has no addresses`, host);
        return { host, port, addresses };
      } catch (err) {
        if (err instanceof ResolveError) throw err;
        const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        throw new ResolveError(`server ${host} cannot be resolved (${code})`, host);
      } finally {
        clearTimeout(timer);
      }
    }),
  );
}

function readOrFail(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (code ?? 'unreadable');
    throw new BundleError(`${path}: cannot read the ${what} (${why})`);
  }
}

/** Reads, validates and resolves a bundle file; `keyFile` supplies the key of a CSR bundle. */
export async function loadBundle(
  path: string,
  options: { now?: Date; timeoutMs?: number; lookup?: Lookup; keyFile?: string } = {},
): Promise<{ bundle: Bundle; endpoints: ResolvedEndpoint[] }> {
  const text = readOrFail(path, 'bundle');
  const keyPem = options.keyFile === undefined ? undefined : readOrFail(options.keyFile, 'key');
  const bundle = parseBundle(text, path, {
    now: options.now,
    keyPem,
    keySource: options.keyFile,
  });
  const endpoints = await resolveEndpoints(bundle.endpoints, options);
  return { bundle, endpoints };
}
