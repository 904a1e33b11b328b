// The ring arrangement of one data plane: TUN reader → one ring per shard; each shard → one ring
// to the TUN writer, all of those sharing the writer's doorbell. One call builds it in the main
// thread; the handles go to each thread in `workerData`.

import { Doorbell, type DoorbellHandle } from './doorbell.js';
import { createRing, DEFAULT_SLOT_BYTES, type RingHandle } from './spsc.js';

export interface RingPlaneOptions {
  shards: number;
  /** Slots per ring, a power of two (default 1024). */
  slotCount?: number;
  /** Largest packet (default 2048; must exceed the TUN MTU). */
  slotBytes?: number;
}

export interface RingPlaneHandle {
  /** `toShard[s]`: produced by the TUN reader, consumed by shard `s`. */
  toShard: RingHandle[];
  /** `toWriter[s]`: produced by shard `s`, consumed by the TUN writer. */
  toWriter: RingHandle[];
  /** The doorbell every `toWriter` ring rings; the writer sleeps on it. */
  writerBell: DoorbellHandle;
}

export const DEFAULT_SLOT_COUNT = 1024;

export function createRingPlane(options: RingPlaneOptions): RingPlaneHandle {
  const { shards } = options;
  if (!Number.isInteger(shards) || shards < 1 || shards > 255)
    throw new RangeError(`shards ${shards} outside 1..255`);
  const slotCount = options.slotCount ?? DEFAULT_SLOT_COUNT;
  const slotBytes = options.slotBytes ?? DEFAULT_SLOT_BYTES;
  const writerBell = Doorbell.create().handle;
  const toShard: RingHandle[] = [];
  const toWriter: RingHandle[] = [];
  for (let s = 0; s < shards; s++) {
    toShard.push(createRing({ slotCount, slotBytes }));
    toWriter.push(createRing({ slotCount, slotBytes, consumerBell: writerBell }));
  }
  return { toShard, toWriter, writerBell };
}
