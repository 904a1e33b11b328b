// The receiving side of a shard: every ring that brings it packets for its tunnels (the one from
// the TUN reader and the hairpin rings from the other shards), drained in place and slept on
// together through the doorbell they share, without blocking the shard's event loop.
import { Doorbell, type DoorbellHandle } from '../ring/doorbell.js';
import { RingConsumer, type RingHandle } from '../ring/spsc.js';

/** One packet, in place: `slot[0..length)`; `tag` is the destination tunnel's slot id. */
export type InboundVisitor = (slot: Uint8Array, length: number, tag: number) => void;

export class ShardInbound {
  readonly rings: readonly RingConsumer[];
  private readonly bell: Doorbell;
  private cursor = 0;

  /** Every handle must ring `bell` (as `createShardRings` arranges). */
  constructor(handles: readonly RingHandle[], bell: DoorbellHandle) {
    if (handles.length === 0) throw new RangeError('a shard needs at least one inbound ring');
    for (const h of handles) {
      if (h.consumerBell.buffer !== bell.buffer || h.consumerBell.index !== bell.index)
        throw new RangeError("every inbound ring must ring the shard's doorbell");
    }
    this.rings = handles.map((h) => new RingConsumer(h));
    this.bell = new Doorbell(bell);
  }

  /** Packets waiting on all rings (snapshot). */
  available(): number {
    let n = 0;
    for (const r of this.rings) n += r.available();
    return n;
  }

  /**
   * Visits up to `batch` packets from each ring, starting one ring further each call so a busy
   * ring cannot starve the others, and releases them. Returns how many were visited.
   */
  drain(visit: InboundVisitor, batch: number): number {
    const rings = this.rings;
    let total = 0;
    for (let k = 0; k < rings.length; k++) {
      const ring = rings[(this.cursor + k) % rings.length];
      const n = Math.min(ring.available(), batch);
      for (let i = 0; i < n; i++) visit(ring.slot(i), ring.length(i), ring.tag(i));
      ring.release(n);
      total += n;
    }
    this.cursor = (this.cursor + 1) % rings.length;
    return total;
  }

  /** Resolves true once some ring has a packet, false after `timeoutMs` (or an early `wake`). */
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

  /** Ends the current or next wait early (a stop request). */
  wake(): void {
    this.bell.wake();
  }
}
