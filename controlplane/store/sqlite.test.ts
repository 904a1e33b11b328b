import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LeaseConflictError } from '../pool/lease-store.js';
import { SqliteStore } from './sqlite.js';
import { MIGRATIONS } from './migrations.js';
import {
  EMPTY_STATS,
  StoreConflictError,
  StoreNotFoundError,
  type CertificateRecord,
} from './store.js';

function cert(serial: string, deviceId: number | null, userId: number | null): CertificateRecord {
  return {
    serial,
    kind: 'client',
    subjectCn: 'x',
    userId,
    deviceId,
    notBefore: 1,
    notAfter: 2,
    fingerprint: 'f',
    revokedAt: null,
    revocationReason: '',
  };
}

test('migrations run once and the schema version persists', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-store-'));
  try {
    const a = new SqliteStore({ path: join(dir, 'db.sqlite') });
    assert.equal(a.schemaVersion, MIGRATIONS.length);
    void a.close();
    const b = new SqliteStore({ path: join(dir, 'db.sqlite') });
    assert.equal(b.schemaVersion, MIGRATIONS.length);
    void b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('users: create with groups and device, duplicates, missing group, paging', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  await s.createGroup('eng', '', 1);
  const { user, device } = await s.createUser(
    { name: 'alice', displayName: 'A', groups: ['eng'] },
    'laptop',
    5,
  );
  assert.deepEqual(user.groups, ['eng']);
  assert.equal(device.userName, 'alice');
  assert.equal(device.name, 'laptop');
  await assert.rejects(
    s.createUser({ name: 'alice', displayName: '', groups: [] }, 'd', 6),
    (e: unknown) => e instanceof StoreConflictError && e.entity === 'user',
  );
  await assert.rejects(
    s.createUser({ name: 'bob', displayName: '', groups: ['nope'] }, 'd', 6),
    (e: unknown) => e instanceof StoreNotFoundError && e.entity === 'group',
  );
  // The failed create left nothing behind.
  assert.equal(await s.getUser('bob'), undefined);
  for (const n of ['c1', 'c2', 'c3']) {
    await s.createUser({ name: n, displayName: '', groups: [] }, 'd', 7);
  }
  const page1 = await s.listUsers({
    after: '',
    limit: 2,
    nameContains: '',
    group: '',
    includeDisabled: true,
  });
  assert.deepEqual(
    page1.users.map((u) => u.name),
    ['alice', 'c1'],
  );
  assert.equal(page1.total, 4);
  const page2 = await s.listUsers({
    after: 'c1',
    limit: 2,
    nameContains: 'c',
    group: '',
    includeDisabled: true,
  });
  assert.deepEqual(
    page2.users.map((u) => u.name),
    ['c2', 'c3'],
  );
  const eng = await s.listUsers({
    after: '',
    limit: 10,
    nameContains: '',
    group: 'eng',
    includeDisabled: true,
  });
  assert.deepEqual(
    eng.users.map((u) => u.name),
    ['alice'],
  );
  await s.setUserDisabled('c1', true);
  const enabled = await s.listUsers({
    after: '',
    limit: 10,
    nameContains: '',
    group: '',
    includeDisabled: false,
  });
  assert.equal(enabled.total, 3);
  await s.close();
});

test('removing a user revokes certificates, releases leases, keeps certificate rows', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const { user, device } = await s.createUser(
    { name: 'alice', displayName: '', groups: [] },
    'd',
    1,
  );
  s.leases.insert(String(device.id), 4, '10.77.0.2');
  await s.recordCertificate(cert('aa', device.id, user.id));
  await s.startSession({
    id: 's1',
    deviceId: device.id,
    dataplaneId: 'dp',
    remoteAddress: '',
    addresses: ['10.77.0.2'],
    startedAt: 1,
    updatedAt: 1,
    endedAt: null,
    stats: EMPTY_STATS,
  });
  const rev = await s.removeUser('alice', 9, 'user removed');
  assert.deepEqual(rev, { deviceIds: [device.id], serials: ['aa'] });
  assert.equal(s.leases.count(4), 0);
  assert.equal(s.leases.isTaken('10.77.0.2'), false);
  const c = await s.getCertificate('aa');
  assert.equal(c?.revokedAt, 9);
  assert.equal(c?.deviceId, null);
  assert.equal((await s.listRevoked()).length, 1);
  assert.equal(await s.getSession('s1'), undefined);
  assert.equal(await s.removeUser('alice', 9, 'x'), undefined);
  await s.close();
});

