// The sending half of the FEC engine, sans-I/O. Each outgoing IP packet goes out at once: plainly
// on context 0 while FEC is off, or with an FEC header on the FEC context while a block is open.
// The packet is folded into the block's repair accumulators as it passes (the code's coefficients
// do not depend on the final k), so the sender keeps no copies of data packets. The block closes
// when it holds k packets or when the flush deadline passes, and its repair payloads go out then.
// Time is whatever monotonic millisecond clock the caller uses; the engine owns no timer.
import type { ErasureCode, FecScheme } from './code.js';
import { codeFor } from './codes.js';
import {
  FEC_HEADER_SIZE,
  SCHEME_RS,
  SCHEME_XOR,
  type FecHeader,
  writeFecHeader,
} from './header.js';
import { type FecMetrics, newFecMetrics } from './metrics.js';
import { LENGTH_PREFIX, MAX_PACKET, addPacketToSymbols, symbolSize } from './symbol.js';

/** Where the sender's datagram payloads go. Views are valid only during the call. */
export interface FecSendSink {
  /** An IP packet to send unchanged on context 0. */
  sendPlain(packet: Uint8Array): void;
  /** One payload for the FEC context: `header` followed by `body` (a data packet or a repair symbol). */
  sendFec(header: Uint8Array, body: Uint8Array): void;
}

export interface FecSenderOptions {
  scheme: FecScheme;
  /** Negotiated largest block (data packets). */
  maxK: number;
  /** Negotiated largest number of repair packets per block (1 for XOR). */
  maxM: number;
  /** Largest IP packet the tunnel carries (its MTU); longer ones go out unprotected. */
  maxPacketSize: number;
  /** Longest a packet waits for its block's repair, in ms. */
  flushDelayMs: number;
  /**
   * A block the flush timer finds so short that even one repair packet would exceed the planned
   * ratio (count × m < k: two packets of a k = 10, m = 2 plan) waits up to this long after its
   * first packet instead, closing when full as usual. Slow flows then get the planned block
   * (10 + 2 recovers two losses; 5 + 1 only one) at the planned overhead, rather than one repair
   * per two or three packets; the cost is only for lost packets, whose recovery waits longer
   * (data packets never wait). Default flushDelayMs: no stretching.
   */
  maxFlushDelayMs?: number;
  /**
   * Blocks filled in turn (1, the default: one block at a time). With depth D, consecutive packets
   * belong to D different blocks and a full block's repair waits for D − 1 further packets, so a
   * burst of up to D consecutive lost datagrams costs any block at most one data packet and
   * never that packet's repair too. Each block still closes flushDelayMs after its first packet.
   */
  interleave?: number;
}

export class FecSenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FecSenderError';
  }
}

export const MAX_INTERLEAVE = 16;

/** One block being filled, or a full one whose repair is held back (`pending`). */
interface Lane {
  readonly acc: Uint8Array[];
  blockId: number;
  /** Data packets in the block; 0 = the lane holds no block. */
  count: number;
  k: number;
  m: number;
  longest: number;
  deadline: number;
  /** Full; its repair goes out before the lane's next packet or at the deadline. */
  pending: boolean;
  /** Open order, to flush oldest first. */
  opened: number;
  /** When the block's first packet was added (ms, the caller's clock). */
  start: number;
  /** The flush deadline was stretched once (see maxFlushDelayMs). */
  stretched: boolean;
}

export class FecSender {
  readonly metrics: FecMetrics;
  private readonly code: ErasureCode;
  private readonly schemeId: 0 | 1;
  private readonly lanes: Lane[];
  private readonly header = new Uint8Array(FEC_HEADER_SIZE);
  private readonly coefs = new Uint8Array(256);
  private readonly h: FecHeader = { scheme: 0, blockId: 0, index: 0, k: 1, m: 1 };
  private planK: number;
  private planM = 0;
  private nextBlockId = 0;
  private opened = 0;
  /** The lane the next protected packet goes to. */
  private turn = 0;
  /** Longest a short block may be held (maxFlushDelayMs, or flushDelayMs: no stretching). */
  private readonly maxFlushDelayMs: number;

