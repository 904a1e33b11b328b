// HTTP/3 frames (RFC 9114 §7): `Frame { Type (i), Length (i), Payload (..) }`.
// The reader is streaming: it accepts bytes in any chunking, hands DATA payloads through as views
// of the input (never buffering a whole DATA frame), skips unknown and GREASE frames by length
// without buffering, and buffers only the small control frames, each under a size limit.

import { H3Error, H3ErrorCode } from './error.js';
import {
  readVarint,
  varintSize,
  varintSizeBigInt,
  writeVarint,
  writeVarintBigInt,
} from './varint.js';

export const FrameType = {
  DATA: 0x00,
  HEADERS: 0x01,
  CANCEL_PUSH: 0x03,
  SETTINGS: 0x04,
  PUSH_PROMISE: 0x05,
  GOAWAY: 0x07,
  MAX_PUSH_ID: 0x0d,
} as const;

/** HTTP/2 frame types with no HTTP/3 meaning (PRIORITY, PING, WINDOW_UPDATE, CONTINUATION). */
export function isReservedHttp2FrameType(type: number): boolean {
  return type === 0x02 || type === 0x06 || type === 0x08 || type === 0x09;
}

/** GREASE values 0x1f * N + 0x21 (RFC 9114 §7.2.8, §6.2.3, §7.2.4.1). */
export function isGreaseValue(value: number): boolean {
  return value >= 0x21 && Number.isSafeInteger(value) && (value - 0x21) % 0x1f === 0;
}

/** The GREASE value for N. */
export function greaseValue(n: number): number {
  return 0x1f * n + 0x21;
}

const BUFFERED_TYPES = new Set<number>([
  FrameType.HEADERS,
  FrameType.CANCEL_PUSH,
  FrameType.SETTINGS,
  FrameType.PUSH_PROMISE,
  FrameType.GOAWAY,
  FrameType.MAX_PUSH_ID,
]);

/** Whether the type has a meaning in RFC 9114 (the frames this reader buffers, plus DATA). */
export function isKnownFrameType(type: number): boolean {
  return type === FrameType.DATA || BUFFERED_TYPES.has(type);
}

export function frameHeaderSize(type: number, length: number): number {
  return varintSize(type) + varintSize(length);
}

/** Writes a frame header at `offset`; returns the offset after it. */
export function writeFrameHeader(
  buf: Uint8Array,
  offset: number,
  type: number,
  length: number,
): number {
  return writeVarint(buf, writeVarint(buf, offset, type), length);
}

export function encodeFrame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(frameHeaderSize(type, payload.length) + payload.length);
  out.set(payload, writeFrameHeader(out, 0, type, payload.length));
  return out;
}

/**
 * GOAWAY, CANCEL_PUSH and MAX_PUSH_ID carry one varint and nothing else. A bigint ID covers the
 * 2^62-4 of a first GOAWAY, which a double cannot hold.
 */
export function encodeIdFrame(type: number, id: number | bigint): Uint8Array {
  const big = BigInt(id);
  const size = varintSizeBigInt(big);
  const out = new Uint8Array(frameHeaderSize(type, size) + size);
  writeVarintBigInt(out, writeFrameHeader(out, 0, type, size), big);
  return out;
}

/** Parses a one-varint payload; anything but exactly one varint is H3_FRAME_ERROR. */
export function decodeIdPayload(payload: Uint8Array): number {
  const v = readVarint(payload, 0);
  if (v === undefined || v.length !== payload.length) {
    throw new H3Error(H3ErrorCode.FRAME_ERROR, 'frame payload is not exactly one varint');
  }
  return v.value;
}

/** Receives what the reader finds. Any method may throw an H3Error to reject the frame. */
export interface FrameSink {
  /** Every frame header, known or not, before any of its payload. */
  frameStart(type: number, length: number): void;
  /** A piece of a DATA payload: a view into the input chunk, valid only during the call. */
  data(bytes: Uint8Array): void;
  /** A complete HEADERS, SETTINGS, GOAWAY, CANCEL_PUSH, MAX_PUSH_ID or PUSH_PROMISE frame. */
  frame(type: number, payload: Uint8Array): void;
}

export interface FrameLimits {
  /** Largest HEADERS or PUSH_PROMISE payload buffered; beyond it: stream error H3_EXCESSIVE_LOAD. */
  maxHeadersPayload: number;
  /** Largest SETTINGS payload buffered; beyond it: connection error H3_EXCESSIVE_LOAD. */
  maxControlPayload: number;
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = {
  maxHeadersPayload: 65536,
  maxControlPayload: 16384,
};

const NO_BYTES = new Uint8Array(0);

const enum State {
  Header,
  Data,
  Buffer,
  Skip,
}

export class FrameReader {
  private state = State.Header;
  private readonly header = new Uint8Array(16);
  private headerLength = 0;
  private type = 0;
  private remaining = 0;
  private buffer: Uint8Array = NO_BYTES;
  private buffered = 0;
  private halted = false;

