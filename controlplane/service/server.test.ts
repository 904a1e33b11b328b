// gRPC integration tests against the real control plane (in-process, temp dir): every service over
// the unix socket, role checks over TCP+mTLS, the data-plane flows (Authorize, Watch, stats).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { parse as parseToml } from 'smol-toml';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  credentials,
  loadPackageDefinition,
  status,
  type ClientDuplexStream,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  HealthClient,
  HealthCheckResponse_ServingStatus,
} from '../../proto/gen/grpc/health/v1/health.js';
import { DenialReason, type AuthorizeResponse } from '../../proto/gen/masque/v1/dataplane.js';
import { PolicyAction } from '../../proto/gen/masque/v1/common.js';
import { CertificateKind } from '../../proto/gen/masque/v1/certificates.js';
import { codeOf, makeCsr, pemToDer, startHarness, Watcher, type Harness } from '../testing.js';
import { bundleFromUri } from './bundle.js';
import { createCa, issueClientCertificate } from '../../cert/index.js';
import type { ControlClient } from '../client.js';

let h: Harness;
let c: ControlClient;
let dataplaneId: string;

before(async () => {
  h = await startHarness();
  c = h.local;
  dataplaneId = (await c.dataplane.register({ name: 'dp1', listen: '0.0.0.0:4433', workers: 2 }))
    .dataplaneId;
});
after(async () => {
  await h.close();
});

function certOf(toml: string): { certPem: string; keyPem?: string; caPem: string } {
  const doc = parseToml(toml) as { tls: { cert: string; key?: string; ca: string } };
  return { certPem: doc.tls.cert, keyPem: doc.tls.key, caPem: doc.tls.ca };
}

async function authorize(certPem: string): Promise<AuthorizeResponse> {
  return c.dataplane.authorize({
    dataplaneId,
    clientCertDer: pemToDer(certPem),
    remoteAddress: '192.0.2.1:5000',
  });
}

describe('health and reflection', () => {
  test('grpc.health.v1 reports SERVING for the server and each service', async () => {
    const hc = new HealthClient(`unix:${h.run.socketPath}`, credentials.createInsecure());
    try {
      for (const service of ['', 'masque.v1.Users', 'masque.v1.DataPlane']) {
        const res = await new Promise<{ status: number }>((ok, fail) =>
          hc.check({ service }, (err, r) => (err ? fail(err) : ok(r))),
        );
        assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
      }
      const unknown = await new Promise<number>((ok) =>
        hc.check({ service: 'nope' }, (err) => ok(err?.code ?? 0)),
      );
      assert.equal(unknown, status.NOT_FOUND);
    } finally {
      hc.close();
    }
  });
});

describe('reflection', () => {
  test('server reflection lists the masque.v1 services', async () => {
    const require = createRequire(import.meta.url);
    const protoPath = join(
      dirname(require.resolve('@grpc/reflection')),
      '../proto/grpc/reflection/v1/reflection.proto',
    );
    const pkg = loadPackageDefinition(loadSync(protoPath)) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(
      `unix:${h.run.socketPath}`,
      credentials.createInsecure(),
    );
    try {
      const names = await new Promise<string[]>((resolve, reject) => {
        const call = (
          client as unknown as Record<string, () => ClientDuplexStream<object, ReflectionReply>>
        )['ServerReflectionInfo']();
        call.on('data', (r: ReflectionReply) => {
          resolve(r.listServicesResponse?.service.map((x) => x.name) ?? []);
          call.end();
        });
        call.on('error', reject);
        call.write({ listServices: '' });
      });
      for (const svc of ['masque.v1.Users', 'masque.v1.DataPlane', 'grpc.health.v1.Health']) {
        assert.ok(names.includes(svc), `${svc} in ${names.join(', ')}`);
      }
    } finally {
      client.close();
    }
  });
});

interface ReflectionReply {
  listServicesResponse?: { service: { name: string }[] };
}

