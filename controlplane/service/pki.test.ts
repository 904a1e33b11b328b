import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SqliteStore } from '../store/sqlite.js';
import { CertError, Pki } from './pki.js';
import { pemToDer } from '../testing.js';

test('the CA is created once and loaded afterwards; its key stays in the store', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  const first = await Pki.open(store);
  assert.equal(first.created, true);
  const again = await Pki.open(store);
  assert.equal(again.created, false);
  assert.equal(again.pki.caPem, first.pki.caPem);
  await store.close();
});

test('an imported CA is used and stored', async () => {
  const donor = new SqliteStore({ path: ':memory:' });
  const { pki } = await Pki.open(donor);
  const material = await donor.loadCa();
  const store = new SqliteStore({ path: ':memory:' });
  const imported = await Pki.open(store, { importFrom: material });
  assert.equal(imported.imported, true);
  assert.equal(imported.pki.caPem, pki.caPem);
  assert.deepEqual(await store.loadCa(), material);
  await Promise.all([donor.close(), store.close()]);
});

test('verifyClient: a cached certificate is still refused outside its validity window', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  const { pki } = await Pki.open(store);
  const leaf = await pki.issueClient('alice/default', '', 1);
  const der = pemToDer(leaf.certPem);
  const info = await pki.verifyClient(der);
  assert.equal(info.serial, leaf.serial);
  assert.equal((await pki.verifyClient(der)).serial, leaf.serial, 'cached');
  await assert.rejects(
    pki.verifyClient(der, new Date(leaf.notAfter + 60_000)),
    (e: unknown) => e instanceof CertError && e.reason === 'expired',
  );
  // Server certificates also carry clientAuth (a data plane presents its own when it calls the
  // control plane), so Authorize tells them apart by the kind recorded in the store, not here.
  const other = await Pki.open(new SqliteStore({ path: ':memory:' }));
  const foreign = await other.pki.issueClient('alice/default', '', 1);
  await assert.rejects(
    pki.verifyClient(pemToDer(foreign.certPem)),
    (e: unknown) => e instanceof CertError && e.reason === 'issuer-mismatch',
  );
  await store.close();
});

test("checkIssuedWindow: a recognized certificate is still refused outside its window or the CA's", async () => {
  const store = new SqliteStore({ path: ':memory:' });
  const { pki } = await Pki.open(store);
  const leaf = await pki.issueClient('alice/default', '', 1);
  const record = { ...leaf, subjectCn: 'alice/default' };
  pki.checkIssuedWindow(record, new Date(leaf.notBefore + 1000));
  const reason = (r: typeof record, at: number): string | undefined => {
    try {
      pki.checkIssuedWindow(r, new Date(at));
      return undefined;
    } catch (e) {
      return e instanceof CertError ? e.reason : 'other';
    }
  };
  assert.equal(reason(record, leaf.notAfter + 60_000), 'expired');
  assert.equal(reason(record, leaf.notBefore - 60_000), 'not-yet-valid');
  // A leaf that would outlive its CA is refused once the CA has expired.
  const caEnd = pki.ca.certificate.notAfter.getTime();
  const longLived = { ...record, notAfter: caEnd + 86_400_000 };
  assert.equal(reason(longLived, caEnd - 1000), undefined);
  assert.equal(reason(longLived, caEnd + 1000), 'expired');
  await store.close();
});