  constructor(private readonly limits: FrameLimits = DEFAULT_FRAME_LIMITS) {}

  /** True between frames, i.e. a FIN here is clean. */
  get atFrameBoundary(): boolean {
    return this.state === State.Header && this.headerLength === 0;
  }

  /** Discards everything from now on (the stream was aborted inside a sink callback). */
  halt(): void {
    this.halted = true;
  }

  push(chunk: Uint8Array, sink: FrameSink): void {
    let off = 0;
    const end = chunk.length;
    while (off < end && !this.halted) {
      switch (this.state) {
        case State.Header:
          this.header[this.headerLength++] = chunk[off++];
          this.parseHeader(sink);
          break;
        case State.Data: {
          const n = Math.min(this.remaining, end - off);
          this.remaining -= n;
          const piece = chunk.subarray(off, off + n);
          off += n;
          if (this.remaining === 0) this.state = State.Header;
          sink.data(piece);
          break;
        }
        case State.Skip: {
          const n = Math.min(this.remaining, end - off);
          this.remaining -= n;
          off += n;
          if (this.remaining === 0) this.state = State.Header;
          break;
        }
        case State.Buffer: {
          const n = Math.min(this.remaining, end - off);
          if (this.buffered === 0 && n < this.remaining)
            this.buffer = new Uint8Array(this.remaining);
          this.remaining -= n;
          if (this.buffered === 0 && this.remaining === 0) {
            // The whole payload is in this chunk: no copy.
            this.state = State.Header;
            const payload = chunk.subarray(off, off + n);
            off += n;
            sink.frame(this.type, payload);
          } else {
            this.buffer.set(chunk.subarray(off, off + n), this.buffered);
            this.buffered += n;
            off += n;
            if (this.remaining === 0) {
              this.state = State.Header;
              const payload = this.buffer;
              this.buffer = NO_BYTES;
              this.buffered = 0;
              sink.frame(this.type, payload);
            }
          }
          break;
        }
      }
    }
  }

  /** The stream ended (FIN). A frame cut short is H3_FRAME_ERROR (RFC 9114 §7.1). */
  end(): void {
    if (!this.halted && !this.atFrameBoundary) {
      throw new H3Error(H3ErrorCode.FRAME_ERROR, 'stream ended inside a frame');
    }
  }

  private parseHeader(sink: FrameSink): void {
    const h = this.header;
    const typeLength = 1 << (h[0] >> 6);
    if (this.headerLength < typeLength) return;
    if (this.headerLength === typeLength) {
      const type = readVarint(h, 0)!.value;
      if (isReservedHttp2FrameType(type)) {
        throw new H3Error(H3ErrorCode.FRAME_UNEXPECTED, `reserved HTTP/2 frame type 0x0${type}`);
      }
      return;
    }
    const lengthLength = 1 << (h[typeLength] >> 6);
    if (this.headerLength < typeLength + lengthLength) return;
    const type = readVarint(h, 0)!.value;
    const length = readVarint(h, typeLength)!.value;
    this.headerLength = 0;
    this.type = type;
    this.remaining = length;
    sink.frameStart(type, length);
    if (this.halted) return;
    if (type === FrameType.DATA) {
      this.state = length === 0 ? State.Header : State.Data;
      return;
    }
    if (!BUFFERED_TYPES.has(type)) {
      this.state = length === 0 ? State.Header : State.Skip;
      return;
    }
    this.checkLimit(type, length);
    if (length === 0) {
      this.state = State.Header;
      sink.frame(type, NO_BYTES);
      return;
    }
    this.state = State.Buffer;
    this.buffered = 0;
  }

  private checkLimit(type: number, length: number): void {
    switch (type) {
      case FrameType.GOAWAY:
      case FrameType.CANCEL_PUSH:
      case FrameType.MAX_PUSH_ID:
        // One varint: never more than 8 bytes, so a longer frame is malformed, not just large.
        if (length > 8) throw new H3Error(H3ErrorCode.FRAME_ERROR, 'ID frame longer than a varint');
        return;
      case FrameType.SETTINGS:
        if (length > this.limits.maxControlPayload) {
          throw new H3Error(H3ErrorCode.EXCESSIVE_LOAD, `SETTINGS of ${length} bytes`);
        }
        return;
      default:
        if (length > this.limits.maxHeadersPayload) {
          throw new H3Error(
            H3ErrorCode.EXCESSIVE_LOAD,
            `field section of ${length} bytes exceeds ${this.limits.maxHeadersPayload}`,
            'stream',
          );
        }
    }
  }
}
