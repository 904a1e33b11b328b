// Sender and receiver together: what leaves one engine, minus an erasure pattern, enters the other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { FecScheme } from './code.js';
import { decodeFecHeader, encodeFecHeader } from './header.js';
import { FecReceiver } from './receiver.js';
import { FecSender, type FecSendSink } from './sender.js';

interface Wire {
  plain: Uint8Array[];
  fec: Uint8Array[];
}

function collector(): { wire: Wire; sink: FecSendSink } {
  const wire: Wire = { plain: [], fec: [] };
  return {
    wire,
    sink: {
      sendPlain: (p) => wire.plain.push(p),
      sendFec: (h, b) => {
        const out = new Uint8Array(h.length + b.length);
        out.set(h);
        out.set(b, h.length);
        wire.fec.push(out);
      },
    },
  };
}

const hex = (p: Uint8Array) => Buffer.from(p).toString('hex');

/** A packet whose bytes name its sequence number, so every packet is distinct. */
function packet(seq: number, len: number): Uint8Array {
  const p = new Uint8Array(Math.max(len, 4));
  new DataView(p.buffer).setUint32(0, seq);
  for (let i = 4; i < p.length; i++) p[i] = (seq * 31 + i) & 0xff;
  return p;
}

const scenario = fc.record({
  scheme: fc.constantFrom<FecScheme>('xor', 'rs'),
  k: fc.integer({ min: 1, max: 12 }),
  m: fc.integer({ min: 1, max: 4 }),
  lengths: fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 80 }),
  lossSeed: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
    minLength: 400,
    maxLength: 400,
  }),
  lossRate: fc.constantFrom(0, 0.05, 0.2, 0.5),
  // A quiet gap after some packets exercises the flush timer (short blocks).
  gaps: fc.array(fc.boolean(), { minLength: 80, maxLength: 80 }),
  swap: fc.boolean(),
});

test('through sender and receiver: every block with ≤ m losses is delivered whole; nothing else is invented or repeated', () => {
  fc.assert(
    fc.property(scenario, (s) => {
      const m = s.scheme === 'xor' ? 1 : s.m;
      const sender = new FecSender({
        scheme: s.scheme,
        maxK: s.k,
        maxM: m,
        maxPacketSize: 200,
        flushDelayMs: 5,
      });
      const { wire, sink } = collector();
      const sent = s.lengths.map((len, i) => packet(i, len));
      let now = 0;
      sent.forEach((p, i) => {
        sender.send(p, now, sink);
        now += s.gaps[i] ? 10 : 0.1;
        const due = sender.nextDeadline();
        if (due !== undefined && due <= now) sender.onTimer(now, sink);
      });
      sender.flush(sink);
      assert.equal(wire.plain.length, 0);

      // Group by block to know which blocks lost at most m symbols.
      const lost = wire.fec.map((_, i) => s.lossSeed[i % 400] < s.lossRate);
      const blocks = new Map<number, { k: number; m: number; lost: number; data: string[] }>();
      wire.fec.forEach((payload, i) => {
        const h = decodeFecHeader(payload);
        const b = blocks.get(h.blockId) ?? { k: 0, m: 0, lost: 0, data: [] };
        if (h.index >= h.k) {
          b.k = h.k;
          b.m = h.m;
        } else {
          b.data.push(hex(payload.subarray(6)));
        }
        if (lost[i]) b.lost++;
        blocks.set(h.blockId, b);
      });

      const arriving = wire.fec.filter((_, i) => !lost[i]);
      if (s.swap) {
        // Local reordering: swap neighbours pairwise.
        for (let i = 0; i + 1 < arriving.length; i += 2) {
          [arriving[i], arriving[i + 1]] = [arriving[i + 1], arriving[i]];
        }
      }
      const receiver = new FecReceiver({
        scheme: s.scheme,
        maxK: s.k,
        maxM: m,
        maxPacketSize: 200,
      });
      const delivered: string[] = [];
      for (const payload of arriving) receiver.receive(payload, 0, (p) => delivered.push(hex(p)));

      const original = new Set(sent.map(hex));
      assert.equal(new Set(delivered).size, delivered.length, 'no packet delivered twice');
      for (const d of delivered) assert.ok(original.has(d), 'only packets that were sent');
      const got = new Set(delivered);
      for (const b of blocks.values()) {
        if (b.lost <= b.m) for (const d of b.data) assert.ok(got.has(d), 'recoverable block whole');
      }
      assert.equal(receiver.metrics.malformedDropped, 0);
    }),
    { numRuns: 200 },
  );
});

