// Reading and judging certificates: what a peer certificate says (identity, serial, role) and
// whether this CA issued it for this purpose and it is valid now.

import * as x509 from './x509.js';
import type { CertificateAuthority } from './ca.js';
import { CertError } from './errors.js';
import { ADMIN_OU, SERVER_OU } from './defaults.js';
import { fingerprint, normalizeSerial, parseCertificate } from './keys.js';
import { canonicalIp } from './names.js';

export type CertificateRole = 'server' | 'client' | 'admin' | 'ca' | 'unknown';
export type Purpose = 'server' | 'client';

export interface CertificateInfo {
  commonName: string | undefined;
  organizationalUnit: string | undefined;
  /** admin: OU masque-admin + clientAuth; client: clientAuth only; server: serverAuth; ca: CA:TRUE. */
  role: CertificateRole;
  subject: string;
  issuer: string;
  serial: string;
  fingerprint: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  isCa: boolean;
  /** Extended key usage OIDs; empty when the extension is absent. */
  extendedKeyUsages: string[];
}

export interface VerifyOptions {
  /** Required extended key usage: `client` → clientAuth, `server` → serverAuth. */
  purpose?: Purpose;
  /** Default now. */
  at?: Date;
  /** Serial (normalized hex) → revoked? E.g. a Set's `has` or `RevocationList.isRevoked`. */
  isRevoked?: (serial: string) => boolean;
  /** For `purpose: 'server'`: a DNS name or IP the certificate must name in its SANs. */
  serverName?: string;
}

type CaInput = CertificateAuthority | x509.X509Certificate | string | Uint8Array;

/** PEM or DER (as a data plane hands over a peer certificate) → what it says. Throws 'malformed'. */
export function readCertificate(input: string | Uint8Array): CertificateInfo {
  return describe(parseCertificate(input));
}

/**
 * Checks leaf ← CA: issuer, signature, both validity windows, CA-ness of the CA, EKU for the
 * purpose, revocation, server name. Resolves to the leaf's info; rejects with a CertError whose
 * reason says which check failed.
 */
export async function verifyCertificate(
  leaf: string | Uint8Array | x509.X509Certificate,
  ca: CaInput,
  opts: VerifyOptions = {},
): Promise<CertificateInfo> {
  const cert = leaf instanceof x509.X509Certificate ? leaf : parseCertificate(leaf);
  const caCert = caCertificate(ca);
  const info = describe(cert);
  const at = opts.at ?? new Date();

  const caInfo = describe(caCert);
  if (!caInfo.isCa) throw new CertError('not-a-ca', `${caCert.subject} is not a CA certificate`);
  if (cert.issuer !== caCert.subject) {
    throw new CertError(
      'issuer-mismatch',
      `${info.subject} was issued by ${info.issuer}, not by ${caCert.subject}`,
    );
  }
  const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (aki !== undefined && ski !== undefined && aki !== ski) {
    throw new CertError(
      'issuer-mismatch',
      `${info.subject} was issued by a different key of ${caCert.subject}`,
    );
  }
  let signed: boolean;
  try {
    signed = await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true });
  } catch (err) {
    throw new CertError('bad-signature', `the signature of ${info.subject} cannot be checked`, {
      cause: err,
    });
  }
  if (!signed)
    throw new CertError(
      'bad-signature',
      `the signature of ${info.subject} does not verify under the CA`,
    );

  checkWindow(caInfo, at, 'the CA certificate');
  checkWindow(info, at, 'the certificate');
  if (info.isCa)
    throw new CertError('wrong-purpose', `${info.subject} is a CA certificate, not a leaf`);
  if (opts.purpose !== undefined) {
    const needed =
      opts.purpose === 'client'
        ? x509.ExtendedKeyUsage.clientAuth
        : x509.ExtendedKeyUsage.serverAuth;
    if (!info.extendedKeyUsages.includes(needed)) {
      throw new CertError(
        'wrong-purpose',
        `${info.subject} is not valid for TLS ${opts.purpose} authentication`,
      );
    }
    const usage = cert.getExtension(x509.KeyUsagesExtension);
    if (usage !== null && (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
      throw new CertError(
        'wrong-purpose',
        `${info.subject} may not make signatures (keyUsage digitalSignature missing)`,
      );
    }
  }
  if (opts.serverName !== undefined && !namesServer(info, opts.serverName)) {
    throw new CertError(
      'wrong-purpose',
      `${info.subject} is not valid for the server name ${opts.serverName}`,
    );
  }
  if (opts.isRevoked?.(info.serial)) {
    throw new CertError('revoked', `${info.subject} (serial ${info.serial}) is revoked`);
  }
  return info;
}

function checkWindow(info: CertificateInfo, at: Date, what: string): void {
  if (at.getTime() < info.notBefore.getTime()) {
    throw new CertError(
      'not-yet-valid',
      `${what} ${info.subject} is not valid before ${info.notBefore.toISOString()}`,
    );
  }
  if (at.getTime() > info.notAfter.getTime()) {
    throw new CertError(
      'expired',
      `${what} ${info.subject} expired at ${info.notAfter.toISOString()}`,
    );
  }
}

function namesServer(info: CertificateInfo, serverName: string): boolean {
  let ip: string | undefined;
  try {
    ip = canonicalIp(serverName);
  } catch {
    ip = undefined;
  }
  if (ip !== undefined) return info.ipAddresses.includes(ip);
  const name = serverName.toLowerCase().replace(/\.$/, '');
  return info.dnsNames.some((dns) => dns.toLowerCase() === name);
}

function caCertificate(ca: CaInput): x509.X509Certificate {
  if (ca instanceof x509.X509Certificate) return ca;
  if (typeof ca === 'string' || ca instanceof Uint8Array)
    return parseCertificate(ca, 'CA certificate');
  return ca.certificate;
}

function describe(cert: x509.X509Certificate): CertificateInfo {
  try {
    const field = (name: string): string | undefined => cert.subjectName.getField(name)[0];
    const constraints = cert.getExtension(x509.BasicConstraintsExtension);
    const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    const names = san?.names.items ?? [];
    const info: CertificateInfo = {
      commonName: field('CN'),
      organizationalUnit: field('OU'),
      role: 'unknown',
      subject: cert.subject,
      issuer: cert.issuer,
      serial: normalizeSerial(cert.serialNumber),
      fingerprint: fingerprint(cert.rawData),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
      ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
      isCa: constraints?.ca === true,
      extendedKeyUsages: Array.from(eku?.usages ?? [], String),
    };
    info.role = roleOf(info);
    return info;
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError('malformed', 'the certificate has unreadable fields', { cause: err });
  }
}

function roleOf(info: CertificateInfo): CertificateRole {
  if (info.isCa) return 'ca';
  const client = info.extendedKeyUsages.includes(x509.ExtendedKeyUsage.clientAuth);
  const server = info.extendedKeyUsages.includes(x509.ExtendedKeyUsage.serverAuth);
  if (server && (info.organizationalUnit === SERVER_OU || !client)) return 'server';
  if (client && info.organizationalUnit === ADMIN_OU) return 'admin';
  if (client && !server) return 'client';
  return 'unknown';
}
