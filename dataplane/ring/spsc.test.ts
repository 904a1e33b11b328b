import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import {
  createRing,
  RingConsumer,
  RingLayoutError,
  RingMonitor,
  RingProducer,
  type RingHandle,
} from './spsc.js';
import { RingGroupConsumer } from './group.js';
import { createRingPlane } from './plane.js';

// ---------------------------------------------------------------- producer thread (worker mode)

interface ProducerJob {
  ring: RingHandle;
  packets: number;
  /** 'wait': wait for space when full (no loss); 'drop': count a drop and move on. */
  full: 'wait' | 'drop';
}

/** Each packet: 4-byte sequence number, then (seq & 0xff) repeated to a length of 8 + seq % 300. */
function produce(job: ProducerJob): void {
  const p = new RingProducer(job.ring);
  for (let seq = 0; seq < job.packets; seq++) {
    let slot = p.reserve();
    while (slot === null) {
      if (job.full === 'drop') {
        p.countDrop();
        break;
      }
      p.waitForSpace(1000);
      slot = p.reserve();
    }
    if (slot === null) continue;
    const len = 8 + (seq % 300);
    slot[0] = seq >>> 24;
    slot[1] = (seq >>> 16) & 0xff;
    slot[2] = (seq >>> 8) & 0xff;
    slot[3] = seq & 0xff;
    slot.fill(seq & 0xff, 4, len);
    p.commit(len, seq ^ 0x5a5a);
  }
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === 'spsc-test-producer')
  produce((workerData as { job: ProducerJob }).job);

// ---------------------------------------------------------------- single thread

