// Single-producer/single-consumer packet ring in a SharedArrayBuffer.
//
// Fixed-size slots; the producer writes straight into the next free slot (a preallocated view, so
// `fs.readSync(fd, slot)` lands the packet in shared memory with no copy), then commits its length.
// The consumer reads committed slots in batches, in place, and releases them. Head and tail are
// free-running Int32 counters (index = counter & mask), each on its own cache line and written by
// one side only; the Atomics store of a counter publishes the plain slot writes before it.
// Each slot also carries a 32-bit tag the producer may set (the TUN reader puts the session slot
// id from the route table there, so the shard needs no second lookup). Nothing here allocates per
// packet. A full ring is the producer's decision: it may count a drop
// (`push` does) or wait for space.
//
// Buffer layout (byte offsets):
//   0    HEAD   (producer)         64  TAIL (consumer)
//   128  DROPS, SLOT_COUNT, SLOT_BYTES, MAGIC
//   192  consumer doorbell          256 producer doorbell (used unless the handle names others)
//   320  lengths: Int32[slotCount], then tags: Int32[slotCount]
//   then slots, each starting on a 64-byte boundary

import { Doorbell, DOORBELL_WORDS, type DoorbellHandle } from './doorbell.js';

/** Structured-cloneable description of a ring: pass it to the thread on the other side. */
export interface RingHandle {
  buffer: SharedArrayBuffer;
  slotCount: number;
  slotBytes: number;
  /** Rung by the producer after a commit; the consumer sleeps on it. May be shared by rings. */
  consumerBell: DoorbellHandle;
  /** Rung by the consumer after a release; a producer waiting for space sleeps on it. */
  producerBell: DoorbellHandle;
}

export interface RingOptions {
  /** Number of slots, a power of two (2 .. 2^20). */
  slotCount: number;
  /** Largest packet a slot holds (default 2048). */
  slotBytes?: number;
  /** Share this doorbell as the consumer's wake-up (e.g. one writer thread draining many rings). */
  consumerBell?: DoorbellHandle;
}

export class RingLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RingLayoutError';
  }
}

export const DEFAULT_SLOT_BYTES = 2048;
const MAX_SLOT_COUNT = 1 << 20;
const LINE = 16; // Int32 words per 64-byte cache line
const HEAD = 0;
const TAIL = LINE;
const DROPS = 2 * LINE;
const SLOT_COUNT = DROPS + 1;
const SLOT_BYTES = DROPS + 2;
const MAGIC = DROPS + 3;
const CONSUMER_BELL = 3 * LINE;
const PRODUCER_BELL = 4 * LINE;
const HEADER_WORDS = 5 * LINE;
const MAGIC_VALUE = 0x5350_5352; // "SPSR"

const align64 = (n: number) => (n + 63) & ~63;
const lengthsOffset = () => HEADER_WORDS * 4;
const tagsOffset = (slotCount: number) => lengthsOffset() + slotCount * 4;
const slotsOffset = (slotCount: number) => align64(tagsOffset(slotCount) + slotCount * 4);
const slotStride = (slotBytes: number) => align64(slotBytes);

/** Allocate a ring; returns the handle both sides are built from. */
export function createRing(options: RingOptions): RingHandle {
  const { slotCount } = options;
  const slotBytes = options.slotBytes ?? DEFAULT_SLOT_BYTES;
  if (!Number.isInteger(slotCount) || slotCount < 2 || slotCount > MAX_SLOT_COUNT)
    throw new RingLayoutError(`slotCount ${slotCount} outside 2..${MAX_SLOT_COUNT}`);
  if ((slotCount & (slotCount - 1)) !== 0)
    throw new RingLayoutError(`slotCount ${slotCount} is not a power of two`);
  if (!Number.isInteger(slotBytes) || slotBytes < 64 || slotBytes > 65536)
    throw new RingLayoutError(`slotBytes ${slotBytes} outside 64..65536`);
  const buffer = new SharedArrayBuffer(slotsOffset(slotCount) + slotCount * slotStride(slotBytes));
  const words = new Int32Array(buffer, 0, HEADER_WORDS);
  words[SLOT_COUNT] = slotCount;
  words[SLOT_BYTES] = slotBytes;
  words[MAGIC] = MAGIC_VALUE;
  return {
    buffer,
    slotCount,
    slotBytes,
    consumerBell: options.consumerBell ?? { buffer, index: CONSUMER_BELL },
    producerBell: { buffer, index: PRODUCER_BELL },
  };
}

