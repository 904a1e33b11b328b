// Two FEC tunnels over a simulated lossy link: the delivered loss the targets talk about,
// measured on the engine alone (the socket-level version runs through bench/impair).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFecConfig } from './config.js';
import type { FecAgreement } from './negotiation.js';
import type { FecSendSink } from './sender.js';
import { FecTunnel } from './tunnel.js';

/** Deterministic Bernoulli loss (a linear congruential generator is plenty for a test). */
function lossy(p: number, seed: number): () => boolean {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 < p;
  };
}

interface Outcome {
  deliveredLoss: number;
  overhead: number;
  ratio: number;
}

function run(agreement: FecAgreement | undefined, adaptive: boolean, p: number): Outcome {
  const config = parseFecConfig({ enabled: true, adaptive, max_redundancy_percent: 25 });
  const a = agreement && new FecTunnel({ agreement, config, maxPacketSize: 200 });
  const b = agreement && new FecTunnel({ agreement, config, maxPacketSize: 200 });
  const drop = lossy(p, 1234);
  const n = 20_000;
  const received = new Set<number>();
  let wireBytes = 0;
  let dataBytes = 0;
  let sent = 0;
  let lost = 0;
  let now = 0;
  const seqOf = (x: Uint8Array) => new DataView(x.buffer, x.byteOffset).getUint32(0);
  const sink: FecSendSink = {
    sendPlain: (pkt) => {
      sent++;
      wireBytes += pkt.length;
      if (drop()) lost++;
      else received.add(seqOf(pkt));
    },
    sendFec: (h, body) => {
      sent++;
      wireBytes += h.length + body.length;
      if (drop()) {
        lost++;
        return;
      }
      const payload = new Uint8Array(h.length + body.length);
      payload.set(h);
      payload.set(body, h.length);
      b?.receive(payload, now, (x) => received.add(seqOf(x)));
    },
  };
  const pkt = new Uint8Array(200); // loss statistics do not depend on size
  for (let i = 0; i < n; i++) {
    new DataView(pkt.buffer).setUint32(0, i);
    dataBytes += pkt.length;
    now += 0.05;
    if (a === undefined) sink.sendPlain(pkt.slice());
    else {
      a.send(pkt, now, sink);
      const due = a.nextDeadline();
      if (due !== undefined && due <= now) a.onTimer(now, sink);
      if (i % 250 === 249) a.observe({ datagramsSent: sent, datagramsLost: lost });
    }
  }
  a?.flush(sink);
  return {
    deliveredLoss: 1 - received.size / n,
    overhead: wireBytes / dataBytes - 1,
    ratio: a?.metrics.currentRatio ?? 0,
  };
}

const RS: FecAgreement = { scheme: 'rs', k: 10, m: 4, context: 2 };
const XOR: FecAgreement = { scheme: 'xor', k: 10, m: 1, context: 2 };

test('5% random loss: fixed RS 10+2 delivers under 1% loss at ≤ 25% overhead', () => {
  const off = run(undefined, false, 0.05);
  const rs = run({ ...RS, m: 2 }, false, 0.05);
  assert.ok(Math.abs(off.deliveredLoss - 0.05) < 0.005, `no FEC: ${off.deliveredLoss}`);
  assert.ok(rs.deliveredLoss < 0.01, `RS: ${rs.deliveredLoss}`);
  assert.ok(rs.overhead <= 0.25, `overhead ${rs.overhead}`);
});

test('5% random loss, adaptive RS within a 25% bound: delivered loss well below the link', () => {
  const rs = run(RS, true, 0.05);
  assert.ok(rs.deliveredLoss < 0.01, `adaptive RS: ${rs.deliveredLoss}`);
  assert.ok(rs.overhead <= 0.26, `overhead ${rs.overhead}`);
  assert.ok(rs.ratio > 0);
});

test('1% random loss, adaptive: delivered loss at most 0.05%', () => {
  const rs = run(RS, true, 0.01);
  assert.ok(rs.deliveredLoss <= 0.0005, `adaptive RS: ${rs.deliveredLoss}`);
  const xor = run(XOR, true, 0.01);
  assert.ok(xor.deliveredLoss < 0.003, `adaptive XOR: ${xor.deliveredLoss}`);
});

test('no loss, adaptive: no redundancy, overhead zero', () => {
  const rs = run(RS, true, 0);
  assert.equal(rs.deliveredLoss, 0);
  assert.equal(rs.overhead, 0);
  assert.equal(rs.ratio, 0);
});
