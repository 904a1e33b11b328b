// The certificate authority: made here (self-signed, P-256) or imported from an operator's PEM
// files, checked to be a CA whose key really is the one in hand.

import { randomBytes } from 'node:crypto';
import * as x509 from './x509.js';
import { CLOCK_SKEW_MS, DEFAULT_CA_DAYS, DEFAULT_CA_NAME } from './defaults.js';
import { CertError } from './errors.js';
import {
  type CryptoKey,
  EC_KEY,
  exportPrivateKeyPem,
  fingerprint,
  generateKeyPair,
  importPrivateKeyPem,
  isP256,
  normalizeSerial,
  parseCertificate,
  randomSerial,
  SIGNING,
  subtle,
} from './keys.js';
import { validateDays, validateIdentity } from './names.js';

export interface CertificateAuthority {
  readonly certificate: x509.X509Certificate;
  readonly certPem: string;
  /** PKCS#8. Never leaves the control plane. */
  readonly keyPem: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly subject: string;
  readonly serial: string;
  readonly fingerprint: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

export interface CreateCaOptions {
  /** Default `masque-vpn CA`. */
  commonName?: string;
  /** Default 3650. */
  days?: number;
  now?: Date;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export async function createCa(opts: CreateCaOptions = {}): Promise<CertificateAuthority> {
  const commonName = validateIdentity(opts.commonName ?? DEFAULT_CA_NAME);
  const days = validateDays(opts.days ?? DEFAULT_CA_DAYS);
  const now = opts.now ?? new Date();
  const keys = await generateKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    signingAlgorithm: SIGNING,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return describe(
    certificate,
    keys.privateKey,
    keys.publicKey,
    await exportPrivateKeyPem(keys.privateKey),
  );
}

/**
 * Takes an existing CA (PEM certificate, PEM private key: PKCS#8 or SEC1). Rejects a certificate
 * that is not a CA and a key that does not belong to it.
 */
export async function importCa(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const certificate = parseCertificate(certPem, 'CA certificate');
  if (!isP256(certificate.publicKey.algorithm)) {
    throw new CertError('unsupported-key', 'the CA certificate does not carry an ECDSA P-256 key');
  }
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (constraints === null || !constraints.ca) {
    throw new CertError(
      'not-a-ca',
      `${certificate.subject} is not a CA certificate (basicConstraints CA:TRUE missing)`,
    );
  }
  const usage = certificate.getExtension(x509.KeyUsagesExtension);
  if (usage !== null && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new CertError(
      'not-a-ca',
      `${certificate.subject} may not sign certificates (keyUsage keyCertSign missing)`,
    );
  }
  const privateKey = await importPrivateKeyPem(keyPem);
  const publicKey = await certificate.publicKey.export(EC_KEY, ['verify']);

  // A signature made with the key must verify under the certificate: proof they are a pair.
  const challenge = randomBytes(32);
  const signature = await subtle.sign(SIGNING, privateKey, challenge);
  if (!(await subtle.verify(SIGNING, publicKey, signature, challenge))) {
    throw new CertError(
      'key-mismatch',
      `the private key does not belong to the CA certificate ${certificate.subject}`,
    );
  }
  return describe(certificate, privateKey, publicKey, await exportPrivateKeyPem(privateKey));
}

function describe(
  certificate: x509.X509Certificate,
  privateKey: CryptoKey,
  publicKey: CryptoKey,
  keyPem: string,
): CertificateAuthority {
  return {
    certificate,
    certPem: certificate.toString('pem') + '\n',
    keyPem: keyPem.endsWith('\n') ? keyPem : keyPem + '\n',
    privateKey,
    publicKey,
    subject: certificate.subject,
    serial: normalizeSerial(certificate.serialNumber),
    fingerprint: fingerprint(certificate.rawData),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}
