// Handshake and mutual TLS: who is accepted, who is rejected (and counted), and that hostile
// packets neither crash nor stall the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { X509Certificate, randomBytes } from 'node:crypto';

import { Endpoint, type CloseInfo, type Connection, type EndpointOptions } from './endpoint.js';
import { testPki, type Identity } from './testing/pki.js';
import { clientOptions, deferred, serverOptions, until } from './testing/harness.js';

let server: Endpoint;
let port = 0;
const accepted: Connection[] = [];

before(() => {
  server = new Endpoint(serverOptions(), {
    onConnection: (c) => accepted.push(c),
  });
  port = server.address().port;
});

after(async () => {
  await server.close();
});

type Outcome = { ok: true; conn: Connection } | { ok: false; info: CloseInfo };

async function attempt(
  extra: Partial<EndpointOptions>,
  identity?: Identity,
  host = '::1',
): Promise<{ outcome: Outcome; client: Endpoint }> {
  const done = deferred<Outcome>(5000, 'handshake outcome');
  const client = new Endpoint(clientOptions({ handshakeTimeoutMs: 3000, ...extra }, identity), {
    onHandshake: (conn) => done.resolve({ ok: true, conn }),
    onClose: (_c, info) => done.resolve({ ok: false, info }),
  });
  client.connect(host, port);
  try {
    return { outcome: await done.promise, client };
  } catch (err) {
    await client.close();
    throw err;
  }
}

test('a client with a clientAuth certificate from our CA is accepted; both see the peer DER', async () => {
  const pki = testPki();
  const before = server.counters().connectionsAccepted;
  const { outcome, client } = await attempt({});
  try {
    assert.ok(outcome.ok, 'handshake should succeed');
    const serverCert = new X509Certificate(pki.server.certPem);
    assert.deepEqual(outcome.conn.peerCertDer, serverCert.raw);
    await until(() => server.counters().connectionsAccepted === before + 1, 2000, 'accept');
    const mine = new X509Certificate(pki.client.certPem).raw;
    assert.ok(accepted.some((c) => c.peerCertDer?.equals(mine)));
  } finally {
    await client.close();
  }
});

test('IPv4 loopback on the dual-stack server works too', async () => {
  const { outcome, client } = await attempt({}, undefined, '127.0.0.1');
  try {
    assert.ok(outcome.ok);
  } finally {
    await client.close();
  }
});

async function rejected(
  extra: Partial<EndpointOptions>,
  identity: Identity | undefined,
): Promise<{ info: CloseInfo; client: Endpoint }> {
  const { outcome, client } = await attempt(extra, identity);
  if (outcome.ok) {
    await client.close();
    assert.fail('handshake unexpectedly succeeded');
  }
  return { info: outcome.info, client };
}

test('no client certificate: rejected and counted', async () => {
  const c0 = server.counters();
  const { info, client } = await rejected({ certPem: '', keyPem: '' }, undefined);
  await client.close();
  assert.equal(info.why, 'handshake');
  assert.equal(info.kind, 'transport');
  assert.ok(info.code >= 0x100 && info.code < 0x200, `TLS alert code, got ${info.code}`);
  await until(() => server.counters().handshakeFailed > c0.handshakeFailed, 2000, 'count');
  assert.equal(server.counters().tlsNoCertificate, c0.tlsNoCertificate + 1);
  assert.equal(server.counters().connectionsAccepted, c0.connectionsAccepted);
});

test('client certificate from another CA: rejected and counted', async () => {
  const c0 = server.counters();
  const { info, client } = await rejected({}, testPki().clientOtherCa);
  await client.close();
  assert.equal(info.why, 'handshake');
  await until(() => server.counters().handshakeFailed > c0.handshakeFailed, 2000, 'count');
  const c1 = server.counters();
  // GnuTLS clients withhold a certificate the server's CA list does not cover.
  assert.equal(c1.tlsNoCertificate + c1.tlsUntrusted, c0.tlsNoCertificate + c0.tlsUntrusted + 1);
});

test('client certificate without the clientAuth purpose: rejected and counted', async () => {
  const c0 = server.counters();
  const { info, client } = await rejected({}, testPki().clientWrongPurpose);
  await client.close();
  assert.equal(info.why, 'handshake');
  assert.equal(info.code, 0x100 + 42, 'bad_certificate alert');
  await until(() => server.counters().tlsWrongPurpose === c0.tlsWrongPurpose + 1, 2000, 'count');
});

test('client that does not trust the server CA aborts and counts', async () => {
  const c0 = server.counters();
  const { info, client } = await rejected({ caPem: testPki().otherCaPem }, undefined);
  assert.equal(info.local, true);
  assert.equal(info.why, 'handshake');
  assert.equal(client.counters().tlsUntrusted, 1);
  await client.close();
  await until(() => server.counters().handshakeFailed > c0.handshakeFailed, 2000, 'server count');
});

test('client expecting another server name aborts', async () => {
  const { info, client } = await rejected({ serverName: 'not-the-server.example' }, undefined);
  assert.equal(info.local, true);
  assert.equal(client.counters().tlsUntrusted, 1);
  await client.close();
});

test('wrong ALPN: rejected with no_application_protocol and counted', async () => {
  const c0 = server.counters();
  const { info, client } = await rejected({ alpn: 'h2' }, undefined);
  await client.close();
  assert.equal(info.code, 0x100 + 120);
  await until(() => server.counters().tlsOther === c0.tlsOther + 1, 2000, 'count');
});

