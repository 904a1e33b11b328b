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
}

export class FecSenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FecSenderError';
  }
}

export class FecSender {
  readonly metrics: FecMetrics;
  private readonly code: ErasureCode;
  private readonly schemeId: 0 | 1;
  private readonly acc: Uint8Array[];
  private readonly header = new Uint8Array(FEC_HEADER_SIZE);
  private readonly coefs = new Uint8Array(256);
  private readonly h: FecHeader = { scheme: 0, blockId: 0, index: 0, k: 1, m: 1 };
  private planK: number;
  private planM = 0;
  // The open block (count === 0: none).
  private blockId = 0;
  private count = 0;
  private blockK = 0;
  private blockM = 0;
  private longest = 0;
  private deadline = 0;

  constructor(
    private readonly options: FecSenderOptions,
    metrics?: FecMetrics,
  ) {
    const { scheme, maxK, maxM, maxPacketSize, flushDelayMs } = options;
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
    this.metrics = metrics ?? newFecMetrics();
    this.acc = Array.from({ length: maxM }, () => new Uint8Array(symbolSize(maxPacketSize)));
    this.planK = maxK;
    this.planM = maxM;
    this.metrics.currentRatio = maxM / maxK;
  }

  /**
   * Sets the block shape for blocks opened from now on (initially the negotiated k and m); m = 0 turns protection off (packets go out
   * plainly on context 0, zero overhead). The open block, if any, keeps its shape.
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

  send(packet: Uint8Array, now: number, sink: FecSendSink): void {
    const len = packet.length;
    if (this.count === 0) {
      if (this.planM === 0 || len > this.options.maxPacketSize || len === 0) {
        this.metrics.packetsUnprotected++;
        sink.sendPlain(packet);
        return;
      }
      this.blockK = this.planK;
      this.blockM = this.planM;
      this.longest = 0;
      this.deadline = now + this.options.flushDelayMs;
    } else if (len > this.options.maxPacketSize || len === 0) {
      this.metrics.packetsUnprotected++;
      sink.sendPlain(packet);
      return;
    }
    const index = this.count;
    for (let j = 0; j < this.blockM; j++) this.coefs[j] = this.code.coefficient(j, index);
    addPacketToSymbols(this.acc, this.coefs, this.blockM, packet, 0, len);
    if (len > this.longest) this.longest = len;
    this.count++;
    this.emitHeader(index, this.blockK, this.blockM);
    this.metrics.packetsProtected++;
    this.metrics.overheadBytes += FEC_HEADER_SIZE;
    sink.sendFec(this.header, packet);
    if (this.count === this.blockK) this.closeBlock(sink);
  }

  /** When `onTimer` must run next (ms, the caller's clock), or undefined when no block is open. */
  nextDeadline(): number | undefined {
    return this.count === 0 ? undefined : this.deadline;
  }

  onTimer(now: number, sink: FecSendSink): void {
    if (this.count !== 0 && now >= this.deadline) this.closeBlock(sink);
  }

  /** Closes the open block now (tunnel closing, or the caller batches its own flushes). */
  flush(sink: FecSendSink): void {
    if (this.count !== 0) this.closeBlock(sink);
  }

  private closeBlock(sink: FecSendSink): void {
    const k = this.count;
    const size = LENGTH_PREFIX + this.longest;
    // A block the flush timer closed early gets repair in proportion to what it holds (at least
    // one row): the full plan on a block of two packets would cost more than the packets. Rows
    // do not depend on m, so the first m rows are a valid code for any smaller m.
    const m = Math.max(1, Math.min(this.blockM, Math.ceil((k * this.blockM) / this.blockK)));
    for (let j = 0; j < m; j++) {
      this.emitHeader(k + j, k, m);
      this.metrics.repairPacketsSent++;
      this.metrics.overheadBytes += FEC_HEADER_SIZE + size;
      sink.sendFec(this.header, this.acc[j].subarray(0, size));
      this.acc[j].fill(0, 0, size);
    }
    for (let j = m; j < this.blockM; j++) this.acc[j].fill(0, 0, size);
    this.count = 0;
    this.blockId = (this.blockId + 1) & 0xffff;
  }

  private emitHeader(index: number, k: number, m: number): void {
    const h = this.h;
    h.scheme = this.schemeId;
    h.blockId = this.blockId;
    h.index = index;
    h.k = k;
    h.m = m;
    writeFecHeader(h, this.header);
  }
}
