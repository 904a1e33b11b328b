// Shared address → (shard, session slot) table in a SharedArrayBuffer.
//
// The TUN reader looks up the destination of every packet here; shards insert and remove their
// sessions' addresses as sessions come and go. Reads are frequent and must not block or allocate;
// writes are rare (session set-up and teardown). So:
//   - writers serialise on one mutex word (CAS, then Atomics.wait while contended);
//   - each bucket carries a version word (a per-bucket seqlock): odd while a writer changes it;
//     a reader retries the bucket if the version was odd or moved while it read the fields;
//   - open addressing with linear probing; removal leaves a tombstone (keys never move, so a
//     reader walking a probe chain can never miss a key that stays put), and tombstones that end
//     a chain are turned back into empty buckets so chains do not grow without bound.
// A lookup returns one number: `(session << 8) | shard`, or a negative "no route" code.
//
// Layout: 16 header words (LOCK, MAGIC, CAPACITY, LIVE, USED), then `capacity` buckets of
// 8 Int32 words: VERSION, STATE (0 empty, 1 tombstone, 4 IPv4, 6 IPv6), KEY×4, SHARD, SESSION.

import { parseIpAddress, readWord } from './ip-address.js';

export interface RouteTableHandle {
  buffer: SharedArrayBuffer;
  capacity: number;
}

/** Lookup result: no entry for the address. */
export const ROUTE_NONE = -1;
/** Lookup result: the packet is too short or not IPv4/IPv6. */
export const ROUTE_MALFORMED = -2;
export const MAX_SHARDS = 256;
export const MAX_SESSION = 0x7f_ffff;

export const routeShard = (route: number): number => route & 0xff;
export const routeSession = (route: number): number => route >>> 8;

export class RouteTableFullError extends Error {
  constructor(capacity: number) {
    super(`route table full (capacity ${capacity}, load limit 3/4)`);
    this.name = 'RouteTableFullError';
  }
}

const LOCK = 0;
const MAGIC = 1;
const CAPACITY = 2;
const LIVE = 3;
const USED = 4;
const HEADER = 16;
const BUCKET = 8;
const VERSION = 0;
const STATE = 1;
const KEY = 2;
const SHARD = 6;
const SESSION = 7;
const EMPTY = 0;
const TOMBSTONE = 1;
const IPV4 = 4;
const IPV6 = 6;
const MAGIC_VALUE = 0x5254_4231; // "RTB1"

export function createRouteTable(capacity = 65536): RouteTableHandle {
  if (!Number.isInteger(capacity) || capacity < 8 || capacity > 1 << 24)
    throw new RangeError(`route table capacity ${capacity} outside 8..2^24`);
  if ((capacity & (capacity - 1)) !== 0)
    throw new RangeError(`route table capacity ${capacity} is not a power of two`);
  const buffer = new SharedArrayBuffer((HEADER + capacity * BUCKET) * 4);
  const w = new Int32Array(buffer);
  w[MAGIC] = MAGIC_VALUE;
  w[CAPACITY] = capacity;
  return { buffer, capacity };
}

function hashV4(a: number): number {
  return Math.imul(a ^ (a >>> 16), 0x9e3779b1);
}

function hashV6(a: number, b: number, c: number, d: number): number {
  const h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b, 0x85ebca77) ^ Math.imul(c, 0xc2b2ae3d) ^ d;
  return Math.imul(h ^ (h >>> 15), 0x27d4eb2f);
}

export class RouteTable {
  readonly handle: RouteTableHandle;
  readonly capacity: number;
  private readonly w: Int32Array;
  private readonly mask: number;
  private readonly shift: number;
  private readonly key = new Int32Array(4);

  constructor(handle: RouteTableHandle) {
    this.handle = handle;
    this.w = new Int32Array(handle.buffer);
    if (this.w[MAGIC] !== MAGIC_VALUE || this.w[CAPACITY] !== handle.capacity)
      throw new RangeError('handle does not describe this route table');
    this.capacity = handle.capacity;
    this.mask = handle.capacity - 1;
    this.shift = 32 - Math.log2(handle.capacity);
  }

  /** Live entries (snapshot). */
  size(): number {
    return Atomics.load(this.w, LIVE);
  }

  // ---- reads: lock-free, allocation-free, from any thread

  /** Route for the destination of the IP packet in `packet[0..length)`, read in place. */
  lookupDestination(packet: Uint8Array, length: number): number {
    if (length < 1) return ROUTE_MALFORMED;
    const version = packet[0] >> 4;
    if (version === 4) {
      if (length < 20) return ROUTE_MALFORMED;
      return this.lookupV4(readWord(packet, 16));
    }
    if (version === 6) {
      if (length < 40) return ROUTE_MALFORMED;
      return this.lookupV6(
        readWord(packet, 24),
        readWord(packet, 28),
        readWord(packet, 32),
        readWord(packet, 36),
      );
    }
    return ROUTE_MALFORMED;
  }

  /** Route for an IPv4 address given as a big-endian int32. */
  lookupV4(a: number): number {
    return this.probe(IPV4, a, 0, 0, 0, hashV4(a) >>> this.shift);
  }

