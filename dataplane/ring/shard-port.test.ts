import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRingPlane } from './plane.js';
import { RingGroupConsumer } from './group.js';
import { RingProducer } from './spsc.js';
import { ShardPort } from './shard-port.js';

test('shard port: inbound packets with their session tags, outbound to the writer group', async () => {
  const plane = createRingPlane({ shards: 2, slotCount: 8, slotBytes: 64 });
  const reader = new RingProducer(plane.toShard[1]);
  const port = new ShardPort(plane, 1, { batch: 3 });
  const got: string[] = [];
  const running = port.run((slot, length, session) => {
    got.push(`${slot[0]}/${length}/${session}`);
    const reply = new Uint8Array(64);
    reply[0] = slot[0] + 100;
    assert.equal(port.send(reply), true);
  });
  const pkt = new Uint8Array(64);
  for (let i = 0; i < 7; i++) {
    pkt[0] = i;
    assert.equal(reader.push(pkt, 20 + i, 1000 + i), true);
  }
  const deadline = Date.now() + 2000;
  while (got.length < 7 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(
    got,
    [0, 1, 2, 3, 4, 5, 6].map((i) => `${i}/${20 + i}/${1000 + i}`),
  );
  const writer = new RingGroupConsumer(plane.toWriter, plane.writerBell);
  const out: number[] = [];
  writer.drain((slot, _len, ring) => {
    assert.equal(ring, 1);
    out.push(slot[0]);
  }, 100);
  assert.deepEqual(out, [100, 101, 102, 103, 104, 105, 106]);
  const t0 = Date.now();
  port.stop();
  await running;
  assert.ok(Date.now() - t0 < 500, 'stop wakes a sleeping run at once');
  assert.throws(() => new ShardPort(plane, 2), RangeError);
});
