// CONNECT-IP end to end over two in-memory HTTP/3 connections (no sockets): the PROTOCOL.md
// Appendix B trace byte for byte, then the peer quirks of §10.1 (Huffman everywhere, QPACK
// streams, GREASE, literal path), GOAWAY and teardown.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H3Connection, type H3ConnectionOptions } from '../h3/connection.js';
import { parsePrefix, type IpPrefix } from './address.js';
import { ClientConnection, ProxyConnection } from './connection.js';
import { H3_NO_ERROR } from './errors.js';
import { hex, ipv4Packet, toHex } from './fixtures.js';
import { fullRange } from './route.js';
import { parseTemplate } from './template.js';
import { SendResult } from './tunnel.js';

const pfx = (s: string): IpPrefix => parsePrefix(s) as IpPrefix;

interface Wire {
  /** Bytes written per stream, per direction, in order. */
  streams: Map<string, Uint8Array[]>;
  datagrams: { c2p: Uint8Array[]; p2c: Uint8Array[] };
  closes: Array<{ from: string; code: number }>;
}

function setup(
  copts: Partial<H3ConnectionOptions> = {},
  popts: Partial<H3ConnectionOptions> = {},
  template = 'https://proxy.example.org/.well-known/masque/ip/{target}/{ipproto}/',
) {
  const cconn = new H3Connection({ role: 'client', ...copts });
  const pconn = new H3Connection({ role: 'server', ...popts });
  const delivered = { client: [] as Uint8Array[], proxy: [] as Uint8Array[] };
  const client = new ClientConnection(cconn, {
    deliver: (_s, b, o, l) => delivered.client.push(b.slice(o, o + l)),
    now: () => 0,
  });
  const proxy = new ProxyConnection(pconn, {
    deliver: (_s, b, o, l) => delivered.proxy.push(b.slice(o, o + l)),
    session: () => ({
      request: {
        authorities: ['proxy.example.org'],
        templates: [parseTemplate('/vpn')],
        extendedConnectEnabled: true,
      },
      authorize: async () => ({
        ok: true,
        addresses: [pfx('10.1.1.2/32')],
        routes: [fullRange(4)],
      }),
      now: () => 0,
    }),
  });
  const wire: Wire = { streams: new Map(), datagrams: { c2p: [], p2c: [] }, closes: [] };
  const sides = [
    {
      name: 'C→P',
      from: cconn,
      to: pconn,
      dg: wire.datagrams.c2p,
      peer: proxy as ProxyConnection | ClientConnection,
    },
    {
      name: 'P→C',
      from: pconn,
      to: cconn,
      dg: wire.datagrams.p2c,
      peer: client as ProxyConnection | ClientConnection,
    },
  ];
  /** Moves every queued action to the other side until both are quiet. */
  async function pump(): Promise<void> {
    for (let round = 0; round < 50; round++) {
      let moved = false;
      for (const s of sides) {
        for (let a = s.from.pollAction(); a; a = s.from.pollAction()) {
          moved = true;
          switch (a.kind) {
            case 'write': {
              const key = `${s.name} ${a.streamId}`;
              if (!wire.streams.has(key)) wire.streams.set(key, []);
              if (a.data.length) (wire.streams.get(key) as Uint8Array[]).push(a.data.slice());
              s.to.streamData(a.streamId, a.data, a.fin);
              break;
            }
            case 'resetStream':
              s.to.streamReset(a.streamId, a.code);
              break;
            case 'stopSending':
              s.to.stopSending(a.streamId, a.code);
              break;
            case 'datagram':
              s.dg.push(a.data.slice());
              s.peer.receiveDatagram(a.data);
              break;
            case 'close':
              wire.closes.push({ from: s.name, code: a.code });
              s.to.transportClosed(a.code, a.reason);
              break;
            case 'openStream':
              break;
          }
        }
      }
      client.pump();
      proxy.pump();
      await proxy.settled();
      if (!moved) return;
    }
    throw new Error('pump did not settle');
  }
  return { cconn, pconn, client, proxy, wire, delivered, pump, template: parseTemplate(template) };
}

const bytesOf = (w: Wire, key: string): string => (w.streams.get(key) ?? []).map(toHex).join(' ');