// DOORBELL_WORDS must fit the line reserved for each built-in bell.
if (DOORBELL_WORDS > LINE) throw new RingLayoutError('doorbell does not fit a cache line');

/** The part both ends share: validated views over the buffer. */
abstract class RingEnd {
  readonly slotCount: number;
  readonly slotBytes: number;
  protected readonly mask: number;
  protected readonly words: Int32Array;
  protected readonly lengths: Int32Array;
  protected readonly tags: Int32Array;
  protected readonly slots: Uint8Array[];

  constructor(handle: RingHandle) {
    const words = new Int32Array(handle.buffer, 0, HEADER_WORDS);
    if (
      words[MAGIC] !== MAGIC_VALUE ||
      words[SLOT_COUNT] !== handle.slotCount ||
      words[SLOT_BYTES] !== handle.slotBytes
    )
      throw new RingLayoutError('handle does not describe this ring buffer');
    this.slotCount = handle.slotCount;
    this.slotBytes = handle.slotBytes;
    this.mask = handle.slotCount - 1;
    this.words = words;
    this.lengths = new Int32Array(handle.buffer, lengthsOffset(), handle.slotCount);
    this.tags = new Int32Array(handle.buffer, tagsOffset(handle.slotCount), handle.slotCount);
    const base = slotsOffset(handle.slotCount);
    const stride = slotStride(handle.slotBytes);
    this.slots = [];
    for (let i = 0; i < handle.slotCount; i++)
      this.slots.push(new Uint8Array(handle.buffer, base + i * stride, handle.slotBytes));
  }

  /** Committed, not yet released slots (a snapshot; either side may call it). */
  depth(): number {
    return (Atomics.load(this.words, HEAD) - Atomics.load(this.words, TAIL)) | 0;
  }

  /** Packets the producer could not place (wraps at 2^31; read it as a delta). */
  drops(): number {
    return Atomics.load(this.words, DROPS);
  }
}

export class RingProducer extends RingEnd {
  private head: number;
  private tailSeen: number;
  private readonly consumerBell: Doorbell;
  private readonly producerBell: Doorbell;

  constructor(handle: RingHandle) {
    super(handle);
    this.head = Atomics.load(this.words, HEAD);
    this.tailSeen = Atomics.load(this.words, TAIL);
    this.consumerBell = new Doorbell(handle.consumerBell);
    this.producerBell = new Doorbell(handle.producerBell);
  }

  /** Free slots right now. */
  space(): number {
    this.tailSeen = Atomics.load(this.words, TAIL);
    return this.slotCount - ((this.head - this.tailSeen) | 0);
  }

  /**
   * The next free slot (the whole `slotBytes` view) to write a packet into, or `null` when the
   * ring is full. Reserving does not claim anything: until `commit`, the same slot comes back.
   */
  reserve(): Uint8Array | null {
    // The cached tail is stale only in the safe direction (it can only have advanced).
    if (((this.head - this.tailSeen) | 0) >= this.slotCount) {
      this.tailSeen = Atomics.load(this.words, TAIL);
      if (((this.head - this.tailSeen) | 0) >= this.slotCount) return null;
    }
    return this.slots[this.head & this.mask];
  }

  /** Publish the reserved slot holding `length` bytes, and wake the consumer if it sleeps. */
  commit(length: number, tag = 0): void {
    this.lengths[this.head & this.mask] = length;
    this.tags[this.head & this.mask] = tag;
    this.head = (this.head + 1) | 0;
    Atomics.store(this.words, HEAD, this.head);
    this.consumerBell.ring();
  }

  /**
   * Copy `src` into a slot and commit its first `length` bytes; on a full ring count a drop and
   * return false. The whole of `src` is copied (it must fit a slot): cheaper than allocating a
   * subarray, and lets a caller pass a scratch slot of the same size.
   */
  push(src: Uint8Array, length: number = src.length, tag = 0): boolean {
    const slot = this.reserve();
    if (slot === null) {
      this.countDrop();
      return false;
    }
    if (src.length > this.slotBytes || length > src.length)
      throw new RangeError(`packet of ${length} bytes (view ${src.length}) exceeds its slot`);
    slot.set(src);
    this.commit(length, tag);
    return true;
  }

