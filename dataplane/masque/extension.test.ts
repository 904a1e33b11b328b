// The extension hook of Tunnel: an encapsulator takes over outgoing packets after the checks, and
// sends on context 0 or its own context; packets it takes out of its context get the same receive
// checks as context-0 packets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrefix, type IpPrefix } from './address.js';
import { ClientSession } from './client-session.js';
import { ipv4Packet } from './fixtures.js';
import { fullRange } from './route.js';
import { ServerSession } from './server-session.js';
import { parseTemplate } from './template.js';
import { SendResult, type TunnelOutput } from './tunnel.js';

async function open(): Promise<{
  client: ClientSession;
  server: ServerSession;
  sent: Uint8Array[];
  delivered: Uint8Array[];
}> {
  const noop = (): void => {};
  const sent: Uint8Array[] = [];
  const delivered: Uint8Array[] = [];
  const peer: { client?: ClientSession } = {};
  const server = new ServerSession({
    output: {
      sendHeaders: noop,
      sendData: (b) => peer.client?.onData(b),
      resetStream: noop,
      sendDatagram: noop,
      deliverPacket: (b, o, l) => delivered.push(b.slice(o, o + l)),
    },
    request: { extendedConnectEnabled: true },
    authorize: async () => ({
      ok: true,
      addresses: [parsePrefix('10.1.1.2/32') as IpPrefix],
      routes: [fullRange(4)],
    }),
  });
  const cout: TunnelOutput = {
    sendHeaders: noop,
    sendData: noop,
    resetStream: noop,
    sendDatagram: (b, o, l) => sent.push(b.slice(o, o + l)),
    deliverPacket: noop,
  };
  const client = new ClientSession({ output: cout, template: parseTemplate('https://p/vpn') });
  peer.client = client;
  client.start();
  await server.onRequestHeaders([
    [':method', 'CONNECT'],
    [':protocol', 'connect-ip'],
    [':scheme', 'https'],
    [':authority', 'p'],
    [':path', '/.well-known/masque/ip/*/*/'],
  ]);
  client.onResponseHeaders([[':status', '200']], 0);
  return { client, server, sent, delivered };
}

test('an encapsulator gets checked, TTL-decremented packets and sends on any context', async () => {
  const { client, sent } = await open();
  const seen: Uint8Array[] = [];
  const id = client.contexts.allocate();
  client.setEncapsulator({
    encapsulate: (b, o, l) => {
      seen.push(b.slice(o, o + l));
      client.sendContextDatagram(id, new Uint8Array([0xaa, 0xbb]), b, o, l);
      client.sendPlainPacket(b, o, l);
    },
  });
  const pkt = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', ttl: 9 });
  assert.equal(client.sendPacket(pkt, 0, pkt.length), SendResult.Sent);
  assert.equal(seen.length, 1);
  assert.equal(seen[0][8], 8);
  assert.deepEqual(sent[0], Uint8Array.from([id, 0xaa, 0xbb, ...seen[0]]));
  assert.deepEqual(sent[1], Uint8Array.from([0, ...seen[0]]));
  // Refused packets never reach the extension.
  const foreign = ipv4Packet({ src: '10.9.9.9', dst: '192.0.2.1' });
  assert.equal(client.sendPacket(foreign, 0, foreign.length), SendResult.Refused);
  assert.equal(seen.length, 1);
  client.setEncapsulator(undefined);
  client.sendPacket(pkt, 0, pkt.length);
  assert.equal(sent.length, 3);
  assert.equal(sent[2][0], 0);
});

test('packets from an extension context pass the receive checks', async () => {
  const { server, delivered } = await open();
  let payloads = 0;
  server.contexts.register(2, (b, o, l) => {
    payloads++;
    server.receiveExtensionPacket(b, o + 1, l - 1);
  });
  const good = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1' });
  const spoofed = ipv4Packet({ src: '10.9.9.9', dst: '192.0.2.1' });
  server.receiveDatagram(Uint8Array.from([2, 0x77, ...good]), 0, good.length + 2);
  server.receiveDatagram(Uint8Array.from([2, 0x77, ...spoofed]), 0, spoofed.length + 2);
  assert.equal(payloads, 2);
  assert.deepEqual(delivered, [good]);
  assert.equal(server.stats.droppedSource, 1);
  assert.equal(server.contexts.stats.extension, 2);
});