test('Appendix B end to end: SETTINGS, CONNECT, 200, ADDRESS_ASSIGN, ROUTE_ADV, datagrams both ways', async () => {
  const h = setup({ huffman: 'never' }, { huffman: 'never' });
  await h.pump();
  assert.equal(bytesOf(h.wire, 'C→P 2'), '00 0406010007003301');
  assert.equal(bytesOf(h.wire, 'P→C 3'), '00 04080100070008013301');
  assert.equal(h.cconn.canConnect(), true);
  const tunnel = h.client.open({ template: h.template });
  await h.pump();
  const block =
    '0000' +
    'cf' +
    'd7' +
    '5011' +
    toHex(Buffer.from('proxy.example.org')) +
    '511b' +
    toHex(Buffer.from('/.well-known/masque/ip/*/*/')) +
    '2702' +
    toHex(Buffer.from(':protocol')) +
    '0a' +
    toHex(Buffer.from('connect-ip')) +
    '2709' +
    toHex(Buffer.from('capsule-protocol')) +
    '02' +
    toHex(Buffer.from('?1'));
  assert.equal(block.length / 2, 95);
  assert.equal(bytesOf(h.wire, 'C→P 0'), '01405f' + block, 'HEADERS (no FIN)');
  assert.equal(
    bytesOf(h.wire, 'P→C 0'),
    [
      '01180000d92709' + toHex(Buffer.from('capsule-protocol')) + '02' + toHex(Buffer.from('?1')),
      '0009010700040a01010220',
      '000c030a0400000000ffffffff00',
    ].join(' '),
  );
  assert.equal(tunnel.state, 'open');
  assert.deepEqual(tunnel.localAddresses, [pfx('10.1.1.2/32')]);
  const packet = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', ttl: 65 });
  assert.equal(tunnel.sendPacket(packet, 0, packet.length), SendResult.Sent);
  await h.pump();
  const dg = h.wire.datagrams.c2p[0];
  assert.equal(toHex(dg.subarray(0, 3)), '000045', 'QSID 0, context 0, IPv4');
  assert.equal(dg[2 + 8], 64, 'TTL already decremented');
  assert.equal(h.delivered.proxy.length, 1);
  const proxySession = h.proxy.sessions.get(0);
  assert.ok(proxySession);
  const reply = ipv4Packet({ src: '192.0.2.1', dst: '10.1.1.2' });
  assert.equal(proxySession.sendPacket(reply, 0, reply.length), SendResult.Sent);
  await h.pump();
  assert.equal(h.delivered.client.length, 1);
  assert.equal(toHex(h.wire.datagrams.p2c[0].subarray(0, 3)), '000045');
});

test('peer quirks: Huffman on every literal, QPACK streams, GREASE, literal path /vpn (quic-go / quiche style)', async () => {
  const h = setup(
    { huffman: 'always', openQpackStreams: true, grease: true },
    { huffman: 'always', openQpackStreams: true, grease: true },
    'https://proxy.example.org/vpn',
  );
  await h.pump();
  const tunnel = h.client.open({
    template: h.template,
    extraHeaders: [['user-agent', 'quic-go HTTP/3']],
  });
  await h.pump();
  assert.equal(tunnel.state, 'open');
  assert.equal(h.proxy.sessions.get(0)?.request?.path, '/vpn');
  assert.deepEqual(h.wire.closes, []);
  const p = ipv4Packet({ src: '10.1.1.2', dst: '198.51.100.7' });
  assert.equal(tunnel.sendPacket(p, 0, p.length), SendResult.Sent);
  await h.pump();
  assert.equal(h.delivered.proxy.length, 1);
});

test('quiche-like proxy (200 without capsule-protocol, no capsules): the client asks for addresses after the grace period', () => {
  const cconn = new H3Connection({ role: 'client' });
  const pconn = new H3Connection({ role: 'server', huffman: 'always', openQpackStreams: true });
  const client = new ClientConnection(cconn, { deliver: () => {}, now: () => 1000 });
  const fromClient: string[] = [];
  const pump = (): void => {
    for (let moved = true; moved;) {
      moved = false;
      for (let a = cconn.pollAction(); a; a = cconn.pollAction()) {
        moved = true;
        if (a.kind === 'write') {
          if (a.streamId === 0 && a.data.length) fromClient.push(toHex(a.data));
          pconn.streamData(a.streamId, a.data, a.fin);
        }
      }
      for (let a = pconn.pollAction(); a; a = pconn.pollAction()) {
        moved = true;
        if (a.kind === 'write') cconn.streamData(a.streamId, a.data, a.fin);
      }
      for (let e = pconn.pollEvent(); e; e = pconn.pollEvent()) {
        if (e.kind === 'request') pconn.respond(e.streamId, [[':status', '200']]);
      }
      client.pump();
    }
  };
  pump();
  const t = client.open({
    template: parseTemplate('https://proxy.example.org/vpn'),
    addressGraceMs: 30,
  });
  pump();
  assert.equal(t.state, 'open');
  assert.equal(client.nextTimeout(), 1030);
  fromClient.length = 0;
  client.onTimeout(1029);
  pump();
  assert.deepEqual(fromClient, []);
  client.onTimeout(1030);
  pump();
  // One DATA frame (00 1c) holding ADDRESS_REQUEST for any IPv4 /32 (ID 1) and any IPv6 /128 (ID 2).
  assert.deepEqual(fromClient, ['001c' + '021a010400000000200206' + '00'.repeat(16) + '80']);
  assert.equal(client.nextTimeout(), undefined);
});

test('a rejected request (unknown path) ends with 404 and no tunnel; the connection stays up', async () => {
  const h = setup({}, {}, 'https://proxy.example.org/elsewhere');
  await h.pump();
  const tunnel = h.client.open({ template: h.template });
  await h.pump();
  assert.equal(tunnel.state, 'closed');
  assert.equal(tunnel.status, 404);
  assert.deepEqual(h.wire.closes, []);
  assert.equal(h.proxy.sessions.size, 0);
});

