import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, webcrypto } from 'node:crypto';
import fc from 'fast-check';
import * as x509 from './x509.js';
import {
  CertError,
  type CertErrorReason,
  createCa,
  fingerprint,
  issueAdminCertificate,
  issueClientCertificate,
  issueServerCertificate,
  normalizeSerial,
  readCertificate,
  verifyCertificate,
} from './index.js';

const rejectsWith = (reason: CertErrorReason) => (err: unknown) => {
  assert.ok(err instanceof CertError, `expected CertError, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return true;
};

const ca = await createCa({ commonName: 'Verify Test CA' });
const client = await issueClientCertificate(ca, 'alice/laptop');
const server = await issueServerCertificate(ca, 'vpn.example.com', ['10.0.0.1']);

test('readCertificate reads PEM and DER alike (the data plane hands over DER)', () => {
  const fromPem = readCertificate(client.certPem);
  const fromDer = readCertificate(client.certDer);
  assert.deepEqual(fromDer, fromPem);
  assert.equal(fromDer.commonName, 'alice/laptop');
  assert.equal(fromDer.serial, client.serial);
  assert.equal(fromDer.notAfter.getTime(), client.notAfter.getTime());
  assert.equal(fromDer.fingerprint, createHash('sha256').update(client.certDer).digest('hex'));
  assert.equal(fingerprint(client.certDer), fromDer.fingerprint);
  assert.equal(fromDer.issuer, 'CN=Verify Test CA');
  assert.equal(readCertificate(ca.certPem).role, 'ca');
});

test('verifyCertificate accepts leaf ← CA for the right purpose, whichever form the CA takes', async () => {
  for (const anchor of [ca, ca.certificate, ca.certPem, new Uint8Array(ca.certificate.rawData)]) {
    const info = await verifyCertificate(client.certDer, anchor, { purpose: 'client' });
    assert.equal(info.commonName, 'alice/laptop');
  }
  const admin = await issueAdminCertificate(ca, 'ops');
  assert.equal((await verifyCertificate(admin.certPem, ca, { purpose: 'client' })).role, 'admin');
  assert.equal((await verifyCertificate(server.certPem, ca, { purpose: 'server' })).role, 'server');
  // The data plane's certificate also authenticates it as a TLS client of the control plane.
  await verifyCertificate(server.certPem, ca, { purpose: 'client' });
});

test('a certificate from another CA is refused, even one with the same name', async () => {
  const other = await createCa({ commonName: 'Other CA' });
  await assert.rejects(verifyCertificate(client.certPem, other), rejectsWith('issuer-mismatch'));
  // Same subject, different key: the key identifiers differ.
  const twin = await createCa({ commonName: 'Verify Test CA' });
  await assert.rejects(verifyCertificate(client.certPem, twin), rejectsWith('issuer-mismatch'));
  // Same subject, no key identifier to tell them apart: the signature does.
  const twinWithoutSki = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'CN=Verify Test CA',
    keys: (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ])) as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  await assert.rejects(
    verifyCertificate(client.certPem, twinWithoutSki),
    rejectsWith('bad-signature'),
  );
  // A leaf is not an anchor.
  await assert.rejects(verifyCertificate(client.certPem, server.certPem), rejectsWith('not-a-ca'));
});

test('a tampered certificate fails its signature check', async () => {
  const der = new Uint8Array(client.certDer);
  // The CN bytes sit inside the signed part: change one letter of "alice".
  const at = Buffer.from(der).indexOf(Buffer.from('alice/laptop'));
  assert.ok(at > 0);
  der[at] = 'm'.charCodeAt(0);
  await assert.rejects(verifyCertificate(der, ca), rejectsWith('bad-signature'));
});

test('validity windows of leaf and CA are enforced', async () => {
  const issuedAt = new Date(Math.floor(Date.now() / 1000) * 1000);
  const leaf = await issueClientCertificate(ca, 'short', { days: 1, now: issuedAt });
  await verifyCertificate(leaf.certPem, ca, { at: new Date(issuedAt.getTime() + 23 * 3_600_000) });
  await assert.rejects(
    verifyCertificate(leaf.certPem, ca, { at: new Date(issuedAt.getTime() + 25 * 3_600_000) }),
    rejectsWith('expired'),
  );
  await assert.rejects(
    verifyCertificate(leaf.certPem, ca, { at: new Date(issuedAt.getTime() - 3_600_000) }),
    rejectsWith('not-yet-valid'),
  );
  // Past the CA's end everything fails, the CA named as the reason.
  await assert.rejects(
    verifyCertificate(client.certPem, ca, { at: new Date(ca.notAfter.getTime() + 1000) }),
    (err: unknown) => rejectsWith('expired')(err) && /CA certificate/.test((err as Error).message),
  );
});

test('purpose, server name and revocation', async () => {
  await assert.rejects(
    verifyCertificate(client.certPem, ca, { purpose: 'server' }),
    rejectsWith('wrong-purpose'),
  );
  await assert.rejects(
    verifyCertificate(ca.certPem, ca, { purpose: 'client' }),
    rejectsWith('wrong-purpose'),
  );
  await verifyCertificate(server.certPem, ca, {
    purpose: 'server',
    serverName: 'VPN.example.com.',
  });
  await verifyCertificate(server.certPem, ca, { purpose: 'server', serverName: '10.0.0.1' });
  await assert.rejects(
    verifyCertificate(server.certPem, ca, { purpose: 'server', serverName: 'other.example.com' }),
    rejectsWith('wrong-purpose'),
  );
  await assert.rejects(
    verifyCertificate(server.certPem, ca, { purpose: 'server', serverName: '10.0.0.2' }),
    rejectsWith('wrong-purpose'),
  );
  const revoked = new Set([client.serial]);
  await assert.rejects(
    verifyCertificate(client.certPem, ca, { isRevoked: (s) => revoked.has(s) }),
    rejectsWith('revoked'),
  );
  await verifyCertificate(server.certPem, ca, { isRevoked: (s) => revoked.has(s) });
});

test('normalizeSerial accepts the usual spellings and rejects non-hex', () => {
  assert.equal(normalizeSerial('0A:1B'), 'a1b');
  assert.equal(normalizeSerial('00FF'), 'ff');
  assert.equal(normalizeSerial('0'), '0');
  assert.equal(normalizeSerial(client.serial.toUpperCase()), client.serial);
  assert.throws(() => normalizeSerial('xyz'), rejectsWith('invalid-argument'));
  assert.throws(() => normalizeSerial(''), rejectsWith('invalid-argument'));
  assert.throws(() => normalizeSerial('ab'.repeat(22)), rejectsWith('invalid-argument'));
});

test('hostile input: readCertificate and verifyCertificate throw nothing but CertError', async () => {
  const der = client.certDer;
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 600 }),
        // Mutations of a real certificate reach deeper into the parser than random bytes do.
        fc
          .array(fc.tuple(fc.nat(der.length - 1), fc.integer({ min: 0, max: 255 })), {
            minLength: 1,
            maxLength: 4,
          })
          .map((edits) => {
            const copy = new Uint8Array(der);
            for (const [i, v] of edits) copy[i] = v;
            return copy;
          }),
        fc.nat(der.length).map((n) => der.subarray(0, n)),
        fc.string({ maxLength: 200 }),
      ),
      async (input) => {
        try {
          readCertificate(input);
        } catch (err) {
          assert.ok(err instanceof CertError, `readCertificate threw ${String(err)}`);
        }
        try {
          await verifyCertificate(input, ca);
        } catch (err) {
          assert.ok(err instanceof CertError, `verifyCertificate threw ${String(err)}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});
