// Joining a control plane over TCP. A data plane on another machine has no unix socket whose file
// permissions vouch for it: it proves itself with a client certificate the control plane signed.
// The first start trades a one-time join token (`vpnctl dataplane token`) and a CSR for that
// certificate (the Join RPC, the only call a caller without a certificate may make besides
// health); the key and certificate are kept in the state directory, so later starts need no token.
import { webcrypto, X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { DataPlaneClient } from '../../proto/gen/masque/v1/dataplane.js';
import { ControlError, grpcChannelOptions } from './control.js';

/** mTLS material for the gRPC channel to a remote control plane. */
export interface ControlTls {
  caPem: string;
  certPem: string;
  keyPem: string;
  /** Name the control plane's certificate must carry (default: the host of the address). */
  serverName?: string;
}

export interface JoinOptions {
  /** HOST:PORT of the control plane's gRPC over TCP. */
  address: string;
  caPem: string;
  serverName?: string;
  /** One-time token; needed only when the state directory holds no usable identity. */
  token?: string;
  /** This data plane's name (becomes the certificate's common name). */
  name: string;
  stateDir: string;
  now?: () => number;
}

export interface JoinResult {
  tls: ControlTls;
  /** True when this start joined (used the token); false when a stored identity was reused. */
  joined: boolean;
  notAfter: Date;
}

const KEY_FILE = 'control-client.key';
const CERT_FILE = 'control-client.crt';
const P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** A fresh P-256 key and a CSR for it (the control plane sets the subject itself). */
export async function makeCsr(name: string): Promise<{ csrPem: string; keyPem: string }> {
  // Loaded only by a data plane that joins: @peculiar/x509's dependency injection needs the
  // Reflect polyfill first, and it signs through Node's WebCrypto.
  await import('reflect-metadata');
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const keys = (await webcrypto.subtle.generateKey(P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${name.replace(/[,+="\\<>;#]/g, '_')}`,
    keys,
    signingAlgorithm: P256,
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { csrPem: csr.toString('pem'), keyPem: pem('PRIVATE KEY', pkcs8) };
}

/** The identity stored by an earlier join, if it is there and still valid at `now`. */
export function storedIdentity(
  stateDir: string,
  now: number,
): { certPem: string; keyPem: string; notAfter: Date } | { problem: string } | undefined {
  const certPath = join(stateDir, CERT_FILE);
  const keyPath = join(stateDir, KEY_FILE);
  if (!existsSync(certPath) || !existsSync(keyPath)) return undefined;
  const certPem = readFileSync(certPath, 'utf8');
  const keyPem = readFileSync(keyPath, 'utf8');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return { problem: `${certPath} is not a certificate` };
  }
  const notAfter = new Date(cert.validTo);
  if (notAfter.getTime() <= now) {
    return { problem: `the data plane certificate in ${certPath} expired on ${cert.validTo}` };
  }
  return { certPem, keyPem, notAfter };
}

/** Calls Join with the token and a CSR over TLS without a client certificate. */
async function callJoin(opts: JoinOptions, csrPem: string): Promise<{ certPem: string }> {
  const client = new DataPlaneClient(
    opts.address,
    credentials.createSsl(Buffer.from(opts.caPem)),
    grpcChannelOptions(opts.serverName),
  );
  try {
    return await new Promise((ok, fail) =>
      client.join(
        { token: opts.token ?? '', name: opts.name, csrPem },
        new Metadata(),
        { deadline: new Date(Date.now() + 15_000) },
        (err: ServiceError | null, res) =>
          err ? fail(new ControlError(`join: ${err.details || err.message}`, err.code)) : ok(res),
      ),
    );
  } finally {
    client.close();
  }
}

/**
 * The mTLS identity for a remote control plane: the stored one while it is valid, else a new one
 * obtained with the join token (stored for next time, key mode 0600).
 */
export async function loadOrJoin(opts: JoinOptions): Promise<JoinResult> {
  const now = (opts.now ?? Date.now)();
  const stored = storedIdentity(opts.stateDir, now);
  const tlsOf = (certPem: string, keyPem: string): ControlTls => ({
    caPem: opts.caPem,
    certPem,
    keyPem,
    serverName: opts.serverName,
  });
  if (stored !== undefined && !('problem' in stored)) {
    return { tls: tlsOf(stored.certPem, stored.keyPem), joined: false, notAfter: stored.notAfter };
  }
  if (opts.token === undefined) {
    const why =
      stored === undefined ? `no data plane identity in ${opts.stateDir}` : stored.problem;
    throw new ControlError(
      `${why}; join the control plane once with --join-token TOKEN (from \`vpnctl dataplane token\`)`,
    );
  }
  const { csrPem, keyPem } = await makeCsr(opts.name);
  const { certPem } = await callJoin(opts, csrPem);
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(opts.stateDir, KEY_FILE), keyPem, { mode: 0o600 });
  chmodSync(join(opts.stateDir, KEY_FILE), 0o600);
  writeFileSync(join(opts.stateDir, CERT_FILE), certPem, { mode: 0o644 });
  return {
    tls: tlsOf(certPem, keyPem),
    joined: true,
    notAfter: new Date(new X509Certificate(certPem).validTo),
  };
}
