// A shard's receiving side: its ring from the TUN reader and its hairpin rings from the other
// shards, drained and slept on together as one ring group (ring/group.ts) on one doorbell.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { RingProducer } from '../ring/spsc.js';
import { RingGroupConsumer } from '../ring/group.js';
import { createShardRings, inboundRingsOf } from './rings.js';

test('drains every inbound ring with its tags, rotating the first ring', () => {
  const rings = createShardRings({ shards: 3, slotCount: 8, hairpinBudgetBytes: 1 << 20 });
  const inbound = new RingGroupConsumer(inboundRingsOf(rings, 0), rings.inboundBells[0]);
  const fromTun = new RingProducer(rings.plane.toShard[0]);
  const from1 = new RingProducer(rings.hairpin[1][0]!);
  const from2 = new RingProducer(rings.hairpin[2][0]!);
  for (let i = 0; i < 3; i++) {
    fromTun.push(new Uint8Array([0x10 + i]), 1, 100 + i);
    from1.push(new Uint8Array([0x20 + i]), 1, 200 + i);
    from2.push(new Uint8Array([0x30 + i]), 1, 300 + i);
  }
  assert.equal(inbound.available(), 9);
  const seen: string[] = [];
  const visit = (slot: Uint8Array, length: number, _ring: number, tag: number) =>
    seen.push(`${slot[0].toString(16)}:${tag}:${length}`);
  assert.equal(inbound.drain(visit, 2), 6);
  assert.deepEqual(seen, ['10:100:1', '11:101:1', '20:200:1', '21:201:1', '30:300:1', '31:301:1']);
  seen.length = 0;
  assert.equal(inbound.drain(visit, 2), 3);
  // The second round starts at the next ring.
  assert.deepEqual(seen, ['22:202:1', '32:302:1', '12:102:1']);
  assert.equal(inbound.available(), 0);
});

test('rings on another bell are refused', () => {
  const rings = createShardRings({ shards: 2, slotCount: 8, hairpinBudgetBytes: 1 << 20 });
  assert.throws(
    () => new RingGroupConsumer(inboundRingsOf(rings, 0), rings.inboundBells[1]),
    /doorbell/,
  );
});

test('a sleeping shard wakes for a packet on a hairpin ring committed by another thread', async () => {
  const rings = createShardRings({ shards: 2, slotCount: 8, hairpinBudgetBytes: 1 << 20 });
  const inbound = new RingGroupConsumer(inboundRingsOf(rings, 0), rings.inboundBells[0]);
  const started = Date.now();
  const waiting = inbound.waitAsync(5_000);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     import(workerData.spsc).then(({ RingProducer }) => {
       setTimeout(() => new RingProducer(workerData.ring).push(new Uint8Array([7]), 1, 3), 50);
     });`,
    {
      eval: true,
      workerData: {
        ring: rings.hairpin[1][0],
        spsc: new URL('../ring/spsc.js', import.meta.url).href,
      },
    },
  );
  assert.equal(await waiting, true);
  const waited = Date.now() - started;
  assert.ok(waited < 2_000, `woke after ${waited} ms`);
  await worker.terminate();
  const tags: number[] = [];
  inbound.drain((_s, _l, _r, tag) => tags.push(tag), 8);
  assert.deepEqual(tags, [3]);
});

test('wake ends a wait early with nothing to read', async () => {
  const rings = createShardRings({ shards: 1, slotCount: 8 });
  const inbound = new RingGroupConsumer(inboundRingsOf(rings, 0), rings.inboundBells[0]);
  const started = Date.now();
  const waiting = inbound.waitAsync(5_000);
  setTimeout(() => inbound.wake(), 20);
  assert.equal(await waiting, false);
  assert.ok(Date.now() - started < 2_000);
});
