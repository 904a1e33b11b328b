// QUIC variable-length integers (RFC 9000 §16), used by every HTTP/3, capsule and datagram codec.
// Values are plain numbers. Every length and stream ID this project acts on fits in 2^53; larger
// values do occur on the wire (GREASE frame types and setting identifiers reach 2^62-1), and for
// those only "unknown and large" matters, so they decode to the nearest double instead of failing.
// Length checks against buffer limits reject them long before precision could matter.

/** Largest value a varint can carry that is also an exact JS number. */
export const VARINT_MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** Largest value representable on the wire (2^62 - 1). */
export const VARINT_MAX_WIRE = 2n ** 62n - 1n;

/** Result of decoding: the value and how many bytes it took; `undefined` means "need more bytes". */
export interface VarintRead {
  value: number;
  length: number;
}

export class VarintRangeError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = 'VarintRangeError';
  }
}

/** Encoded length of a varint prefix, from its first byte (1, 2, 4 or 8). */
export function varintLengthFromFirstByte(first: number): number {
  return 1 << (first >> 6);
}

/** Minimal encoded length of `value`. */
export function varintSize(value: number): number {
  if (value < 0 || !Number.isInteger(value))
    throw new VarintRangeError(`varint ${value} is not a non-negative integer`);
  if (value < 0x40) return 1;
  if (value < 0x4000) return 2;
  if (value < 0x40000000) return 4;
  if (value <= VARINT_MAX_SAFE) return 8;
  throw new VarintRangeError(`varint ${value} exceeds 2^53-1`);
}

/**
 * Decodes a varint at `offset`. Returns `undefined` when `buf` ends before the varint does.
 * Non-minimal encodings are accepted (RFC 9000 §16 allows them). Values above 2^53-1 come back
 * rounded to the nearest double (see the file comment); never throws.
 */
export function readVarint(buf: Uint8Array, offset: number): VarintRead | undefined {
  if (offset >= buf.length) return undefined;
  const first = buf[offset];
  const length = varintLengthFromFirstByte(first);
  if (offset + length > buf.length) return undefined;
  let value = first & 0x3f;
  if (length === 8) {
    // Split into two 32-bit halves so the arithmetic stays exact.
    const hi =
      ((value << 24) | (buf[offset + 1] << 16) | (buf[offset + 2] << 8) | buf[offset + 3]) >>> 0;
    const lo =
      ((buf[offset + 4] << 24) |
        (buf[offset + 5] << 16) |
        (buf[offset + 6] << 8) |
        buf[offset + 7]) >>>
      0;
    return { value: hi * 0x100000000 + lo, length };
  }
  for (let i = 1; i < length; i++) value = value * 256 + buf[offset + i];
  return { value, length };
}

/**
 * Writes `value` at `offset` using `length` bytes (default: minimal) and returns the offset after
 * it. Throws VarintRangeError if the value does not fit the requested length.
 */
export function writeVarint(
  buf: Uint8Array,
  offset: number,
  value: number,
  length: number = varintSize(value),
): number {
  if (length < varintSize(value)) {
    throw new VarintRangeError(`varint ${value} does not fit in ${length} bytes`);
  }
  switch (length) {
    case 1:
      buf[offset] = value;
      return offset + 1;
    case 2:
      buf[offset] = 0x40 | (value >> 8);
      buf[offset + 1] = value & 0xff;
      return offset + 2;
    case 4:
      buf[offset] = 0x80 | ((value >>> 24) & 0x3f);
      buf[offset + 1] = (value >>> 16) & 0xff;
      buf[offset + 2] = (value >>> 8) & 0xff;
      buf[offset + 3] = value & 0xff;
      return offset + 4;
    case 8: {
      const hi = Math.floor(value / 0x100000000);
      const lo = value >>> 0;
      buf[offset] = 0xc0 | ((hi >>> 24) & 0x3f);
      buf[offset + 1] = (hi >>> 16) & 0xff;
      buf[offset + 2] = (hi >>> 8) & 0xff;
      buf[offset + 3] = hi & 0xff;
      buf[offset + 4] = (lo >>> 24) & 0xff;
      buf[offset + 5] = (lo >>> 16) & 0xff;
      buf[offset + 6] = (lo >>> 8) & 0xff;
      buf[offset + 7] = lo & 0xff;
      return offset + 8;
    }
    default:
      throw new VarintRangeError(`invalid varint length ${length}`);
  }
}

/** Convenience for building messages off the hot path. */
export function encodeVarint(value: number, length?: number): Uint8Array {
  const size = length ?? varintSize(value);
  const out = new Uint8Array(size);
  writeVarint(out, 0, value, size);
  return out;
}

/**
 * Writes a varint given as a bigint, for the few wire values above 2^53 we send ourselves (the
 * 2^62-4 of a first GOAWAY). Returns the offset after it; always uses 8 bytes above 2^30-1.
 */
export function writeVarintBigInt(buf: Uint8Array, offset: number, value: bigint): number {
  if (value < 0n || value > VARINT_MAX_WIRE) {
    throw new VarintRangeError(`varint ${value} outside 0..2^62-1`);
  }
  if (value <= BigInt(VARINT_MAX_SAFE)) return writeVarint(buf, offset, Number(value));
  for (let i = 7; i >= 0; i--) {
    buf[offset + i] = Number(value & 0xffn);
    value >>= 8n;
  }
  buf[offset] |= 0xc0;
  return offset + 8;
}

/** Encoded length of a bigint varint as `writeVarintBigInt` writes it. */
export function varintSizeBigInt(value: bigint): number {
  return value <= BigInt(VARINT_MAX_SAFE) ? varintSize(Number(value)) : 8;
}
