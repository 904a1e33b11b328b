// The consuming side of several rings that share one doorbell: how the TUN writer thread drains
// every shard's ring, round-robin, and sleeps on all of them at once (blocking), and how a shard
// drains its ring from the TUN reader and its hairpin rings from the other shards (on its event
// loop, without blocking it).

import { Doorbell, type DoorbellHandle } from './doorbell.js';
import { RingConsumer, type RingHandle } from './spsc.js';

/**
 * Called once per packet, in place: `ring` is the index of its ring in the group, `tag` the
 * producer's slot tag. The slot is released after the batch it belongs to.
 */
export type PacketVisitor = (slot: Uint8Array, length: number, ring: number, tag: number) => void;

export class RingGroupConsumer {
  readonly rings: readonly RingConsumer[];
  private readonly bell: Doorbell;
  private cursor = 0;

  /** Every handle's `consumerBell` must be `bell` (as `createRingPlane` arranges). */
  constructor(handles: readonly RingHandle[], bell: DoorbellHandle) {
    if (handles.length === 0) throw new RangeError('a ring group needs at least one ring');
    for (const h of handles)
      if (h.consumerBell.buffer !== bell.buffer || h.consumerBell.index !== bell.index)
        throw new RangeError('every ring of a group must ring the group doorbell');
    this.rings = handles.map((h) => new RingConsumer(h));
    this.bell = new Doorbell(bell);
  }

  /**
   * Visit up to `batch` packets from each ring, starting one ring further each call so no shard
   * can starve the others. Returns how many packets were visited.
   */
  drain(visit: PacketVisitor, batch: number): number {
    const n = this.rings.length;
    let total = 0;
    for (let k = 0; k < n; k++) {
      const r = (this.cursor + k) % n;
      const ring = this.rings[r];
      const count = Math.min(ring.available(), batch);
      for (let i = 0; i < count; i++) visit(ring.slot(i), ring.length(i), r, ring.tag(i));
      ring.release(count);
      total += count;
    }
    this.cursor = (this.cursor + 1) % n;
    return total;
  }

  /** Packets waiting over all rings (snapshot). */
  available(): number {
    let total = 0;
    for (const ring of this.rings) total += ring.available();
    return total;
  }

  /** Block (worker thread) until some ring has a packet (true) or `timeoutMs` passes. */
  wait(timeoutMs: number): boolean {
    if (this.available() > 0) return true;
    const seq = this.bell.prepare();
    if (this.available() > 0) {
      this.bell.cancel();
      return true;
    }
    this.bell.sleep(seq, timeoutMs);
    return this.available() > 0;
  }

  /** Event loops: as `wait`, without blocking the loop. */
  async waitAsync(timeoutMs: number): Promise<boolean> {
    if (this.available() > 0) return true;
    const seq = this.bell.prepare();
    if (this.available() > 0) {
      this.bell.cancel();
      return true;
    }
    await this.bell.sleepAsync(seq, timeoutMs);
    return this.available() > 0;
  }

  /** End a `wait`/`waitAsync` early, or the next one if none is asleep (a stop request). */
  wake(): void {
    this.bell.wake();
  }
}
