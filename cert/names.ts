// What may go into a certificate: identities (CN), server names (DNS SAN), IP addresses (IP SAN)
// and lifetimes. Checked before signing, because a signed mistake lives until it expires.

import { isIP } from 'node:net';
import { CertError } from './errors.js';

// RFC 4514 specials: kept out of identities so a subject printed as text reads back unambiguously.
const DN_SPECIALS = /[,+"\\<>;=#]/;
// C0/C1 controls, DEL, and the Unicode format/separator characters that render invisibly.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * An identity for a CN, e.g. `alice/laptop`: 1–64 characters (X.520 ub-common-name), printable,
 * no leading or trailing space, none of `, + " \ < > ; = #`.
 */
export function validateIdentity(identity: string): string {
  if (typeof identity !== 'string' || identity.length === 0) {
    throw new CertError('invalid-name', 'the name is empty');
  }
  if ([...identity].length > 64) {
    throw new CertError(
      'invalid-name',
      `the name "${identity.slice(0, 20)}…" is longer than 64 characters`,
    );
  }
  if (INVISIBLE.test(identity)) {
    throw new CertError(
      'invalid-name',
      `the name ${JSON.stringify(identity)} contains control characters`,
    );
  }
  if (identity.trim() !== identity) {
    throw new CertError('invalid-name', `the name "${identity}" starts or ends with white space`);
  }
  if (DN_SPECIALS.test(identity)) {
    throw new CertError(
      'invalid-name',
      `the name "${identity}" contains one of , + " \\ < > ; = #`,
    );
  }
  return identity;
}

/** A DNS host name (lower-cased), or an IP address literal (canonical). */
export function validateServerName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new CertError('invalid-name', 'the server name is empty');
  }
  if (isIP(name) !== 0) return canonicalIp(name);
  const host = name.endsWith('.') ? name.slice(0, -1) : name;
  const labels = host.toLowerCase().split('.');
  const valid =
    host.length <= 253 &&
    labels.every((label) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) &&
    !/^[0-9]+$/.test(labels[labels.length - 1]);
  if (!valid) {
    throw new CertError(
      'invalid-name',
      `"${name}" is not a valid server name (DNS labels of letters, digits and inner hyphens, or an IP address)`,
    );
  }
  return labels.join('.');
}

/** An IPv4 or IPv6 address in canonical text (IPv6 per RFC 5952), or CertError. */
export function canonicalIp(address: string): string {
  const family = typeof address === 'string' && !address.includes('%') ? isIP(address) : 0;
  if (family === 4) return address;
  if (family === 6) {
    // The WHATWG URL serializer compresses IPv6 the RFC 5952 way and spells embedded IPv4 in hex.
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  }
  throw new CertError('invalid-name', `"${address}" is not an IP address`);
}

export function validateDays(days: number): number {
  if (!Number.isInteger(days) || days < 1 || days > 36500) {
    throw new CertError(
      'invalid-argument',
      `the lifetime must be a whole number of days from 1 to 36500, not ${days}`,
    );
  }
  return days;
}
