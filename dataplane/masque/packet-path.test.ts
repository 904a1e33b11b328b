// The per-packet path allocates nothing in steady state (ARCHITECTURE.md, rules of the house):
// any allocation per packet would show up as garbage collections or heap growth over 200,000
// packets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerformanceObserver } from 'node:perf_hooks';
import { parsePrefix, type IpPrefix } from './address.js';
import { ClientSession } from './client-session.js';
import { ipv4Packet } from './fixtures.js';
import { fullRange } from './route.js';
import { ServerSession } from './server-session.js';
import { parseTemplate } from './template.js';
import { SendResult, type TunnelOutput } from './tunnel.js';

test('client sendPacket → proxy receiveDatagram → deliverPacket: no GC, no heap growth', async () => {
  const noop = (): void => {};
  let delivered = 0;
  // The outputs point at sessions created below.
  const peer: { server?: ServerSession; client?: ClientSession } = {};
  const sout: TunnelOutput = {
    sendHeaders: noop,
    sendData: (b) => peer.client?.onData(b),
    resetStream: noop,
    sendDatagram: noop,
    deliverPacket: () => delivered++,
  };
  const cout: TunnelOutput = {
    sendHeaders: noop,
    sendData: noop,
    resetStream: noop,
    sendDatagram: (b, o, l) => peer.server?.receiveDatagram(b, o, l),
    deliverPacket: noop,
  };
  const server = new ServerSession({
    output: sout,
    request: { extendedConnectEnabled: true },
    authorize: async () => ({
      ok: true,
      addresses: [parsePrefix('10.1.1.2/32') as IpPrefix],
      routes: [fullRange(4)],
    }),
  });
  const client = new ClientSession({
    output: cout,
    template: parseTemplate('https://p.example/vpn'),
  });
  peer.server = server;
  peer.client = client;
  const opened = server.onRequestHeaders([
    [':method', 'CONNECT'],
    [':protocol', 'connect-ip'],
    [':scheme', 'https'],
    [':authority', 'p.example'],
    [':path', '/.well-known/masque/ip/*/*/'],
  ]);
  client.start();
  await opened;
  client.onResponseHeaders([[':status', '200']], 0);
  const pkt = ipv4Packet({ src: '10.1.1.2', dst: '192.0.2.1', payload: new Uint8Array(1200) });
  const send = (n: number): void => {
    for (let i = 0; i < n; i++) {
      pkt[8] = 200; // restore the TTL the previous send decremented (checksum is not re-checked)
      if (client.sendPacket(pkt, 0, pkt.length) !== SendResult.Sent) assert.fail('refused');
    }
  };
  send(50_000); // warm up: JIT, inline caches
  await new Promise((r) => setTimeout(r, 20));
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  const heapBefore = process.memoryUsage().heapUsed;
  send(200_000);
  const heapAfter = process.memoryUsage().heapUsed;
  await new Promise((r) => setTimeout(r, 20));
  obs.disconnect();
  assert.equal(delivered, 250_000);
  assert.equal(gcs, 0, 'garbage collections during the run');
  assert.ok(heapAfter - heapBefore < 512 * 1024, `heap grew ${heapAfter - heapBefore} bytes`);
});
