// The receiving half of the FEC engine, sans-I/O. Context-0 packets never come here (they are
// plain IP and go straight to the TUN). FEC-context payloads do: a data packet is delivered the
// moment it arrives and a copy of its symbol is kept while its block may still need it; repair
// symbols are kept until the block can be solved. Memory is bounded twice: a window of recent
// blocks (older block ids are late and dropped) and a fixed pool of symbol buffers (when it runs
// dry the oldest block gives up its buffers). Nothing is allocated per packet once the pool is warm.
import type { ErasureCode, FecScheme } from './code.js';
import { codeFor } from './codes.js';
import { isZero } from './block.js';
import { mulAddMany } from './gf256.js';
import {
  FEC_HEADER_SIZE,
  FecHeaderError,
  SCHEME_RS,
  SCHEME_XOR,
  type FecHeader,
  blockDistance,
  readFecHeader,
} from './header.js';
import { type FecMetrics, newFecMetrics } from './metrics.js';
import {
  LENGTH_PREFIX,
  MAX_PACKET,
  symbolPacketLength,
  symbolSize,
  writeSymbol,
} from './symbol.js';

/** Receives every packet the receiver hands up; the view is valid only during the call. */
export type FecDeliver = (packet: Uint8Array) => void;

export interface FecReceiverOptions {
  scheme: FecScheme;
  maxK: number;
  maxM: number;
  maxPacketSize: number;
  /** Blocks tracked behind the newest one; rounded up to a power of two. */
  windowBlocks?: number;
  /** Upper bound for buffered symbols, in bytes (raised to hold at least one full block). */
  maxBufferedBytes?: number;
  /** An incomplete block is given up this long after its first packet, in ms. */
  holdMs?: number;
}

export class FecReceiverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FecReceiverError';
  }
}

const EMPTY = 0; // slot holds no block
const OPEN = 1; // buffering symbols, may still recover
const CLOSED = 2; // complete, recovered or given up: only the bitmap (for dedupe) remains

export class FecReceiver {
  readonly metrics: FecMetrics;
  private readonly code: ErasureCode;
  private readonly schemeId: 0 | 1;
  private readonly maxK: number;
  private readonly maxM: number;
  private readonly w: number;
  private readonly holdMs: number;
  private readonly h: FecHeader = { scheme: 0, blockId: 0, index: 0, k: 1, m: 1 };
  private newest = -1;

  // Per block entry, indexed by blockId & (w - 1).
  private readonly eId: Int32Array;
  private readonly eState: Uint8Array;
  private readonly eK: Uint16Array; // 0 until a repair tells the final k
  private readonly eM: Uint16Array;
  private readonly eSymLen: Int32Array;
  private readonly eMaxIndex: Int16Array; // highest data index seen, -1 none
  private readonly eData: Uint16Array; // distinct data packets seen
  private readonly eRepair: Uint16Array; // repair symbols buffered
  private readonly eFirst: Float64Array;
  private readonly bits: Uint32Array; // 256 bits per entry: data index i / repair index k + j
  private readonly dataSlot: Int32Array; // w × maxK
  private readonly repairSlot: Int32Array; // w × maxM

  // Symbol buffer pool.
  private readonly slotSize: number;
  private readonly maxSlots: number;
  private readonly slots: Uint8Array[] = [];
  private readonly slotLen: number[] = [];
  private readonly free: number[] = [];

  // Scratch for solving, reused.
  private readonly rows: number[] = [];
  private readonly missing: number[] = [];
  private readonly t: Uint8Array[] = [];
  private readonly coefs = new Uint8Array(256);

