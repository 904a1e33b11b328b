// QPACK (RFC 9204) for an endpoint whose dynamic table capacity is 0 (PROTOCOL.md §3): field
// sections may only use the static table and literals, the encoder never inserts and always
// emits the `00 00` prefix, and the encoder/decoder streams carry (almost) nothing.

import { H3Error, H3ErrorCode, H3UsageError } from './error.js';
import { huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';
import { STATIC_TABLE, staticIndexOf, staticNameIndexOf } from './static-table.js';

export type HeaderField = [name: string, value: string];
export type HeaderList = Array<HeaderField>;

/** `auto`: Huffman when strictly shorter (quiche); `always`: every literal (quic-go); `never`. */
export type HuffmanMode = 'auto' | 'always' | 'never';

const MAX_INT_BYTES = 10; // 62 bits in 7-bit groups after the prefix, with a margin of one
const MAX_WIRE = 2 ** 62 - 1;

function failed(message: string): H3Error {
  return new H3Error(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, message);
}

/** Reads field lines from one encoded field section; every violation is QPACK_DECOMPRESSION_FAILED. */
class SectionReader {
  pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** An HPACK-style prefixed integer (RFC 7541 §5.1) whose prefix is the low `bits` of the byte. */
  int(bits: number): number {
    const buf = this.buf;
    if (this.pos >= buf.length) throw failed('truncated integer');
    const mask = (1 << bits) - 1;
    let value = buf[this.pos++] & mask;
    if (value < mask) return value;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i === MAX_INT_BYTES) throw failed('integer encoding too long');
      if (this.pos >= buf.length) throw failed('truncated integer');
      const b = buf[this.pos++];
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) break;
    }
    if (value > MAX_WIRE) throw failed('integer exceeds 62 bits');
    return value;
  }

  /** A string literal whose H flag is `hBit` of the current byte and length the bits below it. */
  string(hBit: number): string {
    if (this.pos >= this.buf.length) throw failed('truncated string');
    const huffman = (this.buf[this.pos] & hBit) !== 0;
    const length = this.int(Math.log2(hBit));
    if (length > this.buf.length - this.pos) throw failed('string runs past the field section');
    const start = this.pos;
    this.pos += length;
    const bytes = huffman
      ? huffmanDecode(this.buf, start, start + length)
      : this.buf.subarray(start, start + length);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
  }
}

function staticEntry(index: number): readonly [string, string] {
  if (index >= STATIC_TABLE.length) throw failed(`static index ${index} out of range`);
  return STATIC_TABLE[index];
}

/**
 * Decodes an encoded field section (the payload of a HEADERS frame). Any reference to the dynamic
 * table is an error because our advertised capacity is 0 (RFC 9204 §4.5.1.1, §3.2.3).
 */
export function decodeFieldSection(block: Uint8Array): HeaderList {
  const r = new SectionReader(block);
  if (r.int(8) !== 0) throw failed('Required Insert Count is not 0 with a zero-capacity table');
  if (r.done) throw failed('truncated field section prefix');
  const sign = (block[r.pos] & 0x80) !== 0;
  r.int(7); // Delta Base: any value is legal without dynamic references (§4.5.1.2)
  if (sign) throw failed('Delta Base sign set while Required Insert Count is 0');
  const headers: HeaderList = [];
  while (!r.done) {
    const b = block[r.pos];
    if (b & 0x80) {
      // 1Txxxxxx indexed field line
      if ((b & 0x40) === 0) throw failed('dynamic table reference');
      const [name, value] = staticEntry(r.int(6));
      headers.push([name, value]);
    } else if (b & 0x40) {
      // 01NTxxxx literal with name reference
      if ((b & 0x10) === 0) throw failed('dynamic table name reference');
      const [name] = staticEntry(r.int(4));
      headers.push([name, r.string(0x80)]);
    } else if (b & 0x20) {
      // 001NHxxx literal with literal name
      const name = r.string(0x08);
      headers.push([name, r.string(0x80)]);
    } else {
      // 0001xxxx indexed post-base, 0000Nxxx literal with post-base name reference
      throw failed('post-base reference');
    }
  }
  return headers;
}

