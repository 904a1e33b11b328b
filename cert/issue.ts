// Leaf certificates signed by the CA: data-plane servers, VPN clients and administrators, with a
// fresh key pair or for the public key of a verified CSR. The CA alone decides subject and SANs.

import * as x509 from './x509.js';
import type { CertificateAuthority } from './ca.js';
import { ADMIN_OU, CLOCK_SKEW_MS, DEFAULT_DAYS, SERVER_OU } from './defaults.js';
import { CertError } from './errors.js';
import {
  type CryptoKey,
  exportPrivateKeyPem,
  fingerprint,
  generateKeyPair,
  isP256,
  normalizeSerial,
  randomSerial,
  SIGNING,
  toBytes,
} from './keys.js';
import { canonicalIp, validateDays, validateIdentity, validateServerName } from './names.js';

export type CertificateProfile =
  | { kind: 'server'; serverName: string; ipAddresses?: readonly string[] }
  | { kind: 'client'; identity: string }
  | { kind: 'admin'; identity: string };

export type CertificateKind = CertificateProfile['kind'];

export interface IssueOptions {
  days?: number;
  now?: Date;
}

export interface IssuedCertificate {
  certPem: string;
  certDer: Uint8Array;
  serial: string;
  fingerprint: string;
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

export interface IssuedKeyPair extends IssuedCertificate {
  /** PKCS#8 PEM of the fresh private key. */
  keyPem: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** A certificate with a fresh P-256 key pair. */
export async function issueCertificate(
  ca: CertificateAuthority,
  profile: CertificateProfile,
  opts: IssueOptions = {},
): Promise<IssuedKeyPair> {
  const plan = planProfile(profile); // validate names before spending a key generation
  const keys = await generateKeyPair();
  const issued = await sign(ca, plan, keys.publicKey, opts);
  return { ...issued, keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

export function issueServerCertificate(
  ca: CertificateAuthority,
  serverName: string,
  ipAddresses: readonly string[] = [],
  opts?: IssueOptions,
): Promise<IssuedKeyPair> {
  return issueCertificate(ca, { kind: 'server', serverName, ipAddresses }, opts);
}

export function issueClientCertificate(
  ca: CertificateAuthority,
  identity: string,
  opts?: IssueOptions,
): Promise<IssuedKeyPair> {
  return issueCertificate(ca, { kind: 'client', identity }, opts);
}

export function issueAdminCertificate(
  ca: CertificateAuthority,
  identity: string,
  opts?: IssueOptions,
): Promise<IssuedKeyPair> {
  return issueCertificate(ca, { kind: 'admin', identity }, opts);
}

/**
 * Signs the public key of a PKCS#10 request after checking the request's own signature (proof
 * that the requester holds the key). Subject, SANs and extensions in the CSR are ignored.
 */
export async function signCsr(
  ca: CertificateAuthority,
  csr: string | Uint8Array,
  profile: CertificateProfile,
  opts: IssueOptions = {},
): Promise<IssuedCertificate> {
  const plan = planProfile(profile);
  let request: x509.Pkcs10CertificateRequest;
  try {
    request = new x509.Pkcs10CertificateRequest(csr);
  } catch (err) {
    throw new CertError('malformed', 'the CSR is not a readable PKCS#10 certificate request', {
      cause: err,
    });
  }
  if (!isP256(request.publicKey.algorithm)) {
    throw new CertError('unsupported-key', 'the CSR key is not ECDSA P-256');
  }
  let valid: boolean;
  try {
    valid = await request.verify();
  } catch (err) {
    throw new CertError('bad-signature', 'the CSR signature cannot be checked', { cause: err });
  }
  if (!valid)
    throw new CertError(
      'bad-signature',
      'the CSR signature does not verify: it was not made with its key',
    );
  return sign(ca, plan, request.publicKey, opts);
}

interface Plan {
  kind: CertificateKind;
  name: x509.JsonName;
  sans: x509.JsonGeneralNames;
  usages: x509.ExtendedKeyUsage[];
}

function planProfile(profile: CertificateProfile): Plan {
  switch (profile.kind) {
    case 'server': {
      const serverName = validateServerName(profile.serverName);
      const sans: x509.JsonGeneralNames = [];
      const ips = new Set((profile.ipAddresses ?? []).map(canonicalIp));
      if (ips.has(serverName)) ips.delete(serverName);
      sans.push({ type: isIpLiteral(serverName) ? 'ip' : 'dns', value: serverName });
      for (const ip of ips) sans.push({ type: 'ip', value: ip });
      return {
        kind: 'server',
        name: [{ OU: [SERVER_OU] }, { CN: [serverName] }],
        sans,
        // clientAuth too: a data plane presents this certificate when it calls the control plane.
        usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      };
    }
    case 'client':
      return {
        kind: 'client',
        name: [{ CN: [validateIdentity(profile.identity)] }],
        sans: [],
        usages: [x509.ExtendedKeyUsage.clientAuth],
      };
    case 'admin':
      return {
        kind: 'admin',
        name: [{ OU: [ADMIN_OU] }, { CN: [validateIdentity(profile.identity)] }],
        sans: [],
        usages: [x509.ExtendedKeyUsage.clientAuth],
      };
    default:
      throw new CertError(
        'invalid-argument',
        `unknown certificate kind ${(profile as { kind: unknown }).kind}`,
      );
  }
}

function isIpLiteral(name: string): boolean {
  try {
    return canonicalIp(name) === name;
  } catch {
    return false;
  }
}

async function sign(
  ca: CertificateAuthority,
  plan: Plan,
  publicKey: CryptoKey | x509.PublicKey,
  opts: IssueOptions,
): Promise<IssuedCertificate> {
  const days = validateDays(opts.days ?? DEFAULT_DAYS[plan.kind]);
  const now = opts.now ?? new Date();
  // A leaf never outlives its CA: chains whose CA expired first fail in every verifier anyway.
  const notAfter = new Date(Math.min(now.getTime() + days * DAY_MS, ca.notAfter.getTime()));
  const notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  if (notAfter.getTime() <= now.getTime()) {
    throw new CertError('expired', `the CA certificate ${ca.subject} has expired`);
  }
  const caKeyId = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(plan.usages, false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
    caKeyId !== undefined
      ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
      : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
  ];
  if (plan.sans.length > 0)
    extensions.push(new x509.SubjectAlternativeNameExtension(plan.sans, false));

  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: plan.name,
    issuer: ca.certificate.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING,
    extensions,
  });
  const der = toBytes(certificate.rawData);
  return {
    certPem: certificate.toString('pem') + '\n',
    certDer: der,
    serial: normalizeSerial(certificate.serialNumber),
    fingerprint: fingerprint(der),
    subject: certificate.subject,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}