test('sender: FEC off sends every packet plainly on context 0 with zero overhead', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 4,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  sender.setPlan(4, 0);
  const { wire, sink } = collector();
  const p = packet(1, 50);
  sender.send(p, 0, sink);
  assert.equal(wire.plain[0], p, 'the very same buffer, untouched');
  assert.equal(wire.fec.length, 0);
  assert.equal(sender.metrics.overheadBytes, 0);
  assert.equal(sender.metrics.currentRatio, 0);
  assert.equal(sender.nextDeadline(), undefined);
});

test('sender: a full block emits k data then m repair packets right after', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 3,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 3; i++) sender.send(packet(i, 10 + i * 10), 0, sink);
  const hs = wire.fec.map(decodeFecHeader);
  assert.deepEqual(
    hs.map((h) => [h.blockId, h.index, h.k, h.m]),
    [
      [0, 0, 3, 2],
      [0, 1, 3, 2],
      [0, 2, 3, 2],
      [0, 3, 3, 2],
      [0, 4, 3, 2],
    ],
  );
  // Repair symbol = 2-byte length + longest packet (30 bytes).
  assert.equal(wire.fec[3].length, 6 + 2 + 30);
  assert.equal(sender.nextDeadline(), undefined);
  assert.equal(sender.metrics.overheadBytes, 3 * 6 + 2 * (6 + 32));
});

test('stretched flush: a block too short for one repair within the plan waits for more packets', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 10,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
    maxFlushDelayMs: 20,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 3; i++) sender.send(packet(i, 20), 100 + i, sink);
  sender.onTimer(105, sink);
  // 3 packets × m 2 < k 10: one repair would be 33% against a 20% plan, so the block waits.
  assert.equal(wire.fec.length, 3, 'no repair at the ordinary deadline');
  assert.equal(sender.nextDeadline(), 120, 'stretched to maxFlushDelayMs after the first packet');
  for (let i = 3; i < 10; i++) sender.send(packet(i, 20), 103 + i, sink);
  // Full: the planned 10 + 2, at once.
  assert.equal(wire.fec.length, 12);
  const repair = decodeFecHeader(wire.fec[11]);
  assert.deepEqual([repair.index, repair.k, repair.m], [11, 10, 2]);
  assert.equal(sender.nextDeadline(), undefined);

  // A quiet block is not held forever: at the stretched deadline it closes with what it has.
  sender.send(packet(10, 20), 200, sink);
  sender.onTimer(205, sink);
  assert.equal(wire.fec.length, 13, 'stretched, not closed');
  sender.onTimer(220, sink);
  assert.equal(wire.fec.length, 14, 'closed at 20 ms with its one repair');

  // A block long enough at the ordinary deadline is not stretched: 5 × 2 ≥ 10.
  for (let i = 0; i < 5; i++) sender.send(packet(20 + i, 20), 300 + i, sink);
  sender.onTimer(305, sink);
  assert.equal(wire.fec.length, 14 + 5 + 1);
  assert.throws(
    () =>
      new FecSender({
        scheme: 'rs',
        maxK: 10,
        maxM: 2,
        maxPacketSize: 100,
        flushDelayMs: 5,
        maxFlushDelayMs: 4,
      }),
    /below the flush delay/,
  );
});

test('flush timer: a quiet flow closes its half-full block at the deadline, not before', () => {
  const sender = new FecSender({
    scheme: 'xor',
    maxK: 10,
    maxM: 1,
    maxPacketSize: 100,
    flushDelayMs: 4,
  });
  const { wire, sink } = collector();
  sender.send(packet(0, 20), 100, sink);
  sender.send(packet(1, 20), 101, sink);
  assert.equal(sender.nextDeadline(), 104, 'deadline counts from the first packet of the block');
  sender.onTimer(103.9, sink);
  assert.equal(wire.fec.length, 2, 'no repair before the deadline');
  sender.onTimer(104, sink);
  assert.equal(wire.fec.length, 3);
  const repair = decodeFecHeader(wire.fec[2]);
  assert.deepEqual([repair.index, repair.k, repair.m], [2, 2, 1], 'repair carries the final k');
  assert.equal(sender.nextDeadline(), undefined);
  sender.send(packet(2, 20), 200, sink);
  assert.equal(decodeFecHeader(wire.fec[3]).blockId, 1, 'next packet opens the next block');
  assert.equal(sender.nextDeadline(), 204);

  // And the receiver recovers a loss in the short block.
  const receiver = new FecReceiver({ scheme: 'xor', maxK: 10, maxM: 1, maxPacketSize: 100 });
  const out: string[] = [];
  receiver.receive(wire.fec[0], 0, (p) => out.push(hex(p)));
  receiver.receive(wire.fec[2], 0, (p) => out.push(hex(p)));
  assert.deepEqual(out, [hex(packet(0, 20)), hex(packet(1, 20))]);
  assert.equal(receiver.metrics.packetsRecovered, 1);
});

