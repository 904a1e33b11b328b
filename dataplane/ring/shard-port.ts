// A shard's two ends of the ring plane: packets from the TUN reader in, packets to the TUN writer
// out. The inbound loop runs on the shard's event loop (which also runs QUIC), so it sleeps with
// Atomics.waitAsync and yields between batches instead of blocking.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { RingPlaneHandle } from './plane.js';
import { RingConsumer, RingProducer } from './spsc.js';

/**
 * Called for each inbound packet, in place: `slot[0..length)` is the IP packet, `session` the
 * session slot id the reader's route lookup found (a hint: the session may have gone since, so
 * check that the destination still belongs to it). The slot is reused after the call returns.
 */
export type InboundVisitor = (slot: Uint8Array, length: number, session: number) => void;

export interface ShardPortOptions {
  /** Packets handled before yielding to the event loop (default 64). */
  batch?: number;
  /** Longest sleep before re-checking the stop flag (default 1000 ms). */
  idleTimeoutMs?: number;
}

export class ShardPort {
  readonly shard: number;
  readonly inbound: RingConsumer;
  readonly outbound: RingProducer;
  private readonly batch: number;
  private readonly idleTimeoutMs: number;
  private stopped = false;

  constructor(plane: RingPlaneHandle, shard: number, options: ShardPortOptions = {}) {
    if (!Number.isInteger(shard) || shard < 0 || shard >= plane.toShard.length)
      throw new RangeError(`shard ${shard} outside 0..${plane.toShard.length - 1}`);
    this.shard = shard;
    this.inbound = new RingConsumer(plane.toShard[shard]);
    this.outbound = new RingProducer(plane.toWriter[shard]);
    this.batch = options.batch ?? 64;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 1000;
  }

  /**
   * Queue a packet for the TUN writer (copies all of `packet`, which must fit a slot). Returns
   * false, with the drop counted on the ring, when the writer is behind and the ring is full.
   * To avoid the copy, write into `outbound.reserve()` and `outbound.commit(length)` instead.
   */
  send(packet: Uint8Array): boolean {
    return this.outbound.push(packet);
  }

  /** Deliver inbound packets to `visit` until `stop()`; resolves after the last batch. */
  async run(visit: InboundVisitor): Promise<void> {
    const ring = this.inbound;
    while (!this.stopped) {
      const n = Math.min(ring.available(), this.batch);
      if (n === 0) {
        await ring.waitAsync(this.idleTimeoutMs);
        continue;
      }
      try {
        for (let i = 0; i < n; i++) visit(ring.slot(i), ring.length(i), ring.tag(i));
      } finally {
        ring.release(n);
      }
      await yieldToLoop();
    }
  }

  /** Make `run` return after the batch in hand (or at once if it sleeps). */
  stop(): void {
    this.stopped = true;
    this.inbound.wake();
  }
}