if (isMainThread) {
  test('layout is validated', () => {
    assert.throws(() => createRing({ slotCount: 6 }), RingLayoutError);
    assert.throws(() => createRing({ slotCount: 1 }), RingLayoutError);
    assert.throws(() => createRing({ slotCount: 8, slotBytes: 10 }), RingLayoutError);
    const a = createRing({ slotCount: 8 });
    const b = createRing({ slotCount: 16 });
    assert.throws(
      () => new RingConsumer({ ...a, slotCount: 16, buffer: a.buffer }),
      RingLayoutError,
    );
    assert.throws(() => new RingProducer({ ...b, buffer: a.buffer }), RingLayoutError);
  });

  test('slots are distinct, aligned views of slotBytes', () => {
    const h = createRing({ slotCount: 4, slotBytes: 100 });
    const p = new RingProducer(h);
    const offsets = new Set<number>();
    for (let i = 0; i < 4; i++) {
      const s = p.reserve();
      assert.ok(s);
      assert.equal(s.length, 100);
      assert.equal(s.byteOffset % 64, 0);
      offsets.add(s.byteOffset);
      assert.equal(p.reserve(), s, 'reserve without commit returns the same slot');
      p.commit(i);
    }
    assert.equal(offsets.size, 4);
    assert.equal(p.reserve(), null);
  });

  test('full ring: push fails and counts drops; nothing is overwritten', () => {
    const h = createRing({ slotCount: 4, slotBytes: 64 });
    const p = new RingProducer(h);
    const c = new RingConsumer(h);
    const pkt = new Uint8Array(64);
    for (let i = 0; i < 4; i++) {
      pkt[0] = i;
      assert.equal(p.push(pkt, 10 + i), true);
    }
    for (let i = 0; i < 3; i++) assert.equal(p.push(pkt, 1), false);
    assert.equal(new RingMonitor(h).drops(), 3);
    assert.equal(c.available(), 4);
    for (let i = 0; i < 4; i++) {
      assert.equal(c.slot(i)[0], i);
      assert.equal(c.length(i), 10 + i);
    }
    c.release(2);
    assert.equal(p.space(), 2);
    assert.equal(p.push(pkt, 1), true);
    assert.equal(new RingMonitor(h).depth(), 3);
    assert.throws(() => c.release(4), RangeError, 'cannot release more than available');
  });

  type Op =
    { kind: 'push'; len: number; tag: number } | { kind: 'pop' } | { kind: 'batch'; take: number };

  test('property: any interleaving behaves as a bounded FIFO with drop counting', () => {
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('push' as const),
        len: fc.integer({ min: 0, max: 64 }),
        tag: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
      }),
      fc.record({ kind: fc.constant('pop' as const) }),
      fc.record({ kind: fc.constant('batch' as const), take: fc.integer({ min: 0, max: 9 }) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2, 4, 8),
        fc.array(op, { maxLength: 200 }),
        (slotCount, ops: Op[]) => {
          const h = createRing({ slotCount, slotBytes: 64 });
          const p = new RingProducer(h);
          const c = new RingConsumer(h);
          const model: { id: number; len: number; tag: number }[] = [];
          let next = 0;
          let drops = 0;
          const dst = new Uint8Array(64);
          for (const o of ops) {
            if (o.kind === 'push') {
              const slot = p.reserve();
              if (model.length === slotCount) {
                assert.equal(slot, null);
                p.countDrop();
                drops++;
                continue;
              }
              assert.ok(slot);
              slot.fill(next & 0xff, 0, o.len);
              p.commit(o.len, o.tag);
              model.push({ id: next++ & 0xff, len: o.len, tag: o.tag });
            } else if (o.kind === 'pop') {
              const n = c.pop(dst);
              const want = model.shift();
              if (want === undefined) assert.equal(n, -1);
              else {
                assert.equal(n, want.len);
                for (let i = 0; i < n; i++) assert.equal(dst[i], want.id);
              }
            } else {
              const n = c.available();
              assert.equal(n, model.length);
              const take = Math.min(n, o.take);
              for (let i = 0; i < take; i++) {
                assert.equal(c.length(i), model[i].len);
                assert.equal(c.tag(i), model[i].tag);
                if (model[i].len > 0) assert.equal(c.slot(i)[0], model[i].id);
              }
              c.release(take);
              model.splice(0, take);
            }
            assert.equal(c.depth(), model.length);
          }
          assert.equal(c.drops(), drops);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('wrap-around: counters crossing 2^31 and indices crossing the end', () => {
    const h = createRing({ slotCount: 8, slotBytes: 64 });
    // Start both counters just below the Int32 limit (HEAD is word 0, TAIL word 16).
    const words = new Int32Array(h.buffer, 0, 32);
    words[0] = words[16] = 2 ** 31 - 5;
    const p = new RingProducer(h);
    const c = new RingConsumer(h);
    const src = new Uint8Array(64);
    const dst = new Uint8Array(64);
    for (let i = 0; i < 1000; i++) {
      const burst = (i % 8) + 1;
      for (let k = 0; k < burst; k++) {
        src[0] = (i + k) & 0xff;
        assert.equal(p.push(src, 1 + k), true);
      }
      assert.equal(c.available(), burst);
      for (let k = 0; k < burst; k++) {
        assert.equal(c.pop(dst), 1 + k);
        assert.equal(dst[0], (i + k) & 0xff);
      }
    }
    assert.ok(words[0] < 0, 'head wrapped past 2^31');
    assert.equal(c.available(), 0);
    assert.equal(c.drops(), 0);
  });

  // ---------------------------------------------------------------- two threads

  async function runTwoThreads(
    packets: number,
    full: 'wait' | 'drop',
  ): Promise<{ received: number; drops: number }> {
    const ring = createRing({ slotCount: 256, slotBytes: 512 });
    const c = new RingConsumer(ring);
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { role: 'spsc-test-producer', job: { ring, packets, full } },
    });
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
    let done = false;
    void exited.then(() => (done = true));
    let expected = 0;
    let received = 0;
    // Consume on this thread's event loop: waitAsync, so the worker's exit event can arrive.
    while (true) {
      const n = c.available();
      if (n === 0) {
        if (done && c.available() === 0) break;
        await c.waitAsync(20);
        continue;
      }
      for (let i = 0; i < n; i++) {
        const s = c.slot(i);
        const seq = ((s[0] << 24) | (s[1] << 16) | (s[2] << 8) | s[3]) >>> 0;
        assert.ok(seq >= expected, `reordered: ${seq} after ${expected}`);
        if (full === 'wait') assert.equal(seq, expected, 'lost a packet without a drop');
        const len = c.length(i);
        assert.equal(len, 8 + (seq % 300));
        assert.equal(c.tag(i), seq ^ 0x5a5a);
        if (s[4] !== (seq & 0xff) || s[len - 1] !== (seq & 0xff))
          assert.fail(`payload of ${seq} torn`);
        expected = seq + 1;
        received++;
      }
      c.release(n);
    }
    assert.equal(await exited, 0);
    return { received, drops: c.drops() };
  }

  test('two threads: 1,000,000 packets, in order, none lost (producer waits when full)', async () => {
    const { received, drops } = await runTwoThreads(1_000_000, 'wait');
    assert.equal(drops, 0);
    assert.equal(received, 1_000_000);
  });

  test('two threads: producer drops when full; every missing packet is a counted drop', async () => {
    const { received, drops } = await runTwoThreads(300_000, 'drop');
    assert.equal(received + drops, 300_000);
  });

  test('blocking wait wakes on commit from another thread; times out otherwise', async () => {
    const ring = createRing({ slotCount: 4, slotBytes: 64 });
    const c = new RingConsumer(ring);
    const t0 = Date.now();
    assert.equal(c.wait(30), false);
    assert.ok(Date.now() - t0 >= 25, 'waited for the timeout');
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { role: 'spsc-test-producer', job: { ring, packets: 1, full: 'wait' } },
    });
    const t1 = Date.now();
    assert.equal(c.wait(5000), true);
    assert.ok(Date.now() - t1 < 4000, 'woken by the commit, not the timeout');
    await new Promise((resolve) => worker.once('exit', resolve));
  });

  test('ring plane + group consumer: round-robin over shard rings, one doorbell', () => {
    const plane = createRingPlane({ shards: 3, slotCount: 8, slotBytes: 64 });
    assert.equal(plane.toShard.length, 3);
    assert.equal(plane.toWriter.length, 3);
    const producers = plane.toWriter.map((h) => new RingProducer(h));
    const group = new RingGroupConsumer(plane.toWriter, plane.writerBell);
    const src = new Uint8Array(64);
    for (let s = 0; s < 3; s++)
      for (let k = 0; k < 5; k++) {
        src[0] = s;
        src[1] = k;
        producers[s].push(src, 2);
      }
    assert.equal(group.available(), 15);
    const order: string[] = [];
    const visit = (slot: Uint8Array, _len: number, ring: number) => {
      assert.equal(slot[0], ring);
      order.push(`${ring}.${slot[1]}`);
    };
    assert.equal(group.drain(visit, 2), 6);
    assert.deepEqual(order, ['0.0', '0.1', '1.0', '1.1', '2.0', '2.1']);
    order.length = 0;
    group.drain(visit, 2);
    assert.deepEqual(order, ['1.2', '1.3', '2.2', '2.3', '0.2', '0.3'], 'start rotates');
    assert.equal(group.wait(0), true);
    group.drain(() => {}, 100);
    assert.equal(group.available(), 0);
    const t0 = Date.now();
    group.wake(); // a wake before the sleep must not be lost ...
    assert.equal(group.wait(2000), false);
    assert.ok(Date.now() - t0 < 1500, '... it ends the next sleep early');
  });
}
