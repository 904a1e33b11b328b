// The FEC engine across real UDP sockets and the impairment proxy: a flow through 5% random loss
// loses about 5% without FEC and well under 1% with Reed–Solomon 10+2. (The full tunnel version
// of this lives in the loss benchmark; this one pins the two pieces owned here together.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { parseFecConfig } from '../../dataplane/fec/config.js';
import type { FecSendSink } from '../../dataplane/fec/sender.js';
import { FecTunnel } from '../../dataplane/fec/tunnel.js';
import { startImpairProxy } from './proxy.js';
import { settle } from './settle.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PLAIN = 0; // stands in for context 0
const FEC = 2; // stands in for the negotiated FEC context

async function socket(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

async function deliveredLoss(withFec: boolean): Promise<number> {
  const rx = await socket();
  const proxy = await startImpairProxy({
    listen: '127.0.0.1:0',
    target: `127.0.0.1:${rx.address().port}`,
    up: { loss: 0.05 },
    seed: 5,
  });
  const tx = await socket();
  const n = 3000;
  try {
    const config = parseFecConfig({ enabled: true, adaptive: false });
    const agreement = { scheme: 'rs' as const, k: 10, m: 2, context: FEC };
    const a = new FecTunnel({ agreement, config, maxPacketSize: 200 });
    const b = new FecTunnel({ agreement, config, maxPacketSize: 200 });
    const seen = new Set<number>();
    const record = (p: Uint8Array) => seen.add(new DataView(p.buffer, p.byteOffset).getUint32(0));
    rx.on('message', (msg: Buffer) => {
      const body = msg.subarray(1);
      if (msg[0] === PLAIN) record(body);
      else b.receive(body, 0, record);
    });
    const out = (ctx: number, ...parts: Uint8Array[]) =>
      tx.send([Uint8Array.of(ctx), ...parts], proxy.address.port, '127.0.0.1');
    const sink: FecSendSink = {
      sendPlain: (p) => out(PLAIN, p),
      sendFec: (h, body) => out(FEC, Buffer.from(h), Buffer.from(body)),
    };
    for (let i = 0; i < n; i++) {
      const p = new Uint8Array(200);
      new DataView(p.buffer).setUint32(0, i);
      if (withFec) a.send(p, i, sink);
      else sink.sendPlain(p);
      if (i % 100 === 99) await sleep(2);
    }
    a.flush(sink);
    // On a loaded machine the proxy may still be draining its socket: wait until nothing moves.
    await settle(() => proxy.stats().up.packets + seen.size);
    return 1 - seen.size / n;
  } finally {
    await new Promise<void>((r) => tx.close(() => r()));
    await proxy.close();
    await new Promise<void>((r) => rx.close(() => r()));
  }
}

test('5% random loss through the proxy: RS 10+2 brings delivered loss well below the link', async () => {
  const without = await deliveredLoss(false);
  const withFec = await deliveredLoss(true);
  assert.ok(without > 0.035 && without < 0.065, `without FEC: ${without}`);
  assert.ok(withFec < 0.01, `with FEC: ${withFec}`);
  assert.ok(withFec < without / 5);
});
