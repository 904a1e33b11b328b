import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createShardRings, hairpinSlotCount, inboundRingsOf } from './rings.js';

test('hairpin slot count: powers of two within the budget, clamped to 16..512', () => {
  assert.equal(hairpinSlotCount(1, 2048, 16 << 20), 0);
  assert.equal(hairpinSlotCount(2, 2048, 16 << 20), 512);
  assert.equal(hairpinSlotCount(8, 2048, 16 << 20), 128);
  assert.equal(hairpinSlotCount(64, 2048, 16 << 20), 16);
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 255 }),
      fc.integer({ min: 1 << 16, max: 1 << 28 }),
      (n, budget) => {
        const slots = hairpinSlotCount(n, 2048, budget);
        assert.equal(slots & (slots - 1), 0);
        assert.ok(slots >= 16 && slots <= 512);
        // Over budget only when even the minimum does not fit.
        if (slots > 16) assert.ok(n * (n - 1) * slots * 2048 <= budget);
      },
    ),
  );
});

test('each shard consumes its TUN ring and one hairpin ring per other shard, all on its bell', () => {
  for (const shards of [1, 2, 3, 4]) {
    const r = createShardRings({ shards, slotCount: 8, hairpinBudgetBytes: 1 << 20 });
    assert.equal(r.plane.toShard.length, shards);
    assert.equal(r.plane.toWriter.length, shards);
    for (let s = 0; s < shards; s++) {
      assert.equal(r.hairpin[s][s], undefined, 'no ring from a shard to itself');
      const inbound = inboundRingsOf(r, s);
      assert.equal(inbound.length, shards, `shard ${s}: TUN ring + ${shards - 1} hairpin rings`);
      assert.equal(inbound[0], r.plane.toShard[s]);
      for (const h of inbound) assert.deepEqual(h.consumerBell, r.inboundBells[s]);
      for (const h of r.plane.toWriter) assert.deepEqual(h.consumerBell, r.plane.writerBell);
      // A shard's hairpin rings are distinct objects: one producer each.
      assert.equal(new Set(inbound.map((h) => h.buffer)).size, inbound.length);
    }
    if (shards > 1) assert.equal(r.hairpin[0][1]?.slotCount, r.hairpinSlots);
  }
});