  /** Route for an IPv6 address given as four big-endian int32 words. */
  lookupV6(a: number, b: number, c: number, d: number): number {
    return this.probe(IPV6, a, b, c, d, hashV6(a, b, c, d) >>> this.shift);
  }

  /** Route for an address in text or bytes (control paths; allocates). */
  lookup(address: string | Uint8Array): number {
    const n = this.keyOf(address);
    return n === IPV4
      ? this.lookupV4(this.key[0])
      : this.lookupV6(this.key[0], this.key[1], this.key[2], this.key[3]);
  }

  private probe(family: number, a: number, b: number, c: number, d: number, start: number): number {
    const w = this.w;
    let i = start;
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = HEADER + i * BUCKET;
      for (;;) {
        const v = Atomics.load(w, base + VERSION);
        if ((v & 1) !== 0) continue; // a writer is inside this bucket: a few stores, spin
        const state = Atomics.load(w, base + STATE);
        if (state === EMPTY) {
          if (Atomics.load(w, base + VERSION) !== v) continue;
          return ROUTE_NONE;
        }
        if (
          state === family &&
          Atomics.load(w, base + KEY) === a &&
          Atomics.load(w, base + KEY + 1) === b &&
          Atomics.load(w, base + KEY + 2) === c &&
          Atomics.load(w, base + KEY + 3) === d
        ) {
          const route = (Atomics.load(w, base + SESSION) << 8) | Atomics.load(w, base + SHARD);
          if (Atomics.load(w, base + VERSION) !== v) continue;
          return route;
        }
        break;
      }
      i = (i + 1) & this.mask;
    }
    return ROUTE_NONE;
  }

  // ---- writes: serialised by the table mutex

  /**
   * Point `address` at (`shard`, `session`), replacing any previous owner (a device reconnecting
   * on another shard). Returns true when the address was not in the table before.
   */
  set(address: string | Uint8Array, shard: number, session: number): boolean {
    if (!Number.isInteger(shard) || shard < 0 || shard >= MAX_SHARDS)
      throw new RangeError(`shard ${shard} outside 0..${MAX_SHARDS - 1}`);
    if (!Number.isInteger(session) || session < 0 || session > MAX_SESSION)
      throw new RangeError(`session slot ${session} outside 0..${MAX_SESSION}`);
    const family = this.keyOf(address);
    this.lock();
    try {
      const w = this.w;
      let found = this.locate(family);
      if (found >= 0) {
        this.writeBucket(found, family, shard, session);
        return false;
      }
      const limit = (this.capacity * 3) >> 2;
      if (w[LIVE] + 1 > limit) throw new RouteTableFullError(this.capacity);
      if (w[-found - 1 + STATE] === EMPTY && w[USED] + 1 > limit) {
        // Tombstones crowd the table: empty those no probe chain needs, then look again.
        this.purgeTombstones();
        found = this.locate(family);
      }
      const free = -found - 1;
      const reusesTombstone = w[free + STATE] === TOMBSTONE;
      // Never fill the last empty bucket: probe chains for absent keys must end somewhere.
      if (!reusesTombstone && w[USED] + 1 >= this.capacity)
        throw new RouteTableFullError(this.capacity);
      if (!reusesTombstone) Atomics.add(w, USED, 1);
      this.writeBucket(free, family, shard, session);
      Atomics.add(w, LIVE, 1);
      return true;
    } finally {
      this.unlock();
    }
  }

  /**
   * Writers only. The bucket (base word index) holding `this.key`, or, if absent, `-(base + 1)` of
   * where to insert it: the first tombstone on its probe chain, else the empty bucket ending it.
   */
  private locate(family: number): number {
    const w = this.w;
    let i = this.start(family);
    let free = -1;
    for (let probes = 0; probes <= this.mask; probes++) {
      const base = HEADER + i * BUCKET;
      const state = w[base + STATE];
      if (state === EMPTY) return -(free >= 0 ? free : base) - 1;
      if (state === TOMBSTONE) {
        if (free < 0) free = base;
      } else if (this.matches(base, family)) return base;
      i = (i + 1) & this.mask;
    }
    if (free < 0) throw new RouteTableFullError(this.capacity);
    return -free - 1;
  }

  /**
   * Writers only. Turn a tombstone back into an empty bucket when no live key's probe chain runs
   * through it, i.e. every live key between it and the next empty bucket has its home after it.
   * Lock-free readers stay correct: no lookup of a live key passes through an emptied bucket.
   */
  private purgeTombstones(): void {
    const w = this.w;
    for (let t = 0; t <= this.mask; t++) {
      if (w[HEADER + t * BUCKET + STATE] !== TOMBSTONE) continue;
      let needed = false;
      for (let j = (t + 1) & this.mask; j !== t; j = (j + 1) & this.mask) {
        const base = HEADER + j * BUCKET;
        const state = w[base + STATE];
        if (state === EMPTY) break;
        if (state === TOMBSTONE) continue;
        const home = this.homeOf(base);
        // Home cyclically within (t, j]: the key's chain starts after the tombstone.
        if (((home - t - 1) & this.mask) > ((j - t - 1) & this.mask)) {
          needed = true;
          break;
        }
      }
      if (needed) continue;
      this.setState(HEADER + t * BUCKET, EMPTY);
      Atomics.sub(w, USED, 1);
    }
  }

  private homeOf(base: number): number {
    const w = this.w;
    const a = w[base + KEY];
    return (
      (w[base + STATE] === IPV4
        ? hashV4(a)
        : hashV6(a, w[base + KEY + 1], w[base + KEY + 2], w[base + KEY + 3])) >>> this.shift
    );
  }

  /**
   * Remove `address`. With `owner`, only if it still points at that shard and session (so a
   * session that was replaced does not remove its successor's route). Returns true if removed.
   */
  remove(address: string | Uint8Array, owner?: { shard: number; session: number }): boolean {
    const family = this.keyOf(address);
    this.lock();
    try {
      const w = this.w;
      let i = this.start(family);
      for (let probes = 0; probes <= this.mask; probes++) {
        const base = HEADER + i * BUCKET;
        const state = w[base + STATE];
        if (state === EMPTY) return false;
        if (state !== TOMBSTONE && this.matches(base, family)) {
          if (owner && (w[base + SHARD] !== owner.shard || w[base + SESSION] !== owner.session))
            return false;
          this.clearBucket(i);
          return true;
        }
        i = (i + 1) & this.mask;
      }
      return false;
    } finally {
      this.unlock();
    }
  }

  /** Remove every entry of `shard` (its worker died or was restarted). Returns how many. */
  removeShard(shard: number): number {
    this.lock();
    try {
      let removed = 0;
      for (let i = 0; i <= this.mask; i++) {
        const base = HEADER + i * BUCKET;
        const state = this.w[base + STATE];
        if ((state === IPV4 || state === IPV6) && this.w[base + SHARD] === shard) {
          this.clearBucket(i);
          removed++;
        }
      }
      return removed;
    } finally {
      this.unlock();
    }
  }

  /** Tombstone bucket `i`, then turn the tombstones that now end a chain back into empties. */
  private clearBucket(i: number): void {
    const w = this.w;
    this.setState(HEADER + i * BUCKET, TOMBSTONE);
    Atomics.sub(w, LIVE, 1);
    if (w[HEADER + ((i + 1) & this.mask) * BUCKET + STATE] !== EMPTY) return;
    // Safe for concurrent readers: a key after an empty bucket is unreachable anyway, so no
    // probe chain passing through these buckets can lead to a live key.
    let j = i;
    while (w[HEADER + j * BUCKET + STATE] === TOMBSTONE) {
      this.setState(HEADER + j * BUCKET, EMPTY);
      Atomics.sub(w, USED, 1);
      j = (j - 1) & this.mask;
      if (j === i) break;
    }
  }

  private setState(base: number, state: number): void {
    const w = this.w;
    const v = w[base + VERSION];
    Atomics.store(w, base + VERSION, v + 1);
    Atomics.store(w, base + STATE, state);
    Atomics.store(w, base + VERSION, v + 2);
  }

  private writeBucket(base: number, family: number, shard: number, session: number): void {
    const w = this.w;
    const k = this.key;
    const v = w[base + VERSION];
    Atomics.store(w, base + VERSION, v + 1);
    Atomics.store(w, base + STATE, family);
    for (let j = 0; j < 4; j++) Atomics.store(w, base + KEY + j, k[j]);
    Atomics.store(w, base + SHARD, shard);
    Atomics.store(w, base + SESSION, session);
    Atomics.store(w, base + VERSION, v + 2);
  }

  private matches(base: number, family: number): boolean {
    const w = this.w;
    const k = this.key;
    return (
      w[base + STATE] === family &&
      w[base + KEY] === k[0] &&
      w[base + KEY + 1] === k[1] &&
      w[base + KEY + 2] === k[2] &&
      w[base + KEY + 3] === k[3]
    );
  }

  private start(family: number): number {
    const k = this.key;
    return (family === IPV4 ? hashV4(k[0]) : hashV6(k[0], k[1], k[2], k[3])) >>> this.shift;
  }

  /** Fill `this.key` from an address; returns its family. */
  private keyOf(address: string | Uint8Array): number {
    const bytes = typeof address === 'string' ? parseIpAddress(address) : address;
    const k = this.key;
    if (bytes.length === 4) {
      k[0] = readWord(bytes, 0);
      k[1] = k[2] = k[3] = 0;
      return IPV4;
    }
    if (bytes.length === 16) {
      for (let j = 0; j < 4; j++) k[j] = readWord(bytes, 4 * j);
      return IPV6;
    }
    throw new RangeError(`address of ${bytes.length} bytes is neither IPv4 nor IPv6`);
  }

  private lock(): void {
    const w = this.w;
    for (let spins = 0; Atomics.compareExchange(w, LOCK, 0, 1) !== 0; spins++)
      if (spins > 64) Atomics.wait(w, LOCK, 1, 1);
  }

  private unlock(): void {
    Atomics.store(this.w, LOCK, 0);
    Atomics.notify(this.w, LOCK, 1);
  }
}