  constructor(
    private readonly options: FecSenderOptions,
    metrics?: FecMetrics,
  ) {
    const { scheme, maxK, maxM, maxPacketSize, flushDelayMs } = options;
    const depth = options.interleave ?? 1;
    this.code = codeFor(scheme);
    this.schemeId = scheme === 'xor' ? SCHEME_XOR : SCHEME_RS;
    if (!Number.isInteger(maxK) || maxK < 1 || maxK > 255) {
      throw new FecSenderError(`k ${maxK} outside 1..255`);
    }
    if (!Number.isInteger(maxM) || maxM < 1 || maxM > this.code.maxRepair || maxK + maxM > 256) {
      throw new FecSenderError(`m ${maxM} invalid for ${scheme} with k ${maxK}`);
    }
    if (!Number.isInteger(maxPacketSize) || maxPacketSize < 1 || maxPacketSize > MAX_PACKET) {
      throw new FecSenderError(`packet size ${maxPacketSize} outside 1..${MAX_PACKET}`);
    }
    if (!(flushDelayMs >= 0)) throw new FecSenderError(`flush delay ${flushDelayMs} is negative`);
    const maxFlush = options.maxFlushDelayMs ?? flushDelayMs;
    if (!(maxFlush >= flushDelayMs)) {
      throw new FecSenderError(
        `longest flush ${maxFlush} ms is below the flush delay ${flushDelayMs}`,
      );
    }
    if (!Number.isInteger(depth) || depth < 1 || depth > MAX_INTERLEAVE) {
      throw new FecSenderError(`interleave ${depth} outside 1..${MAX_INTERLEAVE}`);
    }
    this.maxFlushDelayMs = maxFlush;
    this.metrics = metrics ?? newFecMetrics();
    this.lanes = Array.from({ length: depth }, () => ({
      acc: Array.from({ length: maxM }, () => new Uint8Array(symbolSize(maxPacketSize))),
      blockId: 0,
      count: 0,
      k: 0,
      m: 0,
      longest: 0,
      deadline: 0,
      pending: false,
      opened: 0,
      start: 0,
      stretched: false,
    }));
    this.planK = maxK;
    this.planM = maxM;
    this.metrics.currentRatio = maxM / maxK;
  }

  /**
   * Sets the block shape for blocks opened from now on (initially the negotiated k and m); m = 0
   * turns protection off (packets go out plainly on context 0, zero overhead). Open blocks keep
   * their shape.
   */
  setPlan(k: number, m: number): void {
    if (!Number.isInteger(k) || k < 1 || k > this.options.maxK) {
      throw new FecSenderError(`k ${k} outside 1..${this.options.maxK}`);
    }
    if (!Number.isInteger(m) || m < 0 || m > this.options.maxM) {
      throw new FecSenderError(`m ${m} outside 0..${this.options.maxM}`);
    }
    this.planK = k;
    this.planM = m;
    this.metrics.currentRatio = m / k;
  }

  get plan(): { k: number; m: number } {
    return { k: this.planK, m: this.planM };
  }

  get interleave(): number {
    return this.lanes.length;
  }

