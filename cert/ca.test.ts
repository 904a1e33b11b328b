import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import * as x509 from './x509.js';
import {
  CertError,
  type CertErrorReason,
  createCa,
  importCa,
  issueClientCertificate,
  verifyCertificate,
} from './index.js';

const rejectsWith = (reason: CertErrorReason) => (err: unknown) => {
  assert.ok(err instanceof CertError, `expected CertError, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return true;
};

test('createCa makes a self-signed P-256 CA with the CA extensions', async () => {
  const now = new Date('2026-03-01T00:00:00Z');
  const ca = await createCa({ commonName: 'Test Root', days: 30, now });
  const cert = ca.certificate;
  assert.equal(ca.subject, 'CN=Test Root');
  assert.equal(cert.issuer, cert.subject);
  assert.equal(await cert.verify({ publicKey: cert.publicKey, signatureOnly: true }), true);
  assert.deepEqual(cert.publicKey.algorithm, { name: 'ECDSA', namedCurve: 'P-256' });
  const signature = cert.signatureAlgorithm as unknown as { name: string; hash: { name: string } };
  assert.deepEqual([signature.name, signature.hash.name], ['ECDSA', 'SHA-256']);

  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.ok(bc !== null && bc.ca && bc.critical);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  assert.ok(ku !== null && ku.critical);
  assert.equal(ku.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  assert.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);

  assert.equal(ca.notAfter.getTime() - now.getTime(), 30 * 86_400_000);
  assert.ok(ca.notBefore.getTime() < now.getTime(), 'backdated for clock skew');
  assert.match(ca.serial, /^[4-7][0-9a-f]{31}$/);
  assert.match(ca.fingerprint, /^[0-9a-f]{64}$/);
  assert.match(ca.certPem, /^-----BEGIN CERTIFICATE-----\n[\s\S]+-----END CERTIFICATE-----\n$/);
  assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(createPrivateKey(ca.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
});

test('createCa rejects bad names and lifetimes', async () => {
  await assert.rejects(createCa({ commonName: '' }), rejectsWith('invalid-name'));
  await assert.rejects(createCa({ commonName: 'a\nb' }), rejectsWith('invalid-name'));
  await assert.rejects(createCa({ days: 0 }), rejectsWith('invalid-argument'));
  await assert.rejects(createCa({ days: 1.5 }), rejectsWith('invalid-argument'));
});

test('importCa takes back a CA it made, PKCS#8 or SEC1, and keeps issuing under it', async () => {
  const original = await createCa();
  const again = await importCa(original.certPem, original.keyPem);
  assert.equal(again.fingerprint, original.fingerprint);
  assert.equal(again.subject, original.subject);

  const sec1 = createPrivateKey(original.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
  assert.match(sec1, /BEGIN EC PRIVATE KEY/);
  const fromSec1 = await importCa(original.certPem, sec1);
  assert.equal(fromSec1.keyPem, original.keyPem, 'normalized to PKCS#8');

  // A certificate issued by the imported CA verifies under the original certificate.
  const leaf = await issueClientCertificate(fromSec1, 'bob/phone');
  const info = await verifyCertificate(leaf.certPem, original.certPem, { purpose: 'client' });
  assert.equal(info.commonName, 'bob/phone');
});

test('importCa rejects a key that does not belong to the certificate', async () => {
  const a = await createCa();
  const b = await createCa();
  await assert.rejects(importCa(a.certPem, b.keyPem), rejectsWith('key-mismatch'));
});

test('importCa rejects certificates that are not CAs, foreign key types and garbage', async () => {
  const ca = await createCa();
  const leaf = await issueClientCertificate(ca, 'alice');
  await assert.rejects(importCa(leaf.certPem, leaf.keyPem), rejectsWith('not-a-ca'));

  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  await assert.rejects(importCa(ca.certPem, rsa as string), rejectsWith('unsupported-key'));
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey.export({
    type: 'pkcs8',
    format: 'pem',
  });
  await assert.rejects(importCa(ca.certPem, p384 as string), rejectsWith('unsupported-key'));

  await assert.rejects(importCa('not a certificate', ca.keyPem), rejectsWith('malformed'));
  await assert.rejects(importCa(ca.keyPem, ca.keyPem), rejectsWith('malformed'));
  await assert.rejects(importCa(ca.certPem, 'not a key'), rejectsWith('malformed'));
  const truncated = ca.certPem.replace(/\n[A-Za-z0-9+/]{20}/, '\n');
  await assert.rejects(importCa(truncated, ca.keyPem), rejectsWith('malformed'));
});
