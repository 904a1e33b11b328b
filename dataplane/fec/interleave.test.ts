// Interleaving: the sender fills D blocks in turn and holds a full block's repair for D − 1
// packets; the receiver is the unchanged one (an interleaving sender needs nothing of its peer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FecScheme } from './code.js';
import { parseFecConfig } from './config.js';
import { decodeFecHeader } from './header.js';
import { FecReceiver } from './receiver.js';
import { FecSender, FecSenderError, type FecSendSink } from './sender.js';
import { FecTunnel } from './tunnel.js';

function collector(): { wire: Uint8Array[]; plain: Uint8Array[]; sink: FecSendSink } {
  const wire: Uint8Array[] = [];
  const plain: Uint8Array[] = [];
  return {
    wire,
    plain,
    sink: {
      sendPlain: (p) => plain.push(p),
      sendFec: (h, b) => {
        const out = new Uint8Array(h.length + b.length);
        out.set(h);
        out.set(b, h.length);
        wire.push(out);
      },
    },
  };
}

const hex = (p: Uint8Array): string => Buffer.from(p).toString('hex');

function packet(seq: number, len: number): Uint8Array {
  const p = new Uint8Array(Math.max(len, 4));
  new DataView(p.buffer).setUint32(0, seq);
  for (let i = 4; i < p.length; i++) p[i] = (seq * 29 + i) & 0xff;
  return p;
}

function receive(
  scheme: FecScheme,
  k: number,
  m: number,
  arriving: readonly Uint8Array[],
): { delivered: string[]; receiver: FecReceiver } {
  const receiver = new FecReceiver({ scheme, maxK: k, maxM: m, maxPacketSize: 300 });
  const delivered: string[] = [];
  for (const p of arriving) receiver.receive(p, 0, (d) => delivered.push(hex(d)));
  return { delivered, receiver };
}