test('leases: unique address and (device, family) map to LeaseConflictError', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const a = (await s.createUser({ name: 'a', displayName: '', groups: [] }, 'd', 1)).device;
  const b = (await s.createUser({ name: 'b', displayName: '', groups: [] }, 'd', 1)).device;
  s.leases.insert(String(a.id), 4, '10.77.0.2');
  assert.throws(
    () => s.leases.insert(String(b.id), 4, '10.77.0.2'),
    (e: unknown) => e instanceof LeaseConflictError && e.conflict === 'address',
  );
  assert.throws(
    () => s.leases.insert(String(a.id), 4, '10.77.0.3'),
    (e: unknown) => e instanceof LeaseConflictError && e.conflict === 'device',
  );
  s.leases.insert(String(a.id), 6, 'fd77::2');
  assert.deepEqual(await s.leases.ofDevice(a.id), { ipv4: '10.77.0.2', ipv6: 'fd77::2' });
  assert.equal(s.leases.find(String(a.id), 6), 'fd77::2');
  const listed = await s.leases.list({ after: 0, limit: 10 });
  assert.deepEqual(
    listed.map((l) => [l.userName, l.address]),
    [
      ['a', '10.77.0.2'],
      ['a', 'fd77::2'],
    ],
  );
  s.leases.saveCursor(4, '10.77.0.9');
  s.leases.saveCursor(4, '10.77.0.10');
  assert.equal(s.leases.loadCursor(4), '10.77.0.10');
  const rev = await s.revokeDevice(a.id, 3, 'lost');
  assert.deepEqual(rev.deviceIds, [a.id]);
  assert.equal(s.leases.count(4), 0);
  assert.equal((await s.getDeviceById(a.id))?.revoked, true);
  await s.close();
});

test('certificates: replacing revokes the previous one of the device in one step', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const { user, device } = await s.createUser({ name: 'a', displayName: '', groups: [] }, 'd', 1);
  assert.deepEqual(await s.recordCertificate(cert('01', device.id, user.id)), []);
  const revoked = await s.recordCertificate(
    { ...cert('02', device.id, user.id), notBefore: 5 },
    { at: 5, reason: 're-export' },
  );
  assert.deepEqual(revoked, ['01']);
  assert.equal((await s.currentCertificate(device.id))?.serial, '02');
  await assert.rejects(
    s.recordCertificate(cert('02', null, null)),
    (e: unknown) => e instanceof StoreConflictError && e.entity === 'certificate',
  );
  await s.close();
});

test('certificates are found by the SHA-256 fingerprint of their DER', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const { user, device } = await s.createUser({ name: 'a', displayName: '', groups: [] }, 'd', 1);
  await s.recordCertificate({ ...cert('0a', device.id, user.id), fingerprint: 'ab'.repeat(32) });
  await s.recordCertificate({ ...cert('0b', null, null), fingerprint: 'cd'.repeat(32) });
  assert.equal((await s.getCertificateByFingerprint('ab'.repeat(32)))?.serial, '0a');
  assert.equal((await s.getCertificateByFingerprint('cd'.repeat(32)))?.serial, '0b');
  assert.equal(await s.getCertificateByFingerprint('ef'.repeat(32)), undefined);
  await s.close();
});

test('groups, members and rules; rulesForUser includes "*" rules', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const { user } = await s.createUser({ name: 'a', displayName: '', groups: [] }, 'd', 1);
  await s.createGroup('ops', 'operators', 1);
  await assert.rejects(s.createGroup('ops', '', 1), StoreConflictError);
  const g = await s.addMember('ops', 'a');
  assert.deepEqual(g.members, ['a']);
  await assert.rejects(s.addMember('ops', 'a'), StoreConflictError);
  await assert.rejects(s.addMember('ops', 'zz'), StoreNotFoundError);
  const base = { protocol: 0, portFrom: 0, portTo: 0, description: '' };
  await s.addRule({ ...base, group: 'ops', action: 'allow', prefix: '10.0.0.0/8', priority: 20 });
  await s.addRule({ ...base, group: '*', action: 'deny', prefix: '0.0.0.0/0', priority: 10 });
  await assert.rejects(
    s.addRule({ ...base, group: 'nope', action: 'deny', prefix: '::/0', priority: 1 }),
    StoreNotFoundError,
  );
  assert.deepEqual(
    (await s.rulesForUser(user.id)).map((r) => [r.group, r.priority]),
    [
      ['*', 10],
      ['ops', 20],
    ],
  );
  await s.removeMember('ops', 'a');
  assert.equal((await s.rulesForUser(user.id)).length, 1);
  assert.equal((await s.listGroups())[0]?.members.length, 0);
  assert.equal(await s.deleteGroup('ops'), true);
  assert.equal((await s.listRules()).length, 1);
  await s.close();
});