test('§10.1 items 19–20: client close is answered with FIN; proxy shutdown sends GOAWAY, then H3_NO_ERROR', async () => {
  const h = setup();
  await h.pump();
  const a = h.client.open({ template: h.template });
  const b = h.client.open({ template: h.template });
  await h.pump();
  assert.equal(a.state, 'open');
  assert.equal(b.state, 'open');
  a.close();
  await h.pump();
  assert.equal(a.state, 'closed');
  assert.equal(h.proxy.sessions.size, 1);
  h.proxy.shutdown();
  await h.pump();
  assert.equal(h.cconn.goawayReceived, 8, 'GOAWAY names the first unprocessed request');
  assert.equal(b.state, 'closed', 'the proxy FINed it and the client answered');
  assert.equal(h.cconn.canConnect(), false, 'no new tunnels after GOAWAY');
  assert.throws(() => h.client.open({ template: h.template }));
  assert.equal(h.proxy.closeIfIdle(), true);
  await h.pump();
  assert.deepEqual(h.wire.closes, [{ from: 'P→C', code: H3_NO_ERROR }]);
});

test('a reset from either side closes the tunnel on both', async () => {
  const h = setup();
  await h.pump();
  const t = h.client.open({ template: h.template });
  await h.pump();
  const p = h.proxy.sessions.get(0);
  assert.equal(p?.state, 'open');
  t.abort(0x10c);
  await h.pump();
  assert.equal(t.state, 'closed');
  assert.equal(p.state, 'closed');
  assert.equal(h.proxy.sessions.size, 0);
  const u = h.client.open({ template: h.template });
  await h.pump();
  h.proxy.sessions.get(4)?.abort(0x101);
  await h.pump();
  assert.equal(u.state, 'closed', 'quiche-style H3_GENERAL_PROTOCOL_ERROR reset');
});

test('§10.1 item 21 (Cloudflare mode): cf-connect-ip to cloudflareaccess.com path /, SETTINGS 0x276 only, static addresses, no route wait', () => {
  const cconn = new H3Connection({
    role: 'client',
    requirePeerConnectProtocol: false,
    draftDatagramSetting: true,
  });
  // A Cloudflare-like server: its real SETTINGS are replaced on the wire by "0x276=1" alone (no
  // ENABLE_CONNECT_PROTOCOL, no 0x33), as some Cloudflare endpoints advertise (PROTOCOL.md §9.3).
  const pconn = new H3Connection({ role: 'server' });
  const client = new ClientConnection(cconn, { deliver: () => {}, now: () => 0 });
  const toProxy: Uint8Array[] = [];
  const requests: Array<Array<[string, string]>> = [];
  let clientControl = '';
  const pump = (): void => {
    for (let moved = true; moved;) {
      moved = false;
      for (let a = cconn.pollAction(); a; a = cconn.pollAction()) {
        moved = true;
        if (a.kind === 'write') {
          if (a.streamId === 2) clientControl += toHex(a.data);
          pconn.streamData(a.streamId, a.data, a.fin);
        } else if (a.kind === 'datagram') toProxy.push(a.data.slice());
      }
      for (let a = pconn.pollAction(); a; a = pconn.pollAction()) {
        moved = true;
        if (a.kind !== 'write') continue;
        if (a.streamId === 3) continue; // replaced below
        cconn.streamData(a.streamId, a.data, a.fin);
      }
      for (let e = pconn.pollEvent(); e; e = pconn.pollEvent()) {
        if (e.kind === 'request') {
          requests.push(e.headers);
          pconn.respond(e.streamId, [
            [':status', '200'],
            ['cf-team', 'abc'],
          ]);
        }
      }
      client.pump();
    }
  };
  cconn.streamData(3, hex('00 04 03 42 76 01'), false);
  pump();
  assert.match(clientControl, /427601/, 'the client sends 0x276=1');
  assert.match(clientControl, /3301/, 'and 0x33=1');
  assert.equal(cconn.canConnect(), true, 'no ENABLE_CONNECT_PROTOCOL needed in this mode');
  const t = client.open({
    template: parseTemplate('https://cloudflareaccess.com/'),
    protocol: 'cf-connect-ip',
    extraHeaders: [['user-agent', '']],
    staticAddresses: [pfx('172.16.0.2/32')],
    staticRoutes: [fullRange(4)],
    addressRequest: 'never',
  });
  pump();
  assert.deepEqual(requests[0].slice(0, 5), [
    [':method', 'CONNECT'],
    [':scheme', 'https'],
    [':authority', 'cloudflareaccess.com'],
    [':path', '/'],
    [':protocol', 'cf-connect-ip'],
  ]);
  assert.equal(t.state, 'open');
  // No ADDRESS_ASSIGN and no ROUTE_ADVERTISEMENT: packets flow at once from the static address.
  const p = ipv4Packet({ src: '172.16.0.2', dst: '1.1.1.1' });
  assert.equal(t.sendPacket(p, 0, p.length), SendResult.Sent);
  pump();
  assert.equal(toProxy.length, 1);
  assert.equal(toHex(toProxy[0].subarray(0, 3)), '000045', 'QSID 0, context 0, IPv4');
});