test('interleaved: one burst of up to D consecutive datagrams anywhere loses nothing, even with XOR', () => {
  fc.assert(
    fc.property(
      fc.record({
        scheme: fc.constantFrom<FecScheme>('xor', 'rs'),
        k: fc.integer({ min: 1, max: 10 }),
        m: fc.integer({ min: 1, max: 3 }),
        depth: fc.integer({ min: 2, max: 8 }),
        rounds: fc.integer({ min: 1, max: 4 }),
        lengths: fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 320, maxLength: 320 }),
        burstAt: fc.double({ min: 0, max: 1, noNaN: true }),
        burstLen: fc.double({ min: 0, max: 1, noNaN: true }),
      }),
      (s) => {
        const m = s.scheme === 'xor' ? 1 : s.m;
        const sender = new FecSender({
          scheme: s.scheme,
          maxK: s.k,
          maxM: m,
          maxPacketSize: 300,
          flushDelayMs: 1e6,
          interleave: s.depth,
        });
        const { wire, sink } = collector();
        // A steady flow: every block fills, then the tunnel closes (flush).
        const count = s.rounds * s.k * s.depth;
        const sent = Array.from({ length: count }, (_, i) => packet(i, s.lengths[i]));
        for (const p of sent) sender.send(p, 0, sink);
        sender.flush(sink);
        const len = 1 + Math.min(s.depth - 1, Math.floor(s.burstLen * s.depth));
        const at = Math.floor(s.burstAt * Math.max(1, wire.length - len + 1));
        const arriving = wire.filter((_, i) => i < at || i >= at + len);
        const { delivered, receiver } = receive(s.scheme, s.k, m, arriving);
        assert.equal(delivered.length, count, `burst of ${len} at ${at} of ${wire.length}`);
        assert.deepEqual(new Set(delivered), new Set(sent.map(hex)));
        assert.equal(receiver.metrics.unrecoverableBlocks, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('interleaved, any loss pattern: blocks with ≤ m losses come whole; nothing invented or repeated', () => {
  fc.assert(
    fc.property(
      fc.record({
        scheme: fc.constantFrom<FecScheme>('xor', 'rs'),
        k: fc.integer({ min: 1, max: 12 }),
        m: fc.integer({ min: 1, max: 4 }),
        depth: fc.integer({ min: 1, max: 6 }),
        lengths: fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 100 }),
        gaps: fc.array(fc.boolean(), { minLength: 100, maxLength: 100 }),
        lost: fc.array(fc.boolean(), { minLength: 300, maxLength: 300 }),
        planOff: fc.integer({ min: 0, max: 120 }),
      }),
      (s) => {
        const m = s.scheme === 'xor' ? 1 : s.m;
        const sender = new FecSender({
          scheme: s.scheme,
          maxK: s.k,
          maxM: m,
          maxPacketSize: 200,
          flushDelayMs: 5,
          interleave: s.depth,
        });
        const { wire, plain, sink } = collector();
        const sent = s.lengths.map((len, i) => packet(i, len));
        let now = 0;
        sent.forEach((p, i) => {
          // The adaptive controller may switch protection off mid-flow.
          if (i === s.planOff) sender.setPlan(s.k, 0);
          sender.send(p, now, sink);
          now += s.gaps[i] ? 10 : 0.1;
          const due = sender.nextDeadline();
          if (due !== undefined && due <= now) sender.onTimer(now, sink);
        });
        sender.flush(sink);
        assert.equal(sender.nextDeadline(), undefined);
        const blocks = new Map<number, { m: number; lost: number; data: string[] }>();
        wire.forEach((payload, i) => {
          const h = decodeFecHeader(payload);
          const b = blocks.get(h.blockId) ?? { m: 0, lost: 0, data: [] };
          if (h.index >= h.k) b.m = h.m;
          else b.data.push(hex(payload.subarray(6)));
          if (s.lost[i % 300]) b.lost++;
          blocks.set(h.blockId, b);
        });
        assert.equal(
          [...blocks.values()].reduce((n, b) => n + b.data.length, 0) + plain.length,
          sent.length,
          'every packet went out once, protected or plain',
        );
        const { delivered, receiver } = receive(
          s.scheme,
          s.k,
          m,
          wire.filter((_, i) => !s.lost[i % 300]),
        );
        assert.equal(new Set(delivered).size, delivered.length, 'no packet twice');
        const original = new Set(sent.map(hex));
        for (const d of delivered) assert.ok(original.has(d), 'only packets that were sent');
        const got = new Set(delivered);
        for (const b of blocks.values()) {
          if (b.lost <= b.m) for (const d of b.data) assert.ok(got.has(d), 'recoverable block');
        }
        assert.equal(receiver.metrics.malformedDropped, 0);
      },
    ),
    { numRuns: 300 },
  );
});

test('wire layout: blocks in turn, a full block’s repair one round later, deadlines per block', () => {
  const sender = new FecSender({
    scheme: 'xor',
    maxK: 2,
    maxM: 1,
    maxPacketSize: 100,
    flushDelayMs: 10,
    interleave: 3,
  });
  assert.equal(sender.interleave, 3);
  const { wire, sink } = collector();
  for (let i = 0; i < 7; i++) sender.send(packet(i, 20), i, sink);
  const layout = wire.map((p) => {
    const h = decodeFecHeader(p);
    return `${h.index < h.k ? 'd' : 'R'}${h.blockId}`;
  });
  // Packets 0..5 fill blocks 0, 1, 2 (two each); block 0's repair goes just before packet 6
  // (block 0's lane again, opening block 3), three datagrams after block 0's last packet.
  assert.deepEqual(layout, ['d0', 'd1', 'd2', 'd0', 'd1', 'd2', 'R0', 'd3']);
  // Blocks 1 and 2 are full and wait for their turn or their deadline (first packet + 10 ms).
  assert.equal(sender.nextDeadline(), 11);
  sender.onTimer(11, sink);
  assert.deepEqual(
    wire.slice(8).map((p) => decodeFecHeader(p).blockId),
    [1],
    'only the block whose deadline passed',
  );
  sender.flush(sink);
  assert.deepEqual(
    wire.slice(9).map((p) => {
      const h = decodeFecHeader(p);
      return [h.blockId, h.index, h.k];
    }),
    [
      [2, 2, 2],
      [3, 1, 1],
    ],
    'flush: oldest block first; block 3 closed with the one packet it had',
  );
  assert.equal(sender.nextDeadline(), undefined);
});

test('the same burst without interleaving loses data under XOR', () => {
  const run = (depth: number): number => {
    const sender = new FecSender({
      scheme: 'xor',
      maxK: 4,
      maxM: 1,
      maxPacketSize: 100,
      flushDelayMs: 1e6,
      interleave: depth,
    });
    const { wire, sink } = collector();
    for (let i = 0; i < 32; i++) sender.send(packet(i, 50), 0, sink);
    sender.flush(sink);
    // Three consecutive datagrams from the 11th on.
    const { delivered } = receive(
      'xor',
      4,
      1,
      wire.filter((_, i) => i < 10 || i >= 13),
    );
    return 32 - delivered.length;
  };
  assert.ok(run(1) >= 1, 'one block loses two or more: XOR cannot help');
  assert.equal(run(4), 0);
});

test('configuration: interleave is checked, defaults to 1, and reaches the tunnel’s sender', () => {
  assert.equal(parseFecConfig({}).interleave, 1);
  assert.throws(() => parseFecConfig({ interleave: 0 }), /interleave/);
  assert.throws(() => parseFecConfig({ interleave: 17 }), /interleave/);
  assert.throws(() => parseFecConfig({ interleave: 1.5 }), /interleave/);
  assert.throws(
    () =>
      new FecSender({
        scheme: 'rs',
        maxK: 4,
        maxM: 2,
        maxPacketSize: 100,
        flushDelayMs: 5,
        interleave: 0,
      }),
    FecSenderError,
  );
  const t = new FecTunnel({
    agreement: { scheme: 'rs', k: 8, m: 2, context: 2 },
    config: parseFecConfig({ enabled: true, interleave: 4 }),
    maxPacketSize: 1280,
  });
  assert.equal(t.sender.interleave, 4);
});