function intSize(value: number, bits: number): number {
  const mask = (1 << bits) - 1;
  if (value < mask) return 1;
  let size = 2;
  for (let rest = value - mask; rest >= 128; rest = Math.floor(rest / 128)) size++;
  return size;
}

function writeInt(
  out: Uint8Array,
  off: number,
  value: number,
  bits: number,
  flags: number,
): number {
  const mask = (1 << bits) - 1;
  if (value < mask) {
    out[off] = flags | value;
    return off + 1;
  }
  out[off++] = flags | mask;
  let rest = value - mask;
  while (rest >= 128) {
    out[off++] = 0x80 | (rest % 128);
    rest = Math.floor(rest / 128);
  }
  out[off++] = rest;
  return off;
}

function latin1(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0xff) throw new H3UsageError(`field contains a non-octet character`);
  }
  return Buffer.from(s, 'latin1');
}

interface StringPlan {
  bytes: Uint8Array;
  huffman: boolean;
  length: number;
}

function planString(s: string, mode: HuffmanMode): StringPlan {
  const bytes = latin1(s);
  if (mode === 'never') return { bytes, huffman: false, length: bytes.length };
  const h = huffmanEncodedLength(bytes);
  if (mode === 'always' || h < bytes.length) return { bytes, huffman: true, length: h };
  return { bytes, huffman: false, length: bytes.length };
}

function writeString(out: Uint8Array, off: number, p: StringPlan, hBit: number, flags: number) {
  const o = writeInt(out, off, p.length, Math.log2(hBit), flags | (p.huffman ? hBit : 0));
  if (p.huffman) return huffmanEncode(p.bytes, out, o);
  out.set(p.bytes, o);
  return o + p.bytes.length;
}

type LinePlan =
  | { kind: 'indexed'; index: number }
  | { kind: 'nameRef'; index: number; value: StringPlan }
  | { kind: 'literal'; name: StringPlan; value: StringPlan };

export interface EncodeOptions {
  huffman?: HuffmanMode;
}

/**
 * Encodes a field section with the `00 00` prefix: exact static matches as indexed lines, static
 * name matches as name references, everything else with literal names. Never references the
 * dynamic table, whatever capacity the peer offered.
 */
export function encodeFieldSection(
  headers: ReadonlyArray<readonly [string, string]>,
  opts: EncodeOptions = {},
): Uint8Array {
  const mode = opts.huffman ?? 'auto';
  const plans: LinePlan[] = [];
  let size = 2;
  for (const [name, value] of headers) {
    const exact = staticIndexOf(name, value);
    if (exact >= 0) {
      plans.push({ kind: 'indexed', index: exact });
      size += intSize(exact, 6);
      continue;
    }
    const v = planString(value, mode);
    const nameIndex = staticNameIndexOf(name);
    if (nameIndex >= 0) {
      plans.push({ kind: 'nameRef', index: nameIndex, value: v });
      size += intSize(nameIndex, 4) + intSize(v.length, 7) + v.length;
    } else {
      const n = planString(name, mode);
      plans.push({ kind: 'literal', name: n, value: v });
      size += intSize(n.length, 3) + n.length + intSize(v.length, 7) + v.length;
    }
  }
  const out = new Uint8Array(size);
  let off = 2; // Required Insert Count 0, Delta Base 0
  for (const p of plans) {
    switch (p.kind) {
      case 'indexed':
        off = writeInt(out, off, p.index, 6, 0xc0);
        break;
      case 'nameRef':
        off = writeInt(out, off, p.index, 4, 0x50);
        off = writeString(out, off, p.value, 0x80, 0);
        break;
      case 'literal':
        off = writeString(out, off, p.name, 0x08, 0x20);
        off = writeString(out, off, p.value, 0x80, 0);
        break;
    }
  }
  return out;
}