  send(packet: Uint8Array, now: number, sink: FecSendSink): void {
    const len = packet.length;
    const lanes = this.lanes;
    if (len > this.options.maxPacketSize || len === 0) {
      this.metrics.packetsUnprotected++;
      sink.sendPlain(packet);
      return;
    }
    const lane = lanes[this.turn];
    if (lane.pending) this.emitRepair(lane, sink);
    if (lane.count === 0) {
      if (this.planM === 0) {
        this.metrics.packetsUnprotected++;
        sink.sendPlain(packet);
        return;
      }
      lane.blockId = this.nextBlockId;
      this.nextBlockId = (this.nextBlockId + 1) & 0xffff;
      lane.opened = this.opened++;
      lane.k = this.planK;
      lane.m = this.planM;
      lane.longest = 0;
      lane.start = now;
      lane.stretched = false;
      lane.deadline = now + this.options.flushDelayMs;
    }
    this.turn = this.turn + 1 === lanes.length ? 0 : this.turn + 1;
    const index = lane.count;
    for (let j = 0; j < lane.m; j++) this.coefs[j] = this.code.coefficient(j, index);
    addPacketToSymbols(lane.acc, this.coefs, lane.m, packet, 0, len);
    if (len > lane.longest) lane.longest = len;
    lane.count++;
    this.emitHeader(lane.blockId, index, lane.k, lane.m);
    this.metrics.packetsProtected++;
    this.metrics.overheadBytes += FEC_HEADER_SIZE;
    sink.sendFec(this.header, packet);
    if (lane.count === lane.k) {
      // Without interleaving the repair follows at once; with it, it waits for the lane's next
      // turn (D − 1 packets later) so that one burst cannot take a packet and its repair.
      if (lanes.length === 1) this.emitRepair(lane, sink);
      else lane.pending = true;
    }
  }

  /** When `onTimer` must run next (ms, the caller's clock), or undefined when no block is open. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const lane of this.lanes) {
      if (lane.count !== 0 && (next === undefined || lane.deadline < next)) next = lane.deadline;
    }
    return next;
  }

  onTimer(now: number, sink: FecSendSink): void {
    // Oldest first, so repairs leave in the order their blocks opened.
    for (;;) {
      const lane = this.oldest(now);
      if (lane === undefined) return;
      if (!lane.stretched && !lane.pending && lane.count * lane.m < lane.k) {
        const later = lane.start + this.maxFlushDelayMs;
        if (later > now) {
          lane.stretched = true;
          lane.deadline = later;
          continue;
        }
      }
      this.emitRepair(lane, sink);
    }
  }

  /** Closes every block now (tunnel closing, or the caller batches its own flushes). */
  flush(sink: FecSendSink): void {
    for (let lane = this.oldest(Infinity); lane !== undefined; lane = this.oldest(Infinity)) {
      this.emitRepair(lane, sink);
    }
  }

  /** The earliest-opened lane holding a block whose deadline is at or before `dueBy`. */
  private oldest(dueBy: number): Lane | undefined {
    let found: Lane | undefined;
    for (const lane of this.lanes) {
      if (lane.count === 0 || lane.deadline > dueBy) continue;
      if (found === undefined || lane.opened < found.opened) found = lane;
    }
    return found;
  }

  /** Ends the lane's block: its repair packets go out and the lane is free for the next one. */
  private emitRepair(lane: Lane, sink: FecSendSink): void {
    const k = lane.count;
    const size = LENGTH_PREFIX + lane.longest;
    // A block the flush timer closed early gets repair in proportion to what it holds (at least
    // one row): the full plan on a block of two packets would cost more than the packets. Rows
    // do not depend on m, so the first m rows are a valid code for any smaller m.
    const m = Math.max(1, Math.min(lane.m, Math.ceil((k * lane.m) / lane.k)));
    for (let j = 0; j < m; j++) {
      this.emitHeader(lane.blockId, k + j, k, m);
      this.metrics.repairPacketsSent++;
      this.metrics.overheadBytes += FEC_HEADER_SIZE + size;
      sink.sendFec(this.header, lane.acc[j].subarray(0, size));
      lane.acc[j].fill(0, 0, size);
    }
    for (let j = m; j < lane.m; j++) lane.acc[j].fill(0, 0, size);
    lane.count = 0;
    lane.pending = false;
  }

  private emitHeader(blockId: number, index: number, k: number, m: number): void {
    const h = this.h;
    h.scheme = this.schemeId;
    h.blockId = blockId;
    h.index = index;
    h.k = k;
    h.m = m;
    writeFecHeader(h, this.header);
  }
}