describe('users', () => {
  test('add writes a bundle whose certificate verifies against the CA, with pool addresses', async () => {
    const res = await c.users.addUser({ name: 'alice', bundle: true });
    assert.equal(res.user?.name, 'alice');
    assert.equal(res.device?.name, 'default');
    assert.match(res.device?.ipv4 ?? '', /^10\.77\.\d+\.\d+$/);
    assert.match(res.device?.ipv6 ?? '', /^fd77::/);
    assert.notEqual(res.device?.ipv4, '10.77.0.1', 'the server address is never handed out');
    const b = res.bundle;
    assert.ok(b);
    const { certPem, keyPem, caPem } = certOf(b.toml);
    assert.ok(keyPem?.includes('BEGIN PRIVATE KEY'));
    const ca = new X509Certificate(caPem);
    const leaf = new X509Certificate(certPem);
    assert.equal(leaf.verify(ca.publicKey), true);
    assert.equal(leaf.serialNumber.toLowerCase(), b.certSerial);
    assert.match(leaf.subject, /CN=alice\/default/);
    assert.equal(bundleFromUri(b.uri), b.toml);
    const doc = parseToml(b.toml) as { server: { endpoints: string[]; server_name: string } };
    assert.deepEqual(doc.server.endpoints, ['192.0.2.10:4433']);
    assert.equal(doc.server.server_name, 'vpn.test');
  });

  test('duplicate, invalid and unknown names get clear errors', async () => {
    const dup = await codeOf(c.users.addUser({ name: 'alice' }));
    assert.equal(dup.code, status.ALREADY_EXISTS);
    assert.match(dup.details, /user "alice" already exists/);
    for (const name of ['', 'a b', '-x', 'x'.repeat(65), 'bob/evil']) {
      assert.equal((await codeOf(c.users.addUser({ name }))).code, status.INVALID_ARGUMENT, name);
    }
    const g = await codeOf(c.users.addUser({ name: 'carol', groups: ['nosuch'] }));
    assert.equal(g.code, status.NOT_FOUND);
    assert.match(g.details, /no group "nosuch"/);
    assert.equal((await codeOf(c.users.getUser({ name: 'carol' }))).code, status.NOT_FOUND);
    assert.equal((await codeOf(c.users.removeUser({ name: 'nobody' }))).code, status.NOT_FOUND);
    assert.equal((await codeOf(c.users.disableUser({ name: 'nobody' }))).code, status.NOT_FOUND);
    assert.equal((await codeOf(c.users.enableUser({ name: 'nobody' }))).code, status.NOT_FOUND);
  });

  test('list pages through users with a token and filters', async () => {
    await c.groups.createGroup({ name: 'pagers' });
    for (const n of ['p1', 'p2', 'p3']) await c.users.addUser({ name: n, groups: ['pagers'] });
    const seen: string[] = [];
    let pageToken = '';
    do {
      const page = await c.users.listUsers({ pageSize: 2, pageToken, group: 'pagers' });
      assert.equal(page.total, 3);
      seen.push(...page.users.map((u) => u.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    assert.deepEqual(seen, ['p1', 'p2', 'p3']);
    const filtered = await c.users.listUsers({ nameContains: 'p2' });
    assert.deepEqual(
      filtered.users.map((u) => u.name),
      ['p2'],
    );
    assert.equal(
      (await codeOf(c.users.listUsers({ pageToken: '!!' }))).code,
      status.INVALID_ARGUMENT,
    );
  });

  test('disable denies Authorize and kicks; enable allows again; remove frees addresses', async () => {
    const res = await c.users.addUser({ name: 'dave', bundle: true });
    const { certPem } = certOf(res.bundle?.toml ?? '');
    const ok = await authorize(certPem);
    assert.ok(ok.allowed);
    const w = new Watcher(h.run.socketPath, dataplaneId);
    try {
      await w.next((e) => e.hello);
      await c.users.disableUser({ name: 'dave' });
      const kick = await w.next(
        (e) => e.kick?.sessionIds.includes(ok.allowed?.sessionId ?? '') ?? false,
      );
      assert.match(kick.kick?.reason ?? '', /disabled/);
      const denied = await authorize(certPem);
      assert.equal(denied.denied?.reason, DenialReason.DENIAL_REASON_USER_DISABLED);
      await c.users.enableUser({ name: 'dave' });
      const again = await authorize(certPem);
      assert.equal(again.allowed?.ipv4, res.device?.ipv4, 'sticky address');
      const leased = Number((await c.pool.showPools({})).pools[0].allocated);
      await c.users.removeUser({ name: 'dave' });
      const revoked = await w.next(
        (e) => e.revoked?.sessionIds.includes(again.allowed?.sessionId ?? '') ?? false,
      );
      assert.ok(revoked.revoked?.serials.includes(res.bundle?.certSerial ?? ''));
      assert.equal(Number((await c.pool.showPools({})).pools[0].allocated), leased - 1);
      const gone = await authorize(certPem);
      assert.equal(gone.denied?.reason, DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED);
    } finally {
      w.close();
    }
  });

  test('200 concurrent user adds all succeed with unique addresses', async () => {
    const names = Array.from({ length: 200 }, (_, i) => `bulk${String(i).padStart(3, '0')}`);
    const results = await Promise.all(names.map((name) => c.users.addUser({ name })));
    const v4 = new Set(results.map((r) => r.device?.ipv4));
    const v6 = new Set(results.map((r) => r.device?.ipv6));
    assert.equal(v4.size, 200);
    assert.equal(v6.size, 200);
    assert.ok(!v4.has('') && !v4.has(undefined));
    const page = await c.users.listUsers({ nameContains: 'bulk', pageSize: 1000 });
    assert.equal(page.total, 200);
  });
});

describe('devices and bundles', () => {
  test('add, list, export with several devices, re-export revokes the previous certificate', async () => {
    await c.users.addUser({ name: 'erin' });
    const laptop = await c.devices.addDevice({ user: 'erin', name: 'laptop', bundle: true });
    assert.equal(laptop.device?.name, 'laptop');
    assert.equal(
      (await codeOf(c.devices.addDevice({ user: 'erin', name: 'laptop' }))).code,
      status.ALREADY_EXISTS,
    );
    assert.equal(
      (await codeOf(c.devices.addDevice({ user: 'nobody', name: 'x' }))).code,
      status.NOT_FOUND,
    );
    assert.equal(
      (await codeOf(c.devices.addDevice({ user: 'erin', name: 'bad name' }))).code,
      status.INVALID_ARGUMENT,
    );
    const list = await c.devices.listDevices({ user: 'erin' });
    assert.deepEqual(
      list.devices.map((d) => d.name),
      ['default', 'laptop'],
    );
    const ambiguous = await codeOf(c.bundles.exportBundle({ user: 'erin' }));
    assert.equal(ambiguous.code, status.FAILED_PRECONDITION);
    assert.match(ambiguous.details, /2 devices/);
    const first = certOf(laptop.bundle?.toml ?? '');
    assert.ok((await authorize(first.certPem)).allowed);
    const again = await c.bundles.exportBundle({ user: 'erin', device: 'laptop' });
    assert.equal(again.revokedSerial, laptop.bundle?.certSerial);
    const old = await authorize(first.certPem);
    assert.equal(old.denied?.reason, DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED);
    assert.ok((await authorize(certOf(again.toml).certPem)).allowed);
    assert.equal(
      (await codeOf(c.bundles.exportBundle({ user: 'erin', device: 'phone' }))).code,
      status.NOT_FOUND,
    );
  });

  test('export from a CSR: the bundle has no key and the certificate carries the CSR key', async () => {
    await c.users.addUser({ name: 'frank' });
    const { csrPem } = await makeCsr();
    const b = await c.bundles.exportBundle({ user: 'frank', csrPem });
    const t = certOf(b.toml);
    assert.equal(t.keyPem, undefined);
    assert.ok(new X509Certificate(t.certPem).verify(new X509Certificate(t.caPem).publicKey));
    const bad = await codeOf(c.bundles.exportBundle({ user: 'frank', csrPem: 'not a csr' }));
    assert.equal(bad.code, status.INVALID_ARGUMENT);
  });

  test('revoke a device: certificates revoked, addresses freed, Authorize denied', async () => {
    const res = await c.users.addUser({ name: 'gina', bundle: true });
    const d = await c.devices.revokeDevice({ user: 'gina', device: 'default', reason: 'lost' });
    assert.equal(d.revoked, true);
    assert.equal(d.ipv4, '');
    const denied = await authorize(certOf(res.bundle?.toml ?? '').certPem);
    assert.equal(denied.denied?.reason, DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED);
    assert.equal(
      (await codeOf(c.devices.revokeDevice({ user: 'gina', device: 'default' }))).code,
      status.FAILED_PRECONDITION,
    );
    assert.equal(
      (await codeOf(c.devices.revokeDevice({ user: 'gina', device: 'nope' }))).code,
      status.NOT_FOUND,
    );
    assert.equal(
      (await codeOf(c.bundles.exportBundle({ user: 'gina', device: 'default' }))).code,
      status.FAILED_PRECONDITION,
    );
    const all = await c.devices.listDevices({ user: 'gina', includeRevoked: true });
    assert.equal(all.devices.length, 1);
    assert.equal((await c.devices.listDevices({ user: 'gina' })).devices.length, 0);
  });
});

describe('certificates', () => {
  test('CA, list, revoke by serial (pushed to Watch), CRL', async () => {
    const ca = await c.certificates.getCa({});
    assert.ok(ca.caPem.includes('BEGIN CERTIFICATE'));
    assert.equal(ca.caPem.includes('PRIVATE'), false);
    const res = await c.users.addUser({ name: 'hank', bundle: true });
    const serial = res.bundle?.certSerial ?? '';
    const list = await c.certificates.listCertificates({ user: 'hank' });
    assert.deepEqual(
      list.certificates.map((x) => [x.serial, x.kind]),
      [[serial, CertificateKind.CERTIFICATE_KIND_CLIENT]],
    );
    const session = await authorize(certOf(res.bundle?.toml ?? '').certPem);
    const w = new Watcher(h.run.socketPath, dataplaneId);
    try {
      await w.next((e) => e.hello);
      const started = Date.now();
      // Upper case with colons, as people paste serials.
      const pasted = (serial.toUpperCase().match(/../g) ?? []).join(':');
      const x = await c.certificates.revokeCertificate({ serial: pasted, reason: 'test' });
      assert.equal(x.revoked, true);
      const ev = await w.next((e) => e.revoked?.serials.includes(serial) ?? false);
      assert.ok(ev.revoked?.sessionIds.includes(session.allowed?.sessionId ?? ''));
      assert.ok(Date.now() - started < 1_000, 'revocation reaches the data plane within a second');
    } finally {
      w.close();
    }
    assert.equal(
      (await codeOf(c.certificates.revokeCertificate({ serial: 'abcdef' }))).code,
      status.NOT_FOUND,
    );
    assert.equal(
      (await codeOf(c.certificates.revokeCertificate({ serial: 'xyz' }))).code,
      status.INVALID_ARGUMENT,
    );
    const crl = await c.certificates.getCrl({});
    assert.match(crl.crlPem, /BEGIN X509 CRL/);
    assert.ok(crl.revokedSerials.includes(serial));
  });
});

describe('groups and policies', () => {
  test('groups: create, duplicate, members, delete', async () => {
    await c.groups.createGroup({ name: 'ops', description: 'operators' });
    assert.equal((await codeOf(c.groups.createGroup({ name: 'ops' }))).code, status.ALREADY_EXISTS);
    assert.equal((await codeOf(c.groups.createGroup({ name: '*' }))).code, status.INVALID_ARGUMENT);
    await c.users.addUser({ name: 'ivan' });
    const g = await c.groups.addMember({ group: 'ops', user: 'ivan' });
    assert.deepEqual(g.members, ['ivan']);
    assert.equal(
      (await codeOf(c.groups.addMember({ group: 'ops', user: 'ivan' }))).code,
      status.ALREADY_EXISTS,
    );
    assert.equal(
      (await codeOf(c.groups.addMember({ group: 'ops', user: 'nobody' }))).code,
      status.NOT_FOUND,
    );
    assert.equal(
      (await codeOf(c.groups.addMember({ group: 'nope', user: 'ivan' }))).code,
      status.NOT_FOUND,
    );
    assert.deepEqual((await c.users.getUser({ name: 'ivan' })).groups, ['ops']);
    assert.ok((await c.groups.listGroups({})).groups.some((x) => x.name === 'ops'));
    assert.equal((await c.groups.getGroup({ name: 'ops' })).description, 'operators');
    await c.groups.removeMember({ group: 'ops', user: 'ivan' });
    assert.equal(
      (await codeOf(c.groups.removeMember({ group: 'ops', user: 'ivan' }))).code,
      status.NOT_FOUND,
    );
    await c.groups.deleteGroup({ name: 'ops' });
    assert.equal((await codeOf(c.groups.getGroup({ name: 'ops' }))).code, status.NOT_FOUND);
    assert.equal((await codeOf(c.groups.deleteGroup({ name: 'ops' }))).code, status.NOT_FOUND);
  });

  test('rules: validation, evaluation order, default action, live push to sessions', async () => {
    await c.groups.createGroup({ name: 'eng' });
    const res = await c.users.addUser({ name: 'judy', groups: ['eng'], bundle: true });
    const allow = PolicyAction.POLICY_ACTION_ALLOW;
    const deny = PolicyAction.POLICY_ACTION_DENY;
    const bad = [
      { group: 'eng', action: allow, prefix: '10.0.0.1/8' },
      { group: 'eng', action: allow, prefix: '300.0.0.0/8' },
      { group: 'eng', action: allow, prefix: '' },
      { group: 'eng', action: PolicyAction.POLICY_ACTION_UNSPECIFIED, prefix: '10.0.0.0/8' },
      { group: 'eng', action: allow, prefix: '10.0.0.0/8', portFrom: 80 },
      { group: 'eng', action: allow, prefix: '10.0.0.0/8', protocol: 6, portFrom: 90, portTo: 80 },
      { group: 'eng', action: allow, prefix: '10.0.0.0/8', protocol: 300 },
    ];
    for (const r of bad) {
      assert.equal(
        (await codeOf(c.policies.addRule(r))).code,
        status.INVALID_ARGUMENT,
        JSON.stringify(r),
      );
    }
    assert.equal(
      (await codeOf(c.policies.addRule({ group: 'nope', action: allow, prefix: '10.0.0.0/8' })))
        .code,
      status.NOT_FOUND,
    );
    const session = await authorize(certOf(res.bundle?.toml ?? '').certPem);
    assert.ok(session.allowed);
    const w = new Watcher(h.run.socketPath, dataplaneId);
    try {
      await w.next((e) => e.hello);
      const r1 = await c.policies.addRule({
        group: 'eng',
        action: allow,
        prefix: '10.1.0.0/16',
        protocol: 6,
        portFrom: 443,
        priority: 10,
      });
      const r2 = await c.policies.addRule({
        group: 'eng',
        action: deny,
        prefix: '10.1.2.0/24',
        priority: 10,
      });
      const pushed = await w.next(
        (e) =>
          e.policy?.sessionId === session.allowed?.sessionId &&
          (e.policy?.rules.some((r) => r.id === r2.id) ?? false),
      );
      // Equal priority: deny first.
      assert.deepEqual(
        pushed.policy?.rules.slice(0, 2).map((r) => r.id),
        [r2.id, r1.id],
      );
      assert.ok(pushed.policy?.routes.includes('10.1.0.0/16'));
      const eff = await c.policies.getEffectivePolicy({ user: 'judy' });
      assert.equal(eff.defaultAction, deny);
      assert.deepEqual(eff.routes, ['10.1.0.0/16', '10.77.0.1/32', 'fd77::1/128']);
      await c.policies.setDefaultAction({ action: allow });
      const p2 = await w.next(
        (e) =>
          e.policy?.sessionId === session.allowed?.sessionId && e.policy?.defaultAction === allow,
      );
      assert.ok(p2.policy?.routes.includes('0.0.0.0/0') && p2.policy.routes.includes('::/0'));
      assert.equal((await c.policies.getDefaultAction({})).action, allow);
      await c.policies.setDefaultAction({ action: deny });
      const listed = await c.policies.listRules({ group: 'eng' });
      assert.deepEqual(
        listed.rules.map((r) => r.id),
        [r2.id, r1.id],
      );
      await c.policies.removeRule({ id: r1.id });
      assert.equal((await codeOf(c.policies.removeRule({ id: r1.id }))).code, status.NOT_FOUND);
      assert.equal((await codeOf(c.policies.listRules({ group: 'nope' }))).code, status.NOT_FOUND);
      assert.equal(
        (await codeOf(c.policies.getEffectivePolicy({ user: 'nobody' }))).code,
        status.NOT_FOUND,
      );
    } finally {
      w.close();
    }
  });
});

describe('data plane', () => {
  test('GetDataPlaneConfig: server certificate for the server name and endpoint IP, pools, settings', async () => {
    const cfg = await c.dataplane.getDataPlaneConfig({ name: 'dp1' });
    const cert = new X509Certificate(cfg.serverCertPem);
    assert.ok(cert.verify(new X509Certificate(cfg.caPem).publicKey));
    assert.ok(cert.checkHost('vpn.test'));
    assert.ok(cert.checkIP('192.0.2.10'));
    assert.ok(cfg.serverKeyPem.includes('PRIVATE KEY'));
    assert.deepEqual(
      cfg.pools.map((p) => [p.cidr, p.serverAddress]),
      [
        ['10.77.0.0/16', '10.77.0.1'],
        ['fd77::/64', 'fd77::1'],
      ],
    );
    assert.equal(cfg.mtu, 1280);
    assert.ok(cfg.renewAtMs > Date.now() && cfg.renewAtMs < cfg.certNotAfterMs);
    const { csrPem } = await makeCsr();
    const fromCsr = await c.dataplane.getDataPlaneConfig({ name: 'dp1', csrPem });
    assert.equal(fromCsr.serverKeyPem, '');
  });

  test('Authorize: precise denials for garbage, foreign and wrong-kind certificates', async () => {
    const garbage = await c.dataplane.authorize({
      dataplaneId,
      clientCertDer: Buffer.from([1, 2, 3]),
    });
    assert.equal(garbage.denied?.reason, DenialReason.DENIAL_REASON_BAD_CERTIFICATE);
    const empty = await c.dataplane.authorize({ dataplaneId });
    assert.equal(empty.denied?.reason, DenialReason.DENIAL_REASON_BAD_CERTIFICATE);
    const otherCa = await createCa({ commonName: 'other' });
    const foreign = await issueClientCertificate(otherCa, 'alice/default');
    const f = await authorize(foreign.certPem);
    assert.equal(f.denied?.reason, DenialReason.DENIAL_REASON_UNTRUSTED_ISSUER);
    const server = await c.dataplane.getDataPlaneConfig({ name: 'dp1' });
    const s = await authorize(server.serverCertPem);
    assert.equal(s.denied?.reason, DenialReason.DENIAL_REASON_WRONG_CERTIFICATE_KIND);
  });

  test('sessions: Authorize starts one, stats update it, a reconnect replaces it, kick ends it', async () => {
    const res = await c.users.addUser({ name: 'kim', bundle: true });
    const { certPem } = certOf(res.bundle?.toml ?? '');
    const a = await authorize(certPem);
    assert.equal(a.allowed?.user, 'kim');
    assert.equal(a.allowed?.ipv4, res.device?.ipv4);
    assert.equal(a.allowed?.mtu, 1280);
    const sid = a.allowed?.sessionId ?? '';
    const stats = {
      bytesIn: 1000,
      bytesOut: 2000,
      packetsIn: 10,
      packetsOut: 20,
      rttMs: 1.5,
      loss: 0.01,
    };
    const rep = await c.dataplane.reportStats({
      dataplaneId,
      sessions: [
        { sessionId: sid, stats: { ...emptyStats(), ...stats }, ended: false },
        { sessionId: 'nonexistent', stats: emptyStats(), ended: false },
      ],
    });
    assert.deepEqual(rep.unknownSessionIds, ['nonexistent']);
    const listed = await c.sessions.listSessions({ user: 'kim' });
    assert.equal(listed.sessions.length, 1);
    assert.equal(listed.sessions[0].stats?.bytesOut, 2000);
    assert.equal(listed.sessions[0].remoteAddress, '192.0.2.1:5000');
    const w = new Watcher(h.run.socketPath, dataplaneId);
    try {
      await w.next((e) => e.hello);
      const b = await authorize(certPem);
      assert.equal(b.allowed?.ipv4, a.allowed?.ipv4, 'same device, same address');
      await w.next((e) => e.kick?.sessionIds.includes(sid) ?? false);
      const now = await c.sessions.listSessions({ user: 'kim' });
      assert.deepEqual(
        now.sessions.map((s) => s.id),
        [b.allowed?.sessionId],
      );
      const k = await c.sessions.kickSession({ sessionId: b.allowed?.sessionId, reason: 'bye' });
      assert.equal(k.kicked, 1);
      const ev = await w.next(
        (e) => e.kick?.sessionIds.includes(b.allowed?.sessionId ?? '') ?? false,
      );
      assert.equal(ev.kick?.reason, 'bye');
      assert.equal((await c.sessions.listSessions({ user: 'kim' })).sessions.length, 0);
      assert.equal(
        (await codeOf(c.sessions.kickSession({ sessionId: 'nope' }))).code,
        status.NOT_FOUND,
      );
      assert.equal((await codeOf(c.sessions.kickSession({}))).code, status.INVALID_ARGUMENT);
      const c2 = await authorize(certPem);
      await c.dataplane.reportStats({
        dataplaneId,
        sessions: [{ sessionId: c2.allowed?.sessionId ?? '', stats: undefined, ended: true }],
      });
      assert.equal((await c.sessions.listSessions({ user: 'kim' })).sessions.length, 0);
      // A restarted data plane (same name, new registration) loses its sessions.
      const c3 = await authorize(certPem);
      assert.ok(c3.allowed);
      await c.dataplane.register({ name: 'dp1' });
      assert.equal((await c.sessions.listSessions({ user: 'kim' })).sessions.length, 0);
    } finally {
      w.close();
    }
  });

  test('pool: show and leases', async () => {
    const pools = await c.pool.showPools({});
    assert.equal(pools.pools[0].capacity, '65533');
    assert.equal(pools.pools[1].capacity, '18446744073709551614');
    const first = await c.pool.listLeases({ pageSize: 5, pool: '10.77.0.0/16' });
    assert.equal(first.leases.length, 5);
    const second = await c.pool.listLeases({
      pageSize: 5,
      pool: '10.77.0.0/16',
      pageToken: first.nextPageToken,
    });
    assert.notEqual(second.leases[0].address, first.leases[0].address);
    assert.equal(
      (await codeOf(c.pool.listLeases({ pool: '10.0.0.0/8' }))).code,
      status.INVALID_ARGUMENT,
    );
  });
});

describe('TCP with mTLS: roles', () => {
  test('no certificate: UNAUTHENTICATED (Join is the exception)', async () => {
    const anon = h.tcp({});
    const r = await codeOf(anon.users.listUsers({}));
    assert.equal(r.code, status.UNAUTHENTICATED);
    assert.equal((await codeOf(anon.dataplane.authorize({}))).code, status.UNAUTHENTICATED);
    const j = await codeOf(
      anon.dataplane.join({ token: 'wrong', name: 'dp2', csrPem: (await makeCsr()).csrPem }),
    );
    assert.equal(j.code, status.PERMISSION_DENIED);
  });

  test('admin certificate: admin calls work, data-plane calls are PERMISSION_DENIED; revoked → UNAUTHENTICATED', async () => {
    const issued = await c.certificates.issueAdminCertificate({ name: 'ops-alice' });
    const admin = h.tcp({ certPem: issued.certPem, keyPem: issued.keyPem });
    assert.ok((await admin.users.listUsers({})).total > 0);
    await admin.users.addUser({ name: 'remote-user' });
    const token = await admin.dataplane.createJoinToken({});
    assert.ok(token.token.length > 20);
    const d = await codeOf(admin.dataplane.authorize({ dataplaneId }));
    assert.equal(d.code, status.PERMISSION_DENIED);
    await c.certificates.revokeCertificate({ serial: issued.certificate?.serial ?? '' });
    const revoked = await codeOf(admin.users.listUsers({}));
    assert.equal(revoked.code, status.UNAUTHENTICATED);
    assert.match(revoked.details, /revoked/);
  });

  test('data plane joins with a one-time token, then may call only the data-plane service', async () => {
    const { token } = await c.dataplane.createJoinToken({ validMinutes: 5 });
    const anon = h.tcp({});
    const { csrPem, keyPem } = await makeCsr();
    const joined = await anon.dataplane.join({ token, name: 'dp-remote', csrPem });
    assert.ok(
      new X509Certificate(joined.certPem).verify(new X509Certificate(joined.caPem).publicKey),
    );
    const reuse = await codeOf(anon.dataplane.join({ token, name: 'dp-remote', csrPem }));
    assert.equal(reuse.code, status.PERMISSION_DENIED);
    const dp = h.tcp({ certPem: joined.certPem, keyPem });
    const reg = await dp.dataplane.register({ name: 'ignored', listen: '0.0.0.0:4433' });
    assert.ok(reg.dataplaneId);
    const res = await c.users.addUser({ name: 'lena', bundle: true });
    const ok = await dp.dataplane.authorize({
      dataplaneId: reg.dataplaneId,
      clientCertDer: pemToDer(certOf(res.bundle?.toml ?? '').certPem),
    });
    assert.equal(ok.allowed?.user, 'lena');
    assert.equal((await codeOf(dp.users.listUsers({}))).code, status.PERMISSION_DENIED);
    assert.equal((await codeOf(dp.dataplane.createJoinToken({}))).code, status.PERMISSION_DENIED);
  });

  test('a device certificate may call nothing', async () => {
    const res = await c.users.addUser({ name: 'mona', bundle: true });
    const t = certOf(res.bundle?.toml ?? '');
    const device = h.tcp({ certPem: t.certPem, keyPem: t.keyPem });
    assert.equal((await codeOf(device.users.listUsers({}))).code, status.PERMISSION_DENIED);
    assert.equal((await codeOf(device.dataplane.authorize({}))).code, status.PERMISSION_DENIED);
  });
});

function emptyStats() {
  return {
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    rttMs: 0,
    loss: 0,
    fecRepairSent: 0,
    fecRecovered: 0,
    droppedSpoofed: 0,
    droppedPolicy: 0,
  };
}

describe('pool exhaustion', () => {
  test('a full pool gives RESOURCE_EXHAUSTED with a message naming it', async () => {
    const small = await startHarness('[pools]\nipv4 = "10.99.0.0/30"\nipv6 = ""\n');
    try {
      const first = await small.local.users.addUser({ name: 'one' });
      assert.equal(first.device?.ipv4, '10.99.0.2');
      assert.equal(first.device?.ipv6, '');
      const full = await codeOf(small.local.users.addUser({ name: 'two' }));
      assert.equal(full.code, status.RESOURCE_EXHAUSTED);
      assert.match(full.details, /10\.99\.0\.0\/30/);
      // The failed add left nothing behind; removing the first user frees its address.
      assert.equal(
        (await codeOf(small.local.users.getUser({ name: 'two' }))).code,
        status.NOT_FOUND,
      );
      await small.local.users.removeUser({ name: 'one' });
      const again = await small.local.users.addUser({ name: 'two' });
      assert.equal(again.device?.ipv4, '10.99.0.2');
    } finally {
      await small.close();
    }
  });
});

describe('metrics', () => {
  test('state gauges and per-method RPC latency and errors are exported', async () => {
    const text = await h.run.metrics.registry.metrics();
    assert.match(text, /^masque_control_users \d+/m);
    assert.match(text, /^masque_control_leases\{pool="10\.77\.0\.0\/16"\} [1-9]\d*/m);
    assert.match(
      text,
      /masque_control_rpc_duration_seconds_count\{method="masque\.v1\.Users\/AddUser",code="OK"\} [1-9]/,
    );
    assert.match(
      text,
      /masque_control_rpc_errors_total\{method="masque\.v1\.Users\/AddUser",code="ALREADY_EXISTS"\} [1-9]/,
    );
  });
});