test('garbage, truncated and unknown-version packets: counted, answered correctly, no stall', async () => {
  const c0 = server.counters();
  const sock = createSocket('udp6');
  await new Promise<void>((r) => sock.bind(0, '::1', r));
  const replies: Buffer[] = [];
  sock.on('message', (m) => replies.push(m));
  const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, port, '::1', () => r()));
  try {
    await send(Buffer.from([]));
    await send(Buffer.from([0x40]));
    for (let i = 0; i < 50; i++) await send(randomBytes(1 + ((i * 37) % 1400)));
    // A truncated Initial: long header, version 1, 8-byte DCID, nothing after.
    await send(Buffer.from([0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0]));
    // An Initial-sized packet with an unknown version must get a Version Negotiation packet.
    const vn = Buffer.alloc(1200);
    vn.set([0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8, 1, 2, 3, 4, 5, 6, 7, 8, 4, 9, 9, 9, 9]);
    await send(vn);
    // A short-header packet for no connection of ours: a stateless reset comes back.
    const short = randomBytes(100);
    short[0] = 0x40 | (short[0] & 0x3f);
    await send(short);
    await until(() => replies.length >= 2, 2000, 'VN + stateless reset');
    const vnReply = replies.find((r) => r[0] & 0x80);
    assert.ok(vnReply, 'version negotiation reply');
    assert.equal(vnReply.readUInt32BE(1), 0, 'VN has version 0');
    const reset = replies.find((r) => (r[0] & 0x80) === 0);
    assert.ok(reset && reset.length < short.length, 'stateless reset smaller than the trigger');
  } finally {
    sock.close();
  }
  const c1 = server.counters();
  const rejected = (c: typeof c0) =>
    c.garbage + c.acceptFailed + c.unknownConnection + c.versionNegotiationSent;
  assert.ok(rejected(c1) >= rejected(c0) + 50, 'every hostile packet is counted');
  assert.ok(c1.versionNegotiationSent >= c0.versionNegotiationSent + 1);
  assert.ok(c1.statelessResetSent >= c0.statelessResetSent + 1);
  // Still serving.
  const { outcome, client } = await attempt({});
  assert.ok(outcome.ok);
  await client.close();
});

test('a replayed client Initial does not create a second connection', async () => {
  // Capture the client's first datagram through a relay socket, then replay it.
  const relay = createSocket('udp6');
  await new Promise<void>((r) => relay.bind(0, '::1', r));
  let clientAddr: { port: number } | undefined;
  let first: Buffer | undefined;
  relay.on('message', (m, rinfo) => {
    if (rinfo.port === port) {
      if (clientAddr) relay.send(m, clientAddr.port, '::1');
      return;
    }
    clientAddr = { port: rinfo.port };
    first ??= Buffer.from(m);
    relay.send(m, port, '::1');
  });
  const c0 = server.counters();
  const done = deferred<boolean>(5000, 'relayed handshake');
  const client = new Endpoint(clientOptions(), {
    onHandshake: () => done.resolve(true),
    onClose: () => done.resolve(false),
  });
  try {
    client.connect('::1', (relay.address() as { port: number }).port);
    assert.equal(await done.promise, true);
    assert.ok(first);
    for (let i = 0; i < 3; i++) relay.send(first, port, '::1');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.counters().connectionsAccepted, c0.connectionsAccepted + 1);
  } finally {
    relay.close();
    await client.close();
  }
});

test('Retry: the server validates the address first, then the handshake completes', async () => {
  const retryServer = new Endpoint(serverOptions({ retry: true }), {});
  const done = deferred<boolean>(5000, 'handshake after Retry');
  const client = new Endpoint(clientOptions(), {
    onHandshake: () => done.resolve(true),
    onClose: () => done.resolve(false),
  });
  try {
    client.connect('::1', retryServer.address().port);
    assert.equal(await done.promise, true);
    const c = retryServer.counters();
    assert.equal(c.retrySent, 1);
    assert.equal(c.retryTokenInvalid, 0);
    await until(() => retryServer.counters().connectionsAccepted === 1, 2000, 'accepted');
  } finally {
    await client.close();
    await retryServer.close();
  }
});

test('bad options are refused with typed errors', () => {
  const bad = (extra: Partial<EndpointOptions>, code: string) =>
    assert.throws(() => new Endpoint(serverOptions(extra)), { name: 'QuicError', code });
  bad({ cc: 'vegas' as unknown as 'bbr' }, 'ERR_INVALID_ARG_VALUE');
  bad({ role: 'peer' as unknown as 'server' }, 'ERR_INVALID_ARG_VALUE');
  bad({ host: 'localhost' }, 'ERR_QUIC_ENDPOINT');
  bad({ caPem: 'not a certificate' }, 'ERR_QUIC_ENDPOINT');
  bad({ shardId: 4, shardCount: 4 }, 'ERR_QUIC_ENDPOINT');
  const client = new Endpoint(clientOptions({ host: '127.0.0.1' }));
  try {
    assert.throws(() => client.connect('::1', 4433), {
      name: 'QuicError',
      code: 'ERR_QUIC_CONNECT',
    });
  } finally {
    void client.close();
  }
});

test('CUBIC is selectable', async () => {
  const { outcome, client } = await attempt({ cc: 'cubic' });
  try {
    assert.ok(outcome.ok);
  } finally {
    await client.close();
  }
});