test('receiver: duplicates and the original arriving after its recovery are dropped and counted', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 4,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 4; i++) sender.send(packet(i, 40), 0, sink);
  const receiver = new FecReceiver({ scheme: 'rs', maxK: 4, maxM: 2, maxPacketSize: 100 });
  const out: string[] = [];
  const rx = (p: Uint8Array) => receiver.receive(p, 0, (x) => out.push(hex(x)));
  rx(wire.fec[0]);
  rx(wire.fec[0]);
  assert.equal(receiver.metrics.duplicatesDropped, 1);
  rx(wire.fec[1]);
  rx(wire.fec[4]);
  rx(wire.fec[5]); // data 2 and 3 lost: two repairs recover both
  assert.equal(receiver.metrics.packetsRecovered, 2);
  rx(wire.fec[3]); // the original of a recovered packet, late
  rx(wire.fec[5]); // a repeated repair
  assert.equal(receiver.metrics.duplicatesDropped, 3);
  assert.deepEqual(out.sort(), [0, 1, 2, 3].map((i) => hex(packet(i, 40))).sort());
});

test('receiver: blocks behind the window are late and dropped; counted unrecoverable once', () => {
  const sender = new FecSender({
    scheme: 'xor',
    maxK: 2,
    maxM: 1,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 2 * 40; i++) sender.send(packet(i, 30), 0, sink);
  const receiver = new FecReceiver({
    scheme: 'xor',
    maxK: 2,
    maxM: 1,
    maxPacketSize: 100,
    windowBlocks: 8,
  });
  let delivered = 0;
  // Block 0 loses both data packets (unrecoverable); then blocks 1..39 arrive whole.
  receiver.receive(wire.fec[2], 0, () => delivered++);
  for (let i = 3; i < wire.fec.length; i++) receiver.receive(wire.fec[i], 0, () => delivered++);
  assert.equal(delivered, 78);
  assert.equal(receiver.metrics.unrecoverableBlocks, 1);
  receiver.receive(wire.fec[0], 0, () => delivered++); // block 0 is 39 blocks old now
  assert.equal(delivered, 78);
  assert.equal(receiver.metrics.lateDropped, 1);
});

test('receiver: buffered memory stays under its bound whatever the loss pattern', () => {
  const k = 10;
  const m = 3;
  const sender = new FecSender({
    scheme: 'rs',
    maxK: k,
    maxM: m,
    maxPacketSize: 1280,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 2000; i++) sender.send(packet(i, 1280), 0, sink);
  const receiver = new FecReceiver({
    scheme: 'rs',
    maxK: k,
    maxM: m,
    maxPacketSize: 1280,
    windowBlocks: 256,
    maxBufferedBytes: 64 * 1024,
  });
  let peak = 0;
  // Drop every repair and one data packet per block: every block stays open, hungry for buffers.
  wire.fec.forEach((p, i) => {
    const h = decodeFecHeader(p);
    if (h.index >= h.k || h.index === 0) return;
    receiver.receive(p, i, () => undefined);
    peak = Math.max(peak, receiver.bufferedBytes);
  });
  assert.ok(peak <= receiver.maxBufferedBytes, `${peak} > ${receiver.maxBufferedBytes}`);
  assert.ok(receiver.maxBufferedBytes <= 64 * 1024);
  assert.ok(receiver.metrics.blocksEvictedForMemory > 0);
  receiver.onTimer(1e9);
  assert.equal(receiver.nextDeadline(), undefined, 'every open block given up after the hold time');
});

test('receiver: contradicting symbols in one block never produce a packet', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 3,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 3; i++) sender.send(packet(i, 40), 0, sink);
  const receiver = new FecReceiver({ scheme: 'rs', maxK: 3, maxM: 2, maxPacketSize: 100 });
  const out: string[] = [];
  receiver.receive(wire.fec[0], 0, (p) => out.push(hex(p)));
  // A forged repair claiming a different k for the same block poisons it.
  const forged = wire.fec[3].slice();
  forged.set(encodeFecHeader({ scheme: 1, blockId: 0, index: 2, k: 2, m: 2 }));
  receiver.receive(wire.fec[3], 0, (p) => out.push(hex(p)));
  receiver.receive(forged, 0, (p) => out.push(hex(p)));
  receiver.receive(wire.fec[4], 0, (p) => out.push(hex(p)));
  assert.deepEqual(out, [hex(packet(0, 40))]);
  assert.ok(receiver.metrics.malformedDropped >= 1);
});

