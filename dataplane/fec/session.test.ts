// FEC on real CONNECT-IP tunnels (dataplane/masque): negotiation through the request and response
// fields, encapsulation through the tunnel's hook, recovery of dropped datagrams, and the receive
// checks still applied to what FEC delivers. The test reaches into ../masque; the module does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parsePrefix, type IpPrefix } from '../masque/address.js';
import { ClientSession } from '../masque/client-session.js';
import { readContextId } from '../masque/datagram.js';
import { ipv4Packet } from '../masque/fixtures.js';
import type { HeaderList } from '../masque/request.js';
import { fullRange } from '../masque/route.js';
import { ServerSession } from '../masque/server-session.js';
import { parseTemplate } from '../masque/template.js';
import { SendResult, type TunnelOutput } from '../masque/tunnel.js';
import { parseFecConfig, type FecConfig } from './config.js';
import { clientFecAgreement, clientFecOffer, FecSession, proxyFecChoice } from './session.js';

interface Pair {
  client: ClientSession;
  server: ServerSession;
  clientFec: FecSession | undefined;
  serverFec: FecSession | undefined;
  /** Context IDs of the datagrams the client sent, in order. */
  clientContexts: number[];
  /** Packets the server delivered (their 4-byte sequence numbers). */
  delivered: number[];
  /** Return true to drop the n-th client→server datagram. */
  drop: (n: number) => boolean;
  clock: { now: number };
}

async function pair(clientCfg: FecConfig, serverCfg: FecConfig): Promise<Pair> {
  const noop = (): void => {};
  const clock = { now: 0 };
  const p = {
    clientContexts: [] as number[],
    delivered: [] as number[],
    drop: () => false,
    clock,
  } as unknown as Pair;
  let requestHeaders: HeaderList = [];
  let responseHeaders: HeaderList = [];
  let sent = 0;
  const scratch = [0];
  const sout: TunnelOutput = {
    sendHeaders: (h) => (responseHeaders = h),
    sendData: (b) => p.client.onData(b),
    resetStream: noop,
    sendDatagram: (b, o, l) => p.client.receiveDatagram(b, o, l),
    deliverPacket: (b, o) =>
      p.delivered.push(new DataView(b.buffer, b.byteOffset + o + 20, 4).getUint32(0)),
  };
  const cout: TunnelOutput = {
    sendHeaders: (h) => (requestHeaders = h),
    sendData: noop,
    resetStream: noop,
    sendDatagram: (b, o, l) => {
      readContextId(b, o, o + l, scratch);
      p.clientContexts.push(scratch[0]);
      if (!p.drop(sent++)) p.server.receiveDatagram(b, o, l);
    },
    deliverPacket: noop,
  };
  let answer: HeaderList = [];
  p.server = new ServerSession({
    output: sout,
    request: { extendedConnectEnabled: true, templates: [parseTemplate('/vpn')] },
    authorize: async () => ({
      ok: true,
      addresses: [parsePrefix('10.1.1.2/32') as IpPrefix],
      routes: [fullRange(4)],
      responseHeaders: answer,
    }),
  });
  p.client = new ClientSession({ output: cout, template: parseTemplate('https://p.example/vpn') });
  const offer = clientFecOffer(clientCfg, p.client);
  p.client.start(offer === undefined ? [] : [offer.field]);
  const choice = proxyFecChoice(requestHeaders, serverCfg);
  answer = choice === undefined ? [] : [choice.field];
  await p.server.onRequestHeaders(requestHeaders);
  p.client.onResponseHeaders(responseHeaders, 0);
  assert.equal(p.client.state, 'open');
  const agreement =
    offer === undefined ? undefined : clientFecAgreement(responseHeaders, offer.offer);
  assert.deepEqual(agreement, choice?.agreement);
  const now = () => clock.now;
  if (agreement !== undefined && choice !== undefined) {
    p.clientFec = new FecSession({
      port: p.client,
      agreement,
      config: clientCfg,
      maxPacketSize: 1280,
      now,
    });
    p.serverFec = new FecSession({
      port: p.server,
      agreement: choice.agreement,
      config: serverCfg,
      maxPacketSize: 1280,
      now,
    });
    p.serverFec.attach();
    p.clientFec.attach();
  }
  return p;
}

function packet(seq: number, src = '10.1.1.2'): Uint8Array {
  const payload = new Uint8Array(100 + (seq % 50));
  new DataView(payload.buffer).setUint32(0, seq);
  return ipv4Packet({ src, dst: '192.0.2.1', payload });
}

const fixed = (over: object) =>
  parseFecConfig({ enabled: true, adaptive: false, block_size: 10, max_repair: 2, ...over });

