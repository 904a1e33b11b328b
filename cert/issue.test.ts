import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from './x509.js';
import {
  ADMIN_OU,
  CertError,
  type CertErrorReason,
  createCa,
  issueAdminCertificate,
  issueCertificate,
  issueClientCertificate,
  issueServerCertificate,
  readCertificate,
  SERVER_OU,
  signCsr,
  validateIdentity,
  validateServerName,
  verifyCertificate,
} from './index.js';

const rejectsWith = (reason: CertErrorReason) => (err: unknown) => {
  assert.ok(err instanceof CertError, `expected CertError, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return true;
};

const ca = await createCa({ commonName: 'Issue Test CA' });
const EC = { name: 'ECDSA', namedCurve: 'P-256' };
const SIG = { name: 'ECDSA', hash: 'SHA-256' };

async function csrFor(name: string, keys?: webcrypto.CryptoKeyPair): Promise<string> {
  const pair = keys ?? (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: pair as unknown as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[0]['keys'],
    signingAlgorithm: SIG,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'evil.example' }]),
    ],
  });
  return csr.toString('pem');
}

test('server certificates: DNS and IP SANs, serverAuth + clientAuth, CA:FALSE, 90 days', async () => {
  const now = new Date(Math.floor(Date.now() / 1000 + 3600) * 1000); // whole seconds, within the CA's validity
  const issued = await issueServerCertificate(
    ca,
    'VPN.Example.com',
    ['10.0.0.1', 'FD00:0::1', '10.0.0.1'],
    { now },
  );
  const info = readCertificate(issued.certPem);
  assert.equal(info.commonName, 'vpn.example.com');
  assert.equal(info.organizationalUnit, SERVER_OU);
  assert.equal(info.role, 'server');
  assert.deepEqual(info.dnsNames, ['vpn.example.com']);
  assert.deepEqual(info.ipAddresses, ['10.0.0.1', 'fd00::1']);
  assert.deepEqual(info.extendedKeyUsages, [
    x509.ExtendedKeyUsage.serverAuth,
    x509.ExtendedKeyUsage.clientAuth,
  ]);
  assert.equal(info.isCa, false);
  assert.equal(info.notAfter.getTime() - now.getTime(), 90 * 86_400_000);
  assert.equal(info.serial, issued.serial);
  assert.equal(info.fingerprint, issued.fingerprint);

  const cert = new x509.X509Certificate(issued.certDer);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  assert.ok(bc !== null && !bc.ca && bc.critical);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  assert.ok(ku !== null && ku.critical && ku.usages === x509.KeyUsageFlags.digitalSignature);
  assert.equal(
    cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId,
    ca.certificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId,
  );
  assert.ok(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  await verifyCertificate(issued.certDer, ca, {
    purpose: 'server',
    serverName: 'vpn.example.com',
    at: now,
  });
  await verifyCertificate(issued.certDer, ca, {
    purpose: 'server',
    serverName: 'fd00::1',
    at: now,
  });
});

test('a server certificate for an IP literal names it as an IP SAN', async () => {
  const info = readCertificate((await issueServerCertificate(ca, '192.0.2.7')).certPem);
  assert.deepEqual(info.dnsNames, []);
  assert.deepEqual(info.ipAddresses, ['192.0.2.7']);
});

test('client and admin certificates: CN identity, clientAuth only, admin marked by OU', async () => {
  const client = readCertificate((await issueClientCertificate(ca, 'alice/laptop')).certPem);
  assert.equal(client.commonName, 'alice/laptop');
  assert.equal(client.organizationalUnit, undefined);
  assert.equal(client.role, 'client');
  assert.deepEqual(client.extendedKeyUsages, [x509.ExtendedKeyUsage.clientAuth]);
  assert.deepEqual([client.dnsNames, client.ipAddresses], [[], []]);

  const admin = readCertificate(
    (await issueAdminCertificate(ca, 'ops/alice', { days: 7 })).certPem,
  );
  assert.equal(admin.commonName, 'ops/alice');
  assert.equal(admin.organizationalUnit, ADMIN_OU);
  assert.equal(admin.role, 'admin');
  assert.deepEqual(admin.extendedKeyUsages, [x509.ExtendedKeyUsage.clientAuth]);
  assert.ok(Math.abs(admin.notAfter.getTime() - Date.now() - 7 * 86_400_000) < 60_000);

  const unicode = readCertificate((await issueClientCertificate(ca, 'zoë/téléphone')).certPem);
  assert.equal(unicode.commonName, 'zoë/téléphone');
});

test('each certificate gets a fresh key and a random positive 16-byte serial', async () => {
  const issued = await Promise.all(
    Array.from({ length: 20 }, (_, i) => issueClientCertificate(ca, `u${i}`)),
  );
  const serials = new Set(issued.map((c) => c.serial));
  const keys = new Set(issued.map((c) => c.keyPem));
  assert.equal(serials.size, 20);
  assert.equal(keys.size, 20);
  for (const c of issued) {
    assert.match(c.serial, /^[4-7][0-9a-f]{31}$/); // top bit clear, no leading zero byte
    assert.match(c.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(new x509.X509Certificate(c.certPem).serialNumber, c.serial);
  }
});

test('a leaf never outlives its CA', async () => {
  const now = new Date('2026-01-01T00:00:00Z');
  const shortCa = await createCa({ days: 10, now });
  const leaf = await issueClientCertificate(shortCa, 'carol', { days: 365, now });
  assert.equal(leaf.notAfter.getTime(), shortCa.notAfter.getTime());
  await assert.rejects(
    issueClientCertificate(shortCa, 'carol', { now: new Date('2026-02-01T00:00:00Z') }),
    rejectsWith('expired'),
  );
});

test('names are validated before anything is signed', async () => {
  for (const bad of [
    '',
    ' alice',
    'alice ',
    'a,b',
    'a=b',
    'a+b',
    'a;b',
    'a"b',
    'a\\b',
    'a\u0000b',
    'a\u200bb',
    'x'.repeat(65),
  ]) {
    assert.throws(() => validateIdentity(bad), rejectsWith('invalid-name'), JSON.stringify(bad));
    await assert.rejects(issueClientCertificate(ca, bad), rejectsWith('invalid-name'));
  }
  assert.equal(validateIdentity('alice/laptop'), 'alice/laptop');
  assert.equal(validateIdentity('x'.repeat(64)), 'x'.repeat(64));
  for (const bad of [
    '',
    'a..b',
    '-a.com',
    'a-.com',
    'a_b.com',
    'exa mple.com',
    'a.123',
    'x'.repeat(64) + '.com',
    'fe80::1%eth0',
  ]) {
    assert.throws(() => validateServerName(bad), rejectsWith('invalid-name'), bad);
  }
  assert.equal(validateServerName('VPN.example.COM.'), 'vpn.example.com');
  assert.equal(validateServerName('localhost'), 'localhost');
  assert.equal(validateServerName('2001:DB8::1'), '2001:db8::1');
  await assert.rejects(
    issueServerCertificate(ca, 'vpn.example.com', ['10.0.0.256']),
    rejectsWith('invalid-name'),
  );
  await assert.rejects(
    issueClientCertificate(ca, 'alice', { days: 0 }),
    rejectsWith('invalid-argument'),
  );
  await assert.rejects(
    issueCertificate(ca, { kind: 'robot' } as unknown as Parameters<typeof issueCertificate>[1]),
    rejectsWith('invalid-argument'),
  );
});

test('signCsr signs the requester key, with subject and SANs from the caller only', async () => {
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const csr = await csrFor('CN=root, OU=masque-admin', keys);
  const issued = await signCsr(ca, csr, { kind: 'client', identity: 'dave/desktop' });
  assert.equal('keyPem' in issued, false);
  const info = await verifyCertificate(issued.certPem, ca, { purpose: 'client' });
  assert.equal(info.commonName, 'dave/desktop');
  assert.equal(info.role, 'client', 'the OU in the CSR must not make an admin');
  assert.deepEqual(info.dnsNames, [], 'the SAN in the CSR must be ignored');
  // The certificate carries the CSR's public key.
  const spki = new Uint8Array(await webcrypto.subtle.exportKey('spki', keys.publicKey));
  assert.deepEqual(
    new Uint8Array(new x509.X509Certificate(issued.certPem).publicKey.rawData),
    spki,
  );

  const der = new x509.Pkcs10CertificateRequest(csr).rawData;
  const server = await signCsr(ca, new Uint8Array(der), {
    kind: 'server',
    serverName: 'dp1.example.net',
  });
  assert.deepEqual(readCertificate(server.certDer).dnsNames, ['dp1.example.net']);
});

test('signCsr rejects a CSR whose signature does not verify, a foreign key type and garbage', async () => {
  const csr = new x509.Pkcs10CertificateRequest(await csrFor('CN=mallory'));
  const der = new Uint8Array(csr.rawData);
  // Flip a bit inside the signature BIT STRING (the last bytes of the DER).
  der[der.length - 5] ^= 0x01;
  await assert.rejects(
    signCsr(ca, der, { kind: 'client', identity: 'mallory' }),
    (err: unknown) => {
      assert.ok(
        err instanceof CertError && (err.reason === 'bad-signature' || err.reason === 'malformed'),
        String(err),
      );
      return true;
    },
  );

  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const rsaKeys = {
    privateKey: await webcrypto.subtle.importKey(
      'pkcs8',
      rsa.privateKey.export({ type: 'pkcs8', format: 'der' }),
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      true,
      ['sign'],
    ),
    publicKey: await webcrypto.subtle.importKey(
      'spki',
      rsa.publicKey.export({ type: 'spki', format: 'der' }),
      { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      true,
      ['verify'],
    ),
  };
  const rsaCsr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=rsa',
    keys: rsaKeys as unknown as Parameters<
      typeof x509.Pkcs10CertificateRequestGenerator.create
    >[0]['keys'],
    signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  });
  await assert.rejects(
    signCsr(ca, rsaCsr.toString('pem'), { kind: 'client', identity: 'rsa' }),
    rejectsWith('unsupported-key'),
  );
  await assert.rejects(
    signCsr(ca, 'garbage', { kind: 'client', identity: 'x' }),
    rejectsWith('malformed'),
  );
  await assert.rejects(
    signCsr(ca, await csrFor('CN=x'), { kind: 'client', identity: 'a,b' }),
    rejectsWith('invalid-name'),
  );
});
