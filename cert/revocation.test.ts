import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CertError,
  type CertErrorReason,
  createCa,
  createCrl,
  decodeDerInteger,
  encodeDerInteger,
  issueClientCertificate,
  readCrl,
  verifyCertificate,
} from './index.js';

const rejectsWith = (reason: CertErrorReason) => (err: unknown) => {
  assert.ok(err instanceof CertError, `expected CertError, got ${String(err)}`);
  assert.equal(err.reason, reason, err.message);
  return true;
};

const ca = await createCa({ commonName: 'CRL Test CA' });

test('a CRL round-trips: entries, reasons, times, number, update window', async () => {
  const a = await issueClientCertificate(ca, 'a');
  const b = await issueClientCertificate(ca, 'b');
  const now = new Date('2026-05-01T10:00:00Z');
  const created = await createCrl(
    ca,
    [
      { serial: a.serial, revokedAt: new Date('2026-04-30T08:00:00Z'), reason: 'keyCompromise' },
      { serial: b.serial.toUpperCase(), revokedAt: new Date('2026-04-29T08:00:00Z') },
      { serial: '00:0f', revokedAt: new Date('2026-04-28T08:00:00Z'), reason: 'unspecified' },
      { serial: a.serial, revokedAt: new Date('2026-04-01T00:00:00Z'), reason: 'superseded' }, // duplicate
    ],
    { now, days: 3, crlNumber: 42n },
  );
  assert.match(created.pem, /^-----BEGIN X509 CRL-----\n[\s\S]+-----END X509 CRL-----\n$/);
  assert.equal(created.crlNumber, 42n);
  assert.equal(created.nextUpdate.getTime() - now.getTime(), 3 * 86_400_000);

  for (const input of [created.pem, created.der]) {
    const list = await readCrl(input, ca);
    assert.equal(list.issuer, 'CN=CRL Test CA');
    assert.equal(list.crlNumber, 42n);
    assert.equal(list.thisUpdate.getTime(), now.getTime());
    assert.equal(list.nextUpdate?.getTime(), created.nextUpdate.getTime());
    assert.deepEqual(list.entries, [
      { serial: a.serial, revokedAt: new Date('2026-04-30T08:00:00Z'), reason: 'keyCompromise' },
      { serial: b.serial, revokedAt: new Date('2026-04-29T08:00:00Z') },
      { serial: 'f', revokedAt: new Date('2026-04-28T08:00:00Z') },
    ]);
    assert.ok(list.isRevoked(a.serial));
    assert.ok(list.isRevoked('0F'));
    assert.ok(!list.isRevoked('10'));
    // The list plugs into verification.
    await assert.rejects(
      verifyCertificate(a.certPem, ca, { isRevoked: list.isRevoked }),
      rejectsWith('revoked'),
    );
  }
});

test('an empty CRL is valid and the default number grows with time', async () => {
  const first = await createCrl(ca, [], { now: new Date('2026-01-01T00:00:00Z') });
  const second = await createCrl(ca, [], { now: new Date('2026-01-01T00:00:01Z') });
  assert.ok(second.crlNumber > first.crlNumber);
  const list = await readCrl(first.pem, ca);
  assert.deepEqual(list.entries, []);
  assert.equal(list.crlNumber, first.crlNumber);
});

test('a CRL from another CA or with a broken signature is refused', async () => {
  const crl = await createCrl(ca, [{ serial: 'abcd', revokedAt: new Date() }]);
  const other = await createCa({ commonName: 'Other CA' });
  await assert.rejects(readCrl(crl.pem, other), rejectsWith('issuer-mismatch'));
  const twin = await createCa({ commonName: 'CRL Test CA' });
  await assert.rejects(readCrl(crl.pem, twin), rejectsWith('bad-signature'));

  const der = new Uint8Array(crl.der);
  const at = Buffer.from(der).indexOf(Buffer.from([0xab, 0xcd]));
  assert.ok(at > 0);
  der[at + 1] = 0xce; // revoke a different serial than the CA signed
  await assert.rejects(readCrl(der, ca), rejectsWith('bad-signature'));
  await assert.rejects(
    readCrl('-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n', ca),
    rejectsWith('malformed'),
  );
});

test('createCrl rejects bad input', async () => {
  await assert.rejects(
    createCrl(ca, [{ serial: 'zz', revokedAt: new Date() }]),
    rejectsWith('invalid-argument'),
  );
  await assert.rejects(
    createCrl(ca, [{ serial: '01', revokedAt: new Date('x') }]),
    rejectsWith('invalid-argument'),
  );
  await assert.rejects(createCrl(ca, [], { crlNumber: -1n }), rejectsWith('invalid-argument'));
  await assert.rejects(createCrl(ca, [], { days: 0 }), rejectsWith('invalid-argument'));
});

test('the CRL number is a DER INTEGER', () => {
  assert.deepEqual(encodeDerInteger(0n), Uint8Array.from([2, 1, 0]));
  assert.deepEqual(encodeDerInteger(127n), Uint8Array.from([2, 1, 0x7f]));
  assert.deepEqual(encodeDerInteger(128n), Uint8Array.from([2, 2, 0, 0x80]));
  assert.deepEqual(encodeDerInteger(0x0102n), Uint8Array.from([2, 2, 1, 2]));
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: (1n << 159n) - 1n }), (n) => {
      assert.equal(decodeDerInteger(encodeDerInteger(n)), n);
    }),
  );
  assert.throws(() => decodeDerInteger(Uint8Array.from([2, 1, 0x80])), rejectsWith('malformed'));
  assert.throws(() => decodeDerInteger(Uint8Array.from([4, 1, 1])), rejectsWith('malformed'));
  assert.throws(() => decodeDerInteger(Uint8Array.from([2, 5, 1])), rejectsWith('malformed'));
});