  constructor(options: FecReceiverOptions, metrics?: FecMetrics) {
    const { scheme, maxK, maxM, maxPacketSize } = options;
    this.code = codeFor(scheme);
    this.schemeId = scheme === 'xor' ? SCHEME_XOR : SCHEME_RS;
    if (!Number.isInteger(maxK) || maxK < 1 || maxK > 255) {
      throw new FecReceiverError(`k ${maxK} outside 1..255`);
    }
    if (!Number.isInteger(maxM) || maxM < 1 || maxM > this.code.maxRepair || maxK + maxM > 256) {
      throw new FecReceiverError(`m ${maxM} invalid for ${scheme} with k ${maxK}`);
    }
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 1 || maxPacketSize > MAX_PACKET) {
      throw new FecReceiverError(`packet size ${maxPacketSize} outside 1..${MAX_PACKET}`);
    }
    this.maxK = maxK;
    this.maxM = maxM;
    const window = Math.min(Math.max(options.windowBlocks ?? 128, 2), 16384);
    this.w = 2 ** Math.ceil(Math.log2(window));
    this.holdMs = options.holdMs ?? 100;
    this.slotSize = symbolSize(maxPacketSize);
    const wanted = Math.floor((options.maxBufferedBytes ?? 512 * 1024) / this.slotSize);
    this.maxSlots = Math.max(wanted, maxK + maxM);
    this.metrics = metrics ?? newFecMetrics();
    const w = this.w;
    this.eId = new Int32Array(w).fill(-1);
    this.eState = new Uint8Array(w);
    this.eK = new Uint16Array(w);
    this.eM = new Uint16Array(w);
    this.eSymLen = new Int32Array(w);
    this.eMaxIndex = new Int16Array(w).fill(-1);
    this.eData = new Uint16Array(w);
    this.eRepair = new Uint16Array(w);
    this.eFirst = new Float64Array(w);
    this.bits = new Uint32Array(w * 8);
    this.dataSlot = new Int32Array(w * maxK).fill(-1);
    this.repairSlot = new Int32Array(w * maxM).fill(-1);
  }

  /** Bytes currently held in symbol buffers (allocated pool size, the memory actually used). */
  get bufferedBytes(): number {
    return this.slots.length * this.slotSize;
  }

  /** The bound `bufferedBytes` never exceeds. */
  get maxBufferedBytes(): number {
    return this.maxSlots * this.slotSize;
  }

  /** Handles one payload received on the FEC context. */
  receive(payload: Uint8Array, now: number, deliver: FecDeliver): void {
    const h = this.h;
    try {
      readFecHeader(payload, h);
    } catch (err) {
      if (!(err instanceof FecHeaderError)) throw err;
      this.metrics.malformedDropped++;
      return;
    }
    if (h.scheme !== this.schemeId || h.k > this.maxK || h.m > this.maxM) {
      this.metrics.malformedDropped++;
      return;
    }
    const e = this.entryFor(h.blockId, now);
    if (e < 0) {
      this.metrics.lateDropped++;
      return;
    }
    if (h.index < h.k) this.onData(e, h.index, h.k, payload, deliver);
    else this.onRepair(e, h.index - h.k, h.k, h.m, payload, deliver);
  }

  /** When `onTimer` should run next (ms), or undefined when no block is waiting. */
  nextDeadline(): number | undefined {
    let next = Infinity;
    for (let e = 0; e < this.w; e++) {
      if (this.eState[e] === OPEN && this.eFirst[e] < next) next = this.eFirst[e];
    }
    return next === Infinity ? undefined : next + this.holdMs;
  }

  /** Gives up blocks that waited longer than the hold time, releasing their buffers. */
  onTimer(now: number): void {
    for (let e = 0; e < this.w; e++) {
      if (this.eState[e] === OPEN && this.eFirst[e] + this.holdMs <= now) this.close(e, true);
    }
  }

  private entryFor(blockId: number, now: number): number {
    const w = this.w;
    if (this.newest < 0) this.newest = blockId;
    const d = blockDistance(this.newest, blockId);
    if (d > 0) {
      if (d >= w) {
        for (let e = 0; e < w; e++) this.retire(e);
      } else {
        for (let s = 1; s <= d; s++) this.retire((this.newest + s) & (w - 1));
      }
      this.newest = blockId;
    } else if (d <= -w) {
      return -1;
    }
    const e = blockId & (w - 1);
    if (this.eId[e] !== blockId) {
      this.retire(e);
      this.eId[e] = blockId;
      this.eState[e] = OPEN;
      this.eK[e] = 0;
      this.eM[e] = 0;
      this.eSymLen[e] = 0;
      this.eMaxIndex[e] = -1;
      this.eData[e] = 0;
      this.eRepair[e] = 0;
      this.eFirst[e] = now;
      this.bits.fill(0, e * 8, e * 8 + 8);
    }
    return e;
  }

  private onData(
    e: number,
    index: number,
    plannedK: number,
    payload: Uint8Array,
    deliver: FecDeliver,
  ): void {
    if (this.testAndSet(e, index)) {
      this.metrics.duplicatesDropped++;
      return;
    }
    this.metrics.dataPacketsReceived++;
    this.eData[e]++;
    if (index > this.eMaxIndex[e]) this.eMaxIndex[e] = index;
    const len = payload.length - FEC_HEADER_SIZE;
    deliver(payload.subarray(FEC_HEADER_SIZE));
    if (this.eState[e] !== OPEN) return;
    if (symbolSize(len) > this.slotSize) {
      // Longer than this end's MTU allows (the ends disagree on it): delivered, not protectable.
      this.metrics.malformedDropped++;
      this.poison(e);
      return;
    }
    const k = this.eK[e];
    if (k !== 0 && (index >= k || symbolSize(len) > this.eSymLen[e])) {
      this.poison(e);
      return;
    }
    // Complete (all of the final k, or all of the planned k before any repair): nothing to recover.
    if (this.eData[e] === (k !== 0 ? k : plannedK)) {
      this.close(e, false);
      return;
    }
    const slot = this.alloc(e);
    if (slot < 0) return;
    this.slotLen[slot] = writeSymbol(this.slots[slot], payload, FEC_HEADER_SIZE, len);
    this.dataSlot[e * this.maxK + index] = slot;
    if (k !== 0) this.tryRecover(e, deliver);
  }

  private onRepair(
    e: number,
    j: number,
    k: number,
    m: number,
    payload: Uint8Array,
    deliver: FecDeliver,
  ): void {
    const symLen = payload.length - FEC_HEADER_SIZE;
    if (this.eState[e] !== OPEN) {
      // Block already settled; a repeated repair is still a duplicate.
      if (this.eK[e] === k && this.testAndSet(e, k + j)) this.metrics.duplicatesDropped++;
      else this.metrics.repairPacketsReceived++;
      return;
    }
    if (this.eK[e] === 0) {
      if (symLen < LENGTH_PREFIX || symLen > this.slotSize || k > this.maxK) {
        this.metrics.malformedDropped++;
        this.poison(e);
        return;
      }
      // The final k is known now: every data packet seen must fit under it.
      if (this.eMaxIndex[e] >= k) {
        this.metrics.malformedDropped++;
        this.poison(e);
        return;
      }
      for (let i = 0; i < k; i++) {
        const s = this.dataSlot[e * this.maxK + i];
        if (s >= 0 && this.slotLen[s] > symLen) {
          this.metrics.malformedDropped++;
          this.poison(e);
          return;
        }
      }
      this.eK[e] = k;
      this.eM[e] = m;
      this.eSymLen[e] = symLen;
    } else if (this.eK[e] !== k || this.eM[e] !== m || this.eSymLen[e] !== symLen) {
      this.metrics.malformedDropped++;
      this.poison(e);
      return;
    }
    if (this.testAndSet(e, k + j)) {
      this.metrics.duplicatesDropped++;
      return;
    }
    this.metrics.repairPacketsReceived++;
    if (this.eData[e] === k) {
      this.close(e, false);
      return;
    }
    const slot = this.alloc(e);
    if (slot < 0) return;
    this.slots[slot].set(payload.subarray(FEC_HEADER_SIZE));
    this.slotLen[slot] = symLen;
    this.repairSlot[e * this.maxM + j] = slot;
    this.eRepair[e]++;
    this.tryRecover(e, deliver);
  }

  private tryRecover(e: number, deliver: FecDeliver): void {
    const k = this.eK[e];
    const lost = k - this.eData[e];
    if (lost <= 0 || this.eRepair[e] < lost) return;
    const { rows, missing, t } = this;
    rows.length = 0;
    missing.length = 0;
    t.length = 0;
    const m = this.eM[e];
    for (let j = 0; j < m && rows.length < lost; j++) {
      const s = this.repairSlot[e * this.maxM + j];
      if (s >= 0) {
        rows.push(j);
        t.push(this.slots[s]);
      }
    }
    for (let i = 0; i < k; i++) if (!this.test(e, i)) missing.push(i);
    const len = this.eSymLen[e];
    // Subtract what did arrive from each repair row, one pass per data symbol for all rows.
    const coefs = this.coefs;
    for (let i = 0; i < k; i++) {
      const s = this.dataSlot[e * this.maxK + i];
      if (s < 0) continue;
      for (let r = 0; r < rows.length; r++) coefs[r] = this.code.coefficient(rows[r], i);
      mulAddMany(t, coefs, rows.length, 0, this.slots[s], 0, this.slotLen[s]);
    }
    this.code.solve(rows, missing, t, len);
    // Check every recovered symbol before handing any up: a contradiction means the block's
    // symbols were not what their headers claimed, and no guess is delivered.
    for (let r = 0; r < lost; r++) {
      const n = symbolPacketLength(t[r]);
      if (n === 0 || n + LENGTH_PREFIX > len || !isZero(t[r], LENGTH_PREFIX + n, len)) {
        this.metrics.malformedDropped++;
        this.poison(e);
        return;
      }
    }
    for (let r = 0; r < lost; r++) {
      this.testAndSet(e, missing[r]);
      this.eData[e]++;
      this.metrics.packetsRecovered++;
      deliver(t[r].subarray(LENGTH_PREFIX, LENGTH_PREFIX + symbolPacketLength(t[r])));
    }
    this.close(e, false);
  }

  /** Settles an entry: buffers back to the pool, counted as unrecoverable if data is missing. */
  private close(e: number, countLoss: boolean): void {
    if (this.eState[e] !== OPEN) return;
    if (countLoss && this.isMissingData(e)) this.metrics.unrecoverableBlocks++;
    this.releaseBuffers(e);
    this.eState[e] = CLOSED;
  }

  private poison(e: number): void {
    this.close(e, true);
  }

  /** Frees the entry for another block id. */
  private retire(e: number): void {
    if (this.eState[e] === OPEN) this.close(e, true);
    this.eState[e] = EMPTY;
    this.eId[e] = -1;
  }

  private isMissingData(e: number): boolean {
    const k = this.eK[e];
    // Without any repair the final k is unknown; a gap below the highest index seen is a loss.
    const known = k !== 0 ? k : this.eMaxIndex[e] + 1;
    return this.eData[e] < known;
  }

  private releaseBuffers(e: number): void {
    const d0 = e * this.maxK;
    for (let i = 0; i < this.maxK; i++) {
      const s = this.dataSlot[d0 + i];
      if (s >= 0) {
        this.free.push(s);
        this.dataSlot[d0 + i] = -1;
      }
    }
    const r0 = e * this.maxM;
    for (let j = 0; j < this.maxM; j++) {
      const s = this.repairSlot[r0 + j];
      if (s >= 0) {
        this.free.push(s);
        this.repairSlot[r0 + j] = -1;
      }
    }
    this.eRepair[e] = 0;
  }

  private alloc(current: number): number {
    const s = this.free.pop();
    if (s !== undefined) return s;
    if (this.slots.length < this.maxSlots) {
      this.slots.push(new Uint8Array(this.slotSize));
      this.slotLen.push(0);
      return this.slots.length - 1;
    }
    // Pool exhausted: the oldest open block other than the current one gives up its buffers.
    for (let age = this.w - 1; age > 0; age--) {
      const e = (this.newest - age) & (this.w - 1);
      if (e === current || this.eState[e] !== OPEN) continue;
      this.metrics.blocksEvictedForMemory++;
      this.close(e, true);
      const freed = this.free.pop();
      if (freed !== undefined) return freed;
    }
    // Only the current block holds buffers: it cannot be larger than the pool, but stay safe.
    this.close(current, true);
    return -1;
  }

  private test(e: number, bit: number): boolean {
    return (this.bits[e * 8 + (bit >>> 5)] & (1 << (bit & 31))) !== 0;
  }

  private testAndSet(e: number, bit: number): boolean {
    const i = e * 8 + (bit >>> 5);
    const mask = 1 << (bit & 31);
    const was = (this.bits[i] & mask) !== 0;
    this.bits[i] |= mask;
    return was;
  }
}
