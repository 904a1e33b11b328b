// X.509 v2 certificate revocation lists (RFC 5280 §5), signed by the CA: what offline operators
// hand to data planes, and what the control plane can publish besides its live Watch stream.

import * as x509 from './x509.js';
import type { CertificateAuthority } from './ca.js';
import { CertError } from './errors.js';
import { normalizeSerial, SIGNING, toBytes } from './keys.js';
import { validateDays } from './names.js';

export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'cACompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  reason?: RevocationReason;
}

export interface CreateCrlOptions {
  now?: Date;
  /** nextUpdate = now + days; default 7. */
  days?: number;
  /** Default: seconds since the epoch, so successive lists from any tool still increase. */
  crlNumber?: bigint;
}

export interface CreatedCrl {
  pem: string;
  der: Uint8Array;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface RevocationList {
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | undefined;
  crlNumber: bigint | undefined;
  entries: RevokedEntry[];
  isRevoked(serial: string): boolean;
}

const OID_CRL_NUMBER = '2.5.29.20';
const DAY_MS = 24 * 60 * 60 * 1000;

export async function createCrl(
  ca: CertificateAuthority,
  entries: readonly RevokedEntry[],
  opts: CreateCrlOptions = {},
): Promise<CreatedCrl> {
  const now = opts.now ?? new Date();
  const nextUpdate = new Date(now.getTime() + validateDays(opts.days ?? 7) * DAY_MS);
  const crlNumber = opts.crlNumber ?? BigInt(Math.floor(now.getTime() / 1000));
  if (crlNumber < 0n || crlNumber >= 1n << 159n) {
    throw new CertError('invalid-argument', `CRL number ${crlNumber} is outside 0..2^159-1`);
  }
  const seen = new Set<string>();
  const crlEntries: x509.X509CrlEntryParams[] = [];
  for (const entry of entries) {
    const serial = normalizeSerial(entry.serial);
    if (seen.has(serial)) continue; // one entry per certificate, the first wins
    seen.add(serial);
    if (!(entry.revokedAt instanceof Date) || Number.isNaN(entry.revokedAt.getTime())) {
      throw new CertError('invalid-argument', `serial ${serial} has no valid revocation time`);
    }
    const params: x509.X509CrlEntryParams = {
      serialNumber: serial,
      revocationDate: entry.revokedAt,
    };
    // unspecified is expressed by leaving the reason out (RFC 5280 §5.3.1).
    if (entry.reason !== undefined && entry.reason !== 'unspecified')
      params.reason = x509.X509CrlReason[entry.reason];
    crlEntries.push(params);
  }

  const caKeyId = ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const crl = await x509.X509CrlGenerator.create({
    issuer: ca.certificate.subjectName,
    thisUpdate: now,
    nextUpdate,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING,
    entries: crlEntries,
    extensions: [
      caKeyId !== undefined
        ? new x509.AuthorityKeyIdentifierExtension(caKeyId)
        : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
      new x509.Extension(OID_CRL_NUMBER, false, encodeDerInteger(crlNumber)),
    ],
  });
  return {
    // openssl and GnuTLS look for the RFC 7468 label, not the library's default `CRL`.
    pem: x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n',
    der: toBytes(crl.rawData),
    crlNumber,
    thisUpdate: crl.thisUpdate,
    nextUpdate,
  };
}

/** Parses a CRL (PEM or DER) and checks that `ca` issued and signed it. */
export async function readCrl(
  input: string | Uint8Array,
  ca: CertificateAuthority | x509.X509Certificate,
): Promise<RevocationList> {
  const caCert = ca instanceof x509.X509Certificate ? ca : ca.certificate;
  let crl: x509.X509Crl;
  let entries: RevokedEntry[];
  let crlNumber: bigint | undefined;
  try {
    crl = new x509.X509Crl(input);
    entries = crl.entries.map((entry) => {
      const revoked: RevokedEntry = {
        serial: normalizeSerial(entry.serialNumber),
        revokedAt: entry.revocationDate,
      };
      const reason = entry.reason;
      if (reason !== undefined) revoked.reason = reasonName(reason);
      return revoked;
    });
    const numberExt = crl.getExtension(OID_CRL_NUMBER);
    crlNumber = numberExt === null ? undefined : decodeDerInteger(new Uint8Array(numberExt.value));
  } catch (err) {
    if (err instanceof CertError && err.reason !== 'invalid-argument') throw err;
    throw new CertError('malformed', 'the CRL is not a readable X.509 revocation list', {
      cause: err,
    });
  }
  if (crl.issuer !== caCert.subject) {
    throw new CertError(
      'issuer-mismatch',
      `the CRL was issued by ${crl.issuer}, not by ${caCert.subject}`,
    );
  }
  let signed: boolean;
  try {
    signed = await crl.verify({ publicKey: caCert.publicKey });
  } catch (err) {
    throw new CertError('bad-signature', 'the CRL signature cannot be checked', { cause: err });
  }
  if (!signed)
    throw new CertError('bad-signature', 'the CRL signature does not verify under the CA');

  const revoked = new Set(entries.map((e) => e.serial));
  return {
    issuer: crl.issuer,
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate,
    crlNumber,
    entries,
    isRevoked: (serial: string) => revoked.has(normalizeSerial(serial)),
  };
}

function reasonName(code: x509.X509CrlReason): RevocationReason {
  const name = x509.X509CrlReason[code] as
    RevocationReason | 'removeFromCRL' | 'aACompromise' | undefined;
  return name === undefined || name === 'removeFromCRL' || name === 'aACompromise'
    ? 'unspecified'
    : name;
}

/** DER INTEGER of a non-negative bigint: minimal big-endian bytes, a 0x00 in front if the top bit is set. */
export function encodeDerInteger(value: bigint): Uint8Array {
  let hex = value.toString(16);
  if (hex.length % 2 === 1) hex = '0' + hex;
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex;
  const body = Buffer.from(hex, 'hex');
  if (body.length > 127) throw new CertError('invalid-argument', 'integer too large');
  return Uint8Array.from([0x02, body.length, ...body]);
}

export function decodeDerInteger(der: Uint8Array): bigint {
  if (der.length < 3 || der[0] !== 0x02 || der[1] !== der.length - 2 || der[1] > 127) {
    throw new CertError('malformed', 'the CRL number is not a DER INTEGER');
  }
  if (der[2] & 0x80) throw new CertError('malformed', 'the CRL number is negative');
  return BigInt('0x' + Buffer.from(der.subarray(2)).toString('hex'));
}