test('receiver: hostile payloads are counted, never thrown', () => {
  const receiver = new FecReceiver({ scheme: 'rs', maxK: 8, maxM: 4, maxPacketSize: 64 });
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 80 }), { maxLength: 60 }), (payloads) => {
      for (const p of payloads) receiver.receive(p, 0, () => undefined);
    }),
    { numRuns: 300 },
  );
});

test('receiver: a repair whose bytes were altered is caught before anything is delivered', () => {
  const sender = new FecSender({
    scheme: 'rs',
    maxK: 4,
    maxM: 2,
    maxPacketSize: 100,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 4; i++) sender.send(packet(i, 20 + i), 0, sink);
  let caught = 0;
  // Flip one byte anywhere in the first repair symbol; the receiver then misses data packets 0 and 1.
  for (let at = 6; at < wire.fec[4].length; at++) {
    const bad = wire.fec[4].slice();
    bad[at] ^= 0x40;
    const receiver = new FecReceiver({ scheme: 'rs', maxK: 4, maxM: 2, maxPacketSize: 100 });
    const out: string[] = [];
    for (const p of [wire.fec[2], wire.fec[3], bad, wire.fec[5]])
      receiver.receive(p, 0, (x) => out.push(hex(x)));
    const recovered = out.slice(2);
    // Corruption either lands in padding/length (detected, nothing delivered) or in packet bytes,
    // which no erasure code can detect; it must never produce a packet of the wrong length.
    if (recovered.length === 0) caught++;
    else
      for (const [i, r] of recovered.entries())
        assert.equal(r.length, hex(packet(i, 20 + i)).length);
  }
  // Symbol bytes 0–1 (length prefix) and 22–24 (padding of both lost packets) are checked.
  assert.equal(caught, 5);
});

test('metrics: every counter has a help text, and sessions add up', async () => {
  const { FEC_METRIC_HELP, addFecMetrics, newFecMetrics } = await import('./metrics.js');
  assert.deepEqual(Object.keys(FEC_METRIC_HELP).sort(), Object.keys(newFecMetrics()).sort());
  const a = newFecMetrics();
  const b = newFecMetrics();
  a.packetsRecovered = 3;
  a.currentRatio = 0.2;
  b.packetsRecovered = 4;
  b.currentRatio = 0.1;
  const total = addFecMetrics(addFecMetrics(newFecMetrics(), a), b);
  assert.equal(total.packetsRecovered, 7);
  assert.equal(total.currentRatio, 0.2);
});

test('receiver: a data packet longer than its MTU is delivered but not buffered', () => {
  const big = new FecSender({
    scheme: 'xor',
    maxK: 3,
    maxM: 1,
    maxPacketSize: 500,
    flushDelayMs: 5,
  });
  const { wire, sink } = collector();
  for (let i = 0; i < 3; i++) big.send(packet(i, 400), 0, sink);
  const receiver = new FecReceiver({ scheme: 'xor', maxK: 3, maxM: 1, maxPacketSize: 100 });
  const out: string[] = [];
  for (const p of [wire.fec[0], wire.fec[2], wire.fec[3]]) {
    receiver.receive(p, 0, (x) => out.push(hex(x)));
  }
  assert.deepEqual(out, [hex(packet(0, 400)), hex(packet(2, 400))]);
  assert.ok(receiver.metrics.malformedDropped >= 1);
  assert.equal(receiver.metrics.packetsRecovered, 0);
});

test('receiver: well-formed headers over arbitrary bodies never throw', () => {
  const item = fc
    .record({
      scheme: fc.constantFrom(0 as const, 1 as const),
      blockId: fc.integer({ min: 0, max: 20 }),
      k: fc.integer({ min: 1, max: 10 }),
      body: fc.uint8Array({ minLength: 1, maxLength: 150 }),
    })
    .chain((h) =>
      fc
        .integer({ min: 1, max: h.scheme === 0 ? 1 : 6 })
        .chain((m) =>
          fc.integer({ min: 0, max: h.k + m - 1 }).map((index) => ({ ...h, m, index })),
        ),
    );
  fc.assert(
    fc.property(fc.array(item, { maxLength: 80 }), fc.boolean(), (items, rs) => {
      const receiver = new FecReceiver({
        scheme: rs ? 'rs' : 'xor',
        maxK: 8,
        maxM: rs ? 4 : 1,
        maxPacketSize: 64,
        windowBlocks: 4,
      });
      for (const { body, ...h } of items) {
        const p = new Uint8Array(6 + body.length);
        p.set(encodeFecHeader(h));
        p.set(body, 6);
        receiver.receive(p, 0, () => undefined);
      }
      receiver.onTimer(1e6);
      assert.ok(receiver.bufferedBytes <= receiver.maxBufferedBytes);
    }),
    { numRuns: 500 },
  );
});