/** Size of a field section as RFC 9114 §4.2.2 counts it (name + value + 32 per line). */
export function fieldSectionSize(headers: ReadonlyArray<readonly [string, string]>): number {
  let size = 0;
  for (const [name, value] of headers) size += name.length + value.length + 32;
  return size;
}

/**
 * Collects one instruction of a QPACK stream at a time: the first byte plus, when its prefix
 * integer overflows, continuation bytes up to the one without the 0x80 flag.
 */
class InstructionAssembler {
  private readonly bytes = new Uint8Array(MAX_INT_BYTES + 1);
  private length = 0;

  constructor(private readonly errorCode: number) {}

  /** Adds a byte; returns the completed instruction or undefined. */
  get empty(): boolean {
    return this.length === 0;
  }

  add(byte: number, prefixBits: (first: number) => number): Uint8Array | undefined {
    if (this.length === this.bytes.length) {
      throw new H3Error(this.errorCode, 'instruction integer too long');
    }
    this.bytes[this.length++] = byte;
    const first = this.bytes[0];
    const mask = (1 << prefixBits(first)) - 1;
    const complete = this.length === 1 ? (first & mask) < mask : (byte & 0x80) === 0;
    if (!complete) return undefined;
    const done = this.bytes.subarray(0, this.length);
    this.length = 0;
    return done;
  }
}

function instructionValue(bytes: Uint8Array, prefixBits: number): number {
  const r = new SectionReader(bytes);
  return r.int(prefixBits);
}

/**
 * The peer's QPACK encoder stream (type 0x02). With our capacity at 0 it must stay silent
 * (RFC 9204 §3.2.3). Lenient mode drains it; strict mode accepts only Set Dynamic Table
 * Capacity 0 and treats anything else as QPACK_ENCODER_STREAM_ERROR.
 */
export class QpackEncoderStreamReader {
  private readonly assembler = new InstructionAssembler(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR);
  constructor(private readonly strict = false) {}

  push(chunk: Uint8Array): void {
    if (!this.strict) return;
    for (let i = 0; i < chunk.length; i++) {
      if (this.assembler.empty && (chunk[i] & 0xe0) !== 0x20) {
        throw new H3Error(
          H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
          'insert or duplicate instruction with a zero-capacity table',
        );
      }
      const instr = this.assembler.add(chunk[i], () => 5);
      if (!instr) continue;
      let capacity: number;
      try {
        capacity = instructionValue(instr, 5);
      } catch {
        throw new H3Error(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR, 'bad capacity integer');
      }
      if (capacity !== 0) {
        throw new H3Error(
          H3ErrorCode.QPACK_ENCODER_STREAM_ERROR,
          `dynamic table capacity ${capacity} exceeds our maximum 0`,
        );
      }
    }
  }
}

/**
 * The peer's QPACK decoder stream (type 0x03). Stream Cancellation is harmless and ignored; a
 * Section Acknowledgment or Insert Count Increment cannot be valid because we never insert
 * (strict mode → QPACK_DECODER_STREAM_ERROR). Lenient mode drains the stream.
 */
export class QpackDecoderStreamReader {
  private readonly assembler = new InstructionAssembler(H3ErrorCode.QPACK_DECODER_STREAM_ERROR);
  constructor(private readonly strict = false) {}

  push(chunk: Uint8Array): void {
    if (!this.strict) return;
    for (let i = 0; i < chunk.length; i++) {
      const instr = this.assembler.add(chunk[i], (b) => (b & 0x80 ? 7 : 6));
      if (!instr) continue;
      if ((instr[0] & 0xc0) === 0x40) continue; // Stream Cancellation
      throw new H3Error(
        H3ErrorCode.QPACK_DECODER_STREAM_ERROR,
        instr[0] & 0x80
          ? 'Section Acknowledgment without a dynamic reference'
          : 'Insert Count Increment',
      );
    }
  }
}