  /** Record a packet this producer gave up on because the ring was full. */
  countDrop(): void {
    Atomics.add(this.words, DROPS, 1);
  }

  /** Worker threads: block until at least one slot is free or `timeoutMs` passes. */
  waitForSpace(timeoutMs: number): boolean {
    if (this.space() > 0) return true;
    const seq = this.producerBell.prepare();
    if (this.space() > 0) {
      this.producerBell.cancel();
      return true;
    }
    this.producerBell.sleep(seq, timeoutMs);
    return this.space() > 0;
  }

  /** Event loops: resolve when at least one slot is free (true) or after `timeoutMs` (false). */
  async waitForSpaceAsync(timeoutMs: number): Promise<boolean> {
    if (this.space() > 0) return true;
    const seq = this.producerBell.prepare();
    if (this.space() > 0) {
      this.producerBell.cancel();
      return true;
    }
    await this.producerBell.sleepAsync(seq, timeoutMs);
    return this.space() > 0;
  }
}

export class RingConsumer extends RingEnd {
  private tail: number;
  private headSeen: number;
  private readonly consumerBell: Doorbell;
  private readonly producerBell: Doorbell;

  constructor(handle: RingHandle) {
    super(handle);
    this.tail = Atomics.load(this.words, TAIL);
    this.headSeen = Atomics.load(this.words, HEAD);
    this.consumerBell = new Doorbell(handle.consumerBell);
    this.producerBell = new Doorbell(handle.producerBell);
  }

  /** Committed packets ready to read: the batch `slot(0..n-1)` / `length(0..n-1)` covers. */
  available(): number {
    this.headSeen = Atomics.load(this.words, HEAD);
    return (this.headSeen - this.tail) | 0;
  }

  /** The i-th unreleased slot (whole view; the packet is its first `length(i)` bytes). */
  slot(i: number): Uint8Array {
    return this.slots[(this.tail + i) & this.mask];
  }

  /** Length of the packet in the i-th unreleased slot. */
  length(i: number): number {
    return this.lengths[(this.tail + i) & this.mask];
  }

  /** The producer's tag on the i-th unreleased slot. */
  tag(i: number): number {
    return this.tags[(this.tail + i) & this.mask];
  }

  /** Hand `count` slots back to the producer (after the packets in them are no longer needed). */
  release(count: number): void {
    if (count <= 0) return;
    if (count > ((this.headSeen - this.tail) | 0))
      throw new RangeError(`release(${count}) beyond the ${this.available()} available`);
    this.tail = (this.tail + count) | 0;
    Atomics.store(this.words, TAIL, this.tail);
    this.producerBell.ring();
  }

  /** Copy the oldest packet into `dst` and release it; returns its length, or -1 when empty. */
  pop(dst: Uint8Array): number {
    if (this.available() === 0) return -1;
    const slot = this.slots[this.tail & this.mask];
    const length = this.lengths[this.tail & this.mask];
    if (length > dst.length) throw new RangeError(`packet of ${length} bytes exceeds dst`);
    // Copy the whole slot when it fits (no subarray allocation); else just the packet.
    if (dst.length >= slot.length) dst.set(slot);
    else dst.set(slot.subarray(0, length));
    this.release(1);
    return length;
  }

  /** End the consumer's current or next wait early (from any thread): a stop request. */
  wake(): void {
    this.consumerBell.wake();
  }

  /** Worker threads: block until a packet is available (true) or `timeoutMs` passes (false). */
  wait(timeoutMs: number): boolean {
    if (this.available() > 0) return true;
    const seq = this.consumerBell.prepare();
    if (this.available() > 0) {
      this.consumerBell.cancel();
      return true;
    }
    this.consumerBell.sleep(seq, timeoutMs);
    return this.available() > 0;
  }

  /** Event loops (e.g. a shard running QUIC): as `wait`, without blocking the loop. */
  async waitAsync(timeoutMs: number): Promise<boolean> {
    if (this.available() > 0) return true;
    const seq = this.consumerBell.prepare();
    if (this.available() > 0) {
      this.consumerBell.cancel();
      return true;
    }
    await this.consumerBell.sleepAsync(seq, timeoutMs);
    return this.available() > 0;
  }
}

/** Read-only view for whoever reports metrics (any thread). */
export class RingMonitor extends RingEnd {}