test('join tokens are single use and expire; CA is stored once', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  await s.createJoinToken('h', 100);
  assert.equal(await s.consumeJoinToken('h', 50), true);
  assert.equal(await s.consumeJoinToken('h', 51), false);
  await s.createJoinToken('old', 10);
  assert.equal(await s.consumeJoinToken('old', 11), false);
  assert.equal(await s.saveCa({ certPem: 'c', keyPem: 'k' }, 1), true);
  assert.equal(await s.saveCa({ certPem: 'c2', keyPem: 'k2' }, 2), false);
  assert.deepEqual(await s.loadCa(), { certPem: 'c', keyPem: 'k' });
  await s.close();
});

test('sessions: one live session per device, stats, end, previous registrations', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const { device } = await s.createUser({ name: 'a', displayName: '', groups: [] }, 'd', 1);
  await s.upsertDataPlane({
    id: 'dp-old',
    name: 'dp',
    version: '',
    listen: '',
    workers: 1,
    registeredAt: 1,
    lastSeenAt: 1,
  });
  const base = {
    deviceId: device.id,
    dataplaneId: 'dp-old',
    remoteAddress: 'r',
    addresses: ['10.77.0.2', 'fd77::2'],
    updatedAt: 1,
    endedAt: null,
    stats: EMPTY_STATS,
  };
  assert.deepEqual(await s.startSession({ ...base, id: 's1', startedAt: 10 }), []);
  const replaced = await s.startSession({ ...base, id: 's2', startedAt: 20 });
  assert.deepEqual(
    replaced.map((r) => [r.id, r.endedAt]),
    [['s1', 20]],
  );
  assert.equal((await s.getDeviceById(device.id))?.lastSeenAt, 20);
  assert.equal(await s.updateSessionStats('s1', { ...EMPTY_STATS, bytesIn: 5 }, 21), false);
  assert.equal(await s.updateSessionStats('s2', { ...EMPTY_STATS, bytesIn: 5 }, 21), true);
  const live = await s.listSessions({ userName: 'a' });
  assert.deepEqual(
    live.map((x) => [x.id, x.stats.bytesIn, x.addresses.length]),
    [['s2', 5, 2]],
  );
  await s.upsertDataPlane({
    id: 'dp-new',
    name: 'dp',
    version: '',
    listen: '',
    workers: 1,
    registeredAt: 30,
    lastSeenAt: 30,
  });
  assert.equal(await s.endSessionsOfPrevious('dp', 'dp-new', 31), 1);
  assert.deepEqual(await s.listSessions({}), []);
  assert.equal(await s.endSession('s2', 32), false);
  await s.close();
});

test('session reports: one transaction; final stats of an ended session kept; unknown ids named', async () => {
  const s = new SqliteStore({ path: ':memory:' });
  const base = {
    dataplaneId: 'dp',
    remoteAddress: 'r',
    addresses: [],
    startedAt: 1,
    updatedAt: 1,
    endedAt: null,
    stats: EMPTY_STATS,
  };
  for (const name of ['a', 'b']) {
    const { device } = await s.createUser({ name, displayName: '', groups: [] }, 'd', 1);
    await s.startSession({ ...base, id: `s-${name}`, deviceId: device.id });
  }
  const unknown = await s.applySessionReports(
    [
      { id: 's-a', stats: { ...EMPTY_STATS, bytesIn: 7 }, ended: false },
      { id: 's-b', stats: { ...EMPTY_STATS, bytesOut: 9 }, ended: true },
      { id: 'ghost', stats: EMPTY_STATS, ended: false },
      { id: 'ghost-ended', ended: true },
    ],
    5,
  );
  assert.deepEqual(unknown, ['ghost']);
  assert.equal((await s.getSession('s-a'))?.stats.bytesIn, 7);
  const ended = await s.getSession('s-b');
  assert.equal(ended?.endedAt, 5);
  assert.equal(ended?.stats.bytesOut, 9, 'the last figures of an ended session are kept');
  // A session reported live after it ended is unknown to the store: the data plane closes it.
  assert.deepEqual(
    await s.applySessionReports([{ id: 's-b', stats: EMPTY_STATS, ended: false }], 6),
    ['s-b'],
  );
  await s.close();
});
