// CONNECT-IP over the real stack in one process on loopback: the native QUIC addon, HTTP/3 on
// both ends (H3Link), the proxy side through masque's ProxyConnection and the client side through
// the client's MasqueTransport. SETTINGS, CONNECT, 200, ADDRESS_ASSIGN, ROUTE_ADVERTISEMENT, IP
// packets as datagrams both ways, GOAWAY and a clean close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MasqueTransport } from '../../client/masque-transport.js';
import type { IpPrefix, IpRange } from '../../client/prefix.js';
import type { TunnelCloseReason } from '../../client/transport.js';
import { H3Connection } from '../h3/connection.js';
import { parsePrefix } from '../masque/address.js';
import { ProxyConnection } from '../masque/connection.js';
import { rangeFromPrefix } from '../masque/route.js';
import { Endpoint, type Connection } from '../quic/endpoint.js';
import { testPki } from '../quic/testing/pki.js';
import { H3Link } from './h3-link.js';

/** IPv4 UDP packet src → dst with a payload; checksum fields left zero (UDP allows it). */
function udp4(src: number[], dst: number[], payload: string): Uint8Array {
  const body = Buffer.from(payload);
  const p = new Uint8Array(28 + body.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set(src, 12);
  p.set(dst, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  const ck = ~sum & 0xffff;
  p[10] = ck >> 8;
  p[11] = ck & 0xff;
  p[20] = 0x30;
  p[21] = 0x39;
  p[22] = 0x00;
  p[23] = 0x35;
  p[24] = (8 + body.length) >> 8;
  p[25] = (8 + body.length) & 0xff;
  p.set(body, 28);
  return p;
}

function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > end) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

test('client and proxy sessions over the real QUIC addon on loopback', async () => {
  const pki = testPki();
  const fromClient: Uint8Array[] = [];
  const proxies = new Map<Connection, { link: H3Link; proxy: ProxyConnection }>();
  const clientAddr = parsePrefix('10.77.0.2/32');
  const route = parsePrefix('10.77.0.1/32');
  assert.ok(clientAddr && route);

  const server = new Endpoint(
    { role: 'server', host: '127.0.0.1', port: 0, ...pki.server, caPem: pki.caPem },
    {
      onConnection(q) {
        const h3 = new H3Connection({ role: 'server' });
        const link = new H3Link(q, h3);
        const proxy = new ProxyConnection(h3, {
          session: () => ({
            request: { extendedConnectEnabled: true },
            authorize: async () => ({
              ok: true,
              addresses: [clientAddr],
              routes: [rangeFromPrefix(route)],
            }),
          }),
          deliver: (_id, packet, offset, length) =>
            fromClient.push(packet.slice(offset, offset + length)),
        });
        // ProxyConnection drains events itself; the link only carries actions.
        link.onEvent = () => undefined;
        proxies.set(q, { link, proxy });
        link.pump();
      },
      onStreamData(q, id, data, fin) {
        const p = proxies.get(q);
        if (!p) return;
        p.link.h3.streamData(id, data, fin);
        p.proxy.pump();
        p.link.pump();
        // Authorisation resolves asynchronously; flush what it sends.
        void p.proxy.settled().then(() => p.link.pump());
      },
      onDatagrams(q, buf, lengths, count) {
        const p = proxies.get(q);
        if (!p) return;
        let off = 0;
        for (let i = 0; i < count; i++) {
          p.proxy.receiveDatagram(buf.subarray(off, off + lengths[i]));
          off += lengths[i];
        }
        p.link.pump();
      },
    },
  );
  const port = server.address().port;

  const addresses: IpPrefix[][] = [];
  const routes: IpRange[][] = [];
  const toClient: Uint8Array[] = [];
  const closed: TunnelCloseReason[] = [];
  const transport = new MasqueTransport({
    endpoints: [{ host: '127.0.0.1', port, addresses: ['127.0.0.1'] }],
    serverName: 'localhost',
    templatePath: '/.well-known/masque/ip/{target}/{ipproto}/',
    caPem: pki.caPem,
    certPem: pki.client.certPem,
    keyPem: pki.client.keyPem,
    addressRequest: false,
    fec: { enabled: false, blockSize: 10, redundancyPercent: 0 },
    mtu: 1280,
  });
  try {
    const handle = await transport.connect(
      {
        addresses: (set) => addresses.push([...set]),
        routes: (set) => routes.push([...set]),
        packet: (p) => toClient.push(Uint8Array.from(p)),
        closed: (r) => closed.push(r),
      },
      new AbortController().signal,
    );
    await until(() => addresses.length > 0 && routes.length > 0, 5000, 'capsules');
    assert.deepEqual(addresses.at(-1), [{ version: 4, address: '10.77.0.2', length: 32 }]);
    assert.deepEqual(routes.at(-1), [
      { version: 4, start: '10.77.0.1', end: '10.77.0.1', protocol: 0 },
    ]);

    // Client → proxy: a packet from the assigned address to an advertised route is delivered
    // with its TTL decremented. One from a foreign source never leaves the client: it answers
    // locally with ICMP administratively prohibited (RFC 9484 §7.2).
    assert.equal(handle.send(udp4([10, 77, 0, 2], [10, 77, 0, 1], 'hello')), true);
    assert.equal(handle.send(udp4([10, 66, 0, 9], [10, 77, 0, 1], 'spoofed')), false);
    assert.equal(toClient.length, 1);
    assert.equal(toClient[0][9], 1, 'ICMP error back to the local side');
    assert.equal(toClient[0][20], 3, 'destination unreachable');
    toClient.length = 0;
    await until(() => fromClient.length >= 1, 5000, 'packet at the proxy');
    assert.equal(Buffer.from(fromClient[0].subarray(28)).toString(), 'hello');
    assert.equal(fromClient[0][8], 63, 'TTL decremented once, by the client');

    // Proxy → client: the session encapsulates a packet for the client's address.
    const [entry] = proxies.values();
    const [session] = entry.proxy.sessions.values();
    const back = udp4([10, 77, 0, 1], [10, 77, 0, 2], 'back');
    assert.equal(session.sendPacket(back, 0, back.length), 0);
    entry.link.pump();
    await until(() => toClient.length >= 1, 5000, 'packet at the client');
    assert.equal(Buffer.from(toClient[0].subarray(28)).toString(), 'back');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fromClient.length, 1, 'the foreign-source packet never reached the proxy');

    // GOAWAY from the proxy: the client reports it and leaves.
    entry.proxy.shutdown();
    entry.link.pump();
    await until(() => closed.length > 0, 5000, 'client close report');
    assert.equal(closed[0].kind, 'goaway');
    await handle.close();
  } finally {
    await server.close();
  }
});
