// The data plane's rings: the TUN plane (reader → shards → writer) plus the hairpin rings that
// carry client-to-client packets from one shard straight to another, never through the kernel.
//
// Each shard sleeps on one doorbell shared by every ring it consumes (its ring from the TUN
// reader and one hairpin ring from each other shard), so a packet on any of them wakes it.
// Hairpin rings are single-producer/single-consumer like the others: one per ordered pair of
// shards. Their number grows with the square of the shard count, so their slot count shrinks to
// keep the total under a memory budget; client-to-client traffic is the exception, not the bulk.
import type { DoorbellHandle } from '../ring/doorbell.js';
import { createRingPlane, type RingPlaneHandle } from '../ring/plane.js';
import { createRing, DEFAULT_SLOT_BYTES, type RingHandle } from '../ring/spsc.js';

export interface ShardRingOptions {
  shards: number;
  /** Slots of each TUN ring (default 1024, a power of two). */
  slotCount?: number;
  slotBytes?: number;
  /** Upper bound on the packet memory of all hairpin rings together (default 16 MiB). */
  hairpinBudgetBytes?: number;
}

export interface ShardRings {
  /** What the TUN threads take; `toShard[s]` rings `inboundBells[s]`. */
  plane: RingPlaneHandle;
  /** Shard s sleeps on `inboundBells[s]`. */
  inboundBells: DoorbellHandle[];
  /** `hairpin[from][to]`: produced by shard `from`, consumed by shard `to`; none for from = to. */
  hairpin: (RingHandle | undefined)[][];
  /** Slots per hairpin ring (0 with a single shard: it needs none). */
  hairpinSlots: number;
}

export const DEFAULT_HAIRPIN_BUDGET = 16 << 20;
const MIN_HAIRPIN_SLOTS = 16;
const MAX_HAIRPIN_SLOTS = 512;

/** Largest power of two ≤ n (n ≥ 1). */
function floorPow2(n: number): number {
  return 2 ** Math.floor(Math.log2(n));
}

/** Slots per hairpin ring for `shards` shards within `budget` bytes, clamped to 16..512. */
export function hairpinSlotCount(shards: number, slotBytes: number, budget: number): number {
  const rings = shards * (shards - 1);
  if (rings === 0) return 0;
  const fit = Math.max(1, Math.floor(budget / (rings * slotBytes)));
  return Math.min(MAX_HAIRPIN_SLOTS, Math.max(MIN_HAIRPIN_SLOTS, floorPow2(fit)));
}

export function createShardRings(options: ShardRingOptions): ShardRings {
  const { shards, slotCount } = options;
  const slotBytes = options.slotBytes ?? DEFAULT_SLOT_BYTES;
  const plane = createRingPlane({ shards, slotCount, slotBytes });
  // Each ring from the TUN reader has a doorbell of its own; the hairpin rings into a shard ring
  // that same one, so the shard sleeps on all of them at once.
  const inboundBells = plane.toShard.map((r) => r.consumerBell);
  const hairpinSlots = hairpinSlotCount(
    shards,
    slotBytes,
    options.hairpinBudgetBytes ?? DEFAULT_HAIRPIN_BUDGET,
  );
  const hairpin = Array.from({ length: shards }, (_, from) =>
    Array.from({ length: shards }, (_, to) =>
      from === to
        ? undefined
        : createRing({ slotCount: hairpinSlots, slotBytes, consumerBell: inboundBells[to] }),
    ),
  );
  return { plane, inboundBells, hairpin, hairpinSlots };
}

/** The rings shard `s` consumes, the TUN ring first, then one hairpin ring per other shard. */
export function inboundRingsOf(rings: ShardRings, shard: number): RingHandle[] {
  const out = [rings.plane.toShard[shard]];
  for (let from = 0; from < rings.hairpin.length; from++) {
    const r = rings.hairpin[from][shard];
    if (r !== undefined) out.push(r);
  }
  return out;
}
