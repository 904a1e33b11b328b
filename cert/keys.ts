// Keys and encodings shared by the PKI modules: ECDSA P-256 with SHA-256 over WebCrypto, PKCS#8
// PEM for private keys, and the one place that hands @peculiar/x509 its crypto provider.

import { createHash, createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from './x509.js';
import { CertError } from './errors.js';

export type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const crypto: webcrypto.Crypto = webcrypto;

export const subtle: webcrypto.SubtleCrypto = crypto.subtle;
export const EC_KEY: webcrypto.EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
export const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

export async function generateKeyPair(): Promise<CryptoKeyPair> {
  // Extractable: the caller receives the private key as PKCS#8 (bundles, CLI files).
  return subtle.generateKey(EC_KEY, true, ['sign', 'verify']);
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  const der = await subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

/**
 * Reads a P-256 private key from PKCS#8 PEM (or SEC1 `EC PRIVATE KEY`, as `openssl ecparam
 * -genkey` writes it) into a signing CryptoKey.
 */
export async function importPrivateKeyPem(pem: string): Promise<CryptoKey> {
  let der: Buffer;
  try {
    const key = createPrivateKey({ key: pem, format: 'pem' });
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      const kind =
        key.asymmetricKeyType === 'ec'
          ? `EC ${key.asymmetricKeyDetails?.namedCurve}`
          : key.asymmetricKeyType;
      throw new CertError(
        'unsupported-key',
        `the private key is ${kind}; only ECDSA P-256 is supported`,
      );
    }
    der = key.export({ type: 'pkcs8', format: 'der' });
  } catch (err) {
    if (err instanceof CertError) throw err;
    throw new CertError('malformed', 'the private key is not a readable PEM private key', {
      cause: err,
    });
  }
  return subtle.importKey('pkcs8', der, EC_KEY, true, ['sign']);
}

export function isP256(algorithm: webcrypto.Algorithm): boolean {
  return (
    algorithm.name === 'ECDSA' && (algorithm as webcrypto.EcKeyAlgorithm).namedCurve === 'P-256'
  );
}

/** SHA-256 of the DER encoding, lower-case hex. */
export function fingerprint(der: Uint8Array | ArrayBuffer): string {
  return createHash('sha256')
    .update(der instanceof Uint8Array ? der : new Uint8Array(der))
    .digest('hex');
}

/** Serials as lower-case hex without separators or leading zeros (`0A:1B` → `a1b`). */
export function normalizeSerial(serial: string): string {
  const hex = serial.replace(/[:\s]/g, '').toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length > 42) {
    throw new CertError(
      'invalid-argument',
      `"${serial}" is not a certificate serial number (hex, up to 20 bytes)`,
    );
  }
  return hex.replace(/^0+(?=.)/, '');
}

/** 16 random bytes, top bit clear (positive) and the next set (no leading zero byte): always 32 hex digits. */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return Buffer.from(bytes).toString('hex');
}

/** PEM or DER bytes in; one certificate out, or CertError('malformed'). */
export function parseCertificate(
  input: string | Uint8Array,
  what = 'certificate',
): x509.X509Certificate {
  try {
    if (typeof input === 'string') {
      const blocks = x509.PemConverter.decodeWithHeaders(input).filter(
        (b) => b.type === 'CERTIFICATE',
      );
      if (blocks.length === 0) throw new Error('no CERTIFICATE block');
      return new x509.X509Certificate(blocks[0].rawData);
    }
    return new x509.X509Certificate(input);
  } catch (err) {
    throw new CertError('malformed', `the ${what} is not a readable X.509 certificate`, {
      cause: err,
    });
  }
}

export function toBytes(buffer: ArrayBuffer): Uint8Array {
  return new Uint8Array(buffer);
}