test('negotiated RS recovers every datagram dropped at up to m per block', async () => {
  const p = await pair(fixed({ schemes: ['rs'] }), fixed({}));
  assert.equal(p.clientFec?.scheme, 'rs');
  // Blocks are 12 datagrams (10 data + 2 repair): drop two of each.
  p.drop = (n) => n % 12 === 3 || n % 12 === 7;
  for (let i = 0; i < 1000; i++) {
    assert.equal(p.client.sendPacket(packet(i), 0, packet(i).length), SendResult.Sent);
  }
  const got = [...new Set(p.delivered)].sort((a, b) => a - b);
  assert.equal(got.length, 1000);
  assert.deepEqual(
    got,
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.ok((p.serverFec?.metrics.packetsRecovered ?? 0) >= 160);
  // Data went on the FEC context, never as a damaged context-0 packet.
  assert.ok(p.clientContexts.every((c) => c === p.clientFec?.fec.context));
});

test('the flush timer closes a half-full block so a quiet flow is recovered too', async () => {
  const p = await pair(fixed({ schemes: ['xor'], flush_ms: 5, max_flush_ms: 5 }), fixed({}));
  p.drop = (n) => n === 1;
  for (let i = 0; i < 3; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  assert.deepEqual(p.delivered, [0, 2]);
  assert.equal(p.clientFec?.nextDeadline(), 5);
  p.clock.now = 5;
  p.clientFec?.onTimer(5);
  assert.deepEqual(p.delivered, [0, 2, 1]);
});

test('by default a short block waits up to max_flush_ms (20) for more packets, then recovers', async () => {
  const p = await pair(fixed({ schemes: ['xor'], flush_ms: 5 }), fixed({}));
  p.drop = (n) => n === 1;
  for (let i = 0; i < 3; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  p.clock.now = 5;
  p.clientFec?.onTimer(5);
  assert.deepEqual(p.delivered, [0, 2], 'stretched: no repair yet');
  assert.equal(p.clientFec?.nextDeadline(), 20);
  p.clock.now = 20;
  p.clientFec?.onTimer(20);
  assert.deepEqual(p.delivered, [0, 2, 1]);
});

test('packets FEC delivers pass the tunnel receive checks (spoofed source dropped)', async () => {
  const p = await pair(fixed({ schemes: ['xor'] }), fixed({}));
  // The client's egress check would refuse a foreign source, so hand the FEC sender one directly.
  const spoofed = packet(7, '10.9.9.9');
  p.clientFec?.encapsulate(spoofed, 0, spoofed.length);
  assert.deepEqual(p.delivered, []);
  assert.equal(p.server.stats.droppedSource, 1);
});

test('without the proxy agreeing nothing changes: plain context 0, no FEC context', async () => {
  const p = await pair(fixed({}), parseFecConfig({ enabled: false }));
  assert.equal(p.clientFec, undefined);
  for (let i = 0; i < 20; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  assert.ok(p.clientContexts.every((c) => c === 0));
  assert.equal(p.delivered.length, 20);
});

test('adaptive mode sends plain context 0 until loss is observed', async () => {
  const p = await pair(parseFecConfig({ enabled: true }), parseFecConfig({ enabled: true }));
  for (let i = 0; i < 20; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  assert.ok(p.clientContexts.every((c) => c === 0));
  assert.equal(p.clientFec?.metrics.packetsUnprotected, 20);
  // 10% of QUIC datagrams lost: the controller turns repair on for the next block.
  p.clientFec?.observe({ datagramsSent: 1000, datagramsLost: 100 });
  p.clientContexts.length = 0;
  for (let i = 20; i < 40; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  assert.ok(p.clientContexts.some((c) => c === p.clientFec?.fec.context));
  assert.ok((p.clientFec?.metrics.currentRatio ?? 0) > 0);
});

test('a block the flush timer closes early gets repair in proportion to its size', async () => {
  const p = await pair(fixed({ schemes: ['rs'], max_repair: 4 }), fixed({ max_repair: 4 }));
  const ctx = p.clientFec?.fec.context;
  for (let i = 0; i < 3; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  p.clientFec?.onTimer(5);
  // 3 data packets with a plan of 4 repair per 10: ceil(3 · 4 / 10) = 2 repair packets.
  assert.equal(p.clientFec?.metrics.repairPacketsSent, 2);
  assert.equal(p.clientContexts.filter((c) => c === ctx).length, 5);
  // A full block carries the whole plan, and any 4 losses in it are recovered.
  p.drop = (n) => n >= 5 && n < 9;
  for (let i = 3; i < 13; i++) p.client.sendPacket(packet(i), 0, packet(i).length);
  assert.equal(p.clientFec?.metrics.repairPacketsSent, 6);
  assert.deepEqual(
    [...new Set(p.delivered)].sort((a, b) => a - b),
    Array.from({ length: 13 }, (_, i) => i),
  );
});

test('the proxy answers any request field without throwing, and only with what was offered', () => {
  const cfg = parseFecConfig({ enabled: true });
  const member = fc
    .tuple(
      fc.constantFrom('rs', 'xor', 'zz', '1x', '"rs"'),
      fc.array(fc.tuple(fc.constantFrom('k', 'm', 'ctx', 'q'), fc.integer({ min: -3, max: 300 })), {
        maxLength: 4,
      }),
    )
    .map(([s, ps]) => s + ps.map(([k, v]) => `;${k}=${v}`).join(''));
  const value = fc.oneof(
    fc.array(member, { maxLength: 3 }).map((ms) => ms.join(', ')),
    fc.string({ maxLength: 40 }),
  );
  fc.assert(
    fc.property(value, (v) => {
      const r = proxyFecChoice([['masque-fec', v]], cfg);
      if (r === undefined) return;
      assert.ok(r.agreement.context % 2 === 0 && r.agreement.k <= 10 && r.agreement.m <= 4);
      assert.match(v, new RegExp(`${r.agreement.scheme};`));
    }),
    { numRuns: 500 },
  );
});
