// The FEC header, in front of every payload on the negotiated FEC context (never on context 0):
//
//   FEC Header {
//     Version (4) = 1, Scheme (4),     -- 0 = XOR parity, 1 = Reed–Solomon
//     Block ID (16),                   -- wraps; compared in serial-number arithmetic
//     Index (8),                       -- < K: data packet Index; ≥ K: repair row Index − K
//     K (8), M (8),                    -- data and repair symbols in the block, 1 ≤ K, K + M ≤ 256
//   }
//
// On a data packet K and M are the block's planned size (the flush timer may close it earlier);
// the repair packets, sent when the block closes, carry the final K. The data packet or repair
// symbol follows the header directly.

export const FEC_HEADER_SIZE = 6;
export const FEC_VERSION = 1;

export type FecSchemeId = 0 | 1;
export const SCHEME_XOR: FecSchemeId = 0;
export const SCHEME_RS: FecSchemeId = 1;

export interface FecHeader {
  scheme: FecSchemeId;
  blockId: number;
  index: number;
  k: number;
  m: number;
}

export type FecHeaderErrorReason =
  | 'truncated'
  | 'unsupported-version'
  | 'unknown-scheme'
  | 'invalid-k'
  | 'invalid-m'
  | 'invalid-index'
  | 'empty-payload'
  | 'out-of-range';

export class FecHeaderError extends Error {
  constructor(
    readonly reason: FecHeaderErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'FecHeaderError';
  }
}

export function isRepair(h: FecHeader): boolean {
  return h.index >= h.k;
}

function checkShape(scheme: number, k: number, m: number, index: number): void {
  if (scheme !== SCHEME_XOR && scheme !== SCHEME_RS) {
    throw new FecHeaderError('unknown-scheme', `unknown FEC scheme ${scheme}`);
  }
  if (k < 1 || k > 255) throw new FecHeaderError('invalid-k', `K ${k} outside 1..255`);
  if (m < 1 || k + m > 256) throw new FecHeaderError('invalid-m', `M ${m} invalid with K ${k}`);
  if (scheme === SCHEME_XOR && m !== 1) {
    throw new FecHeaderError('invalid-m', `XOR parity has exactly one repair, got M ${m}`);
  }
  if (index >= k + m) {
    throw new FecHeaderError('invalid-index', `index ${index} outside a ${k}+${m} block`);
  }
}

/**
 * Parses the header at the start of `buf` into `out` (reused by the caller, so the receive path
 * allocates nothing). Throws FecHeaderError and nothing else, also on hostile input. A header with
 * nothing after it is rejected: a data packet or repair symbol is never empty.
 */
export function readFecHeader(buf: Uint8Array, out: FecHeader): FecHeader {
  if (buf.length < FEC_HEADER_SIZE) {
    throw new FecHeaderError('truncated', `FEC payload of ${buf.length} bytes has no full header`);
  }
  const b0 = buf[0];
  if (b0 >>> 4 !== FEC_VERSION) {
    throw new FecHeaderError('unsupported-version', `FEC header version ${b0 >>> 4}`);
  }
  const scheme = b0 & 0x0f;
  const index = buf[3];
  const k = buf[4];
  const m = buf[5];
  checkShape(scheme, k, m, index);
  if (buf.length === FEC_HEADER_SIZE) {
    throw new FecHeaderError('empty-payload', 'FEC header with no packet or symbol after it');
  }
  out.scheme = scheme as FecSchemeId;
  out.blockId = (buf[1] << 8) | buf[2];
  out.index = index;
  out.k = k;
  out.m = m;
  return out;
}

export function decodeFecHeader(buf: Uint8Array): FecHeader {
  return readFecHeader(buf, { scheme: SCHEME_XOR, blockId: 0, index: 0, k: 1, m: 1 });
}

function isByte(v: number): boolean {
  return (v & 0xff) === v;
}

/** Writes the header at dst[off..off+6); returns the bytes written. */
export function writeFecHeader(h: FecHeader, dst: Uint8Array, off = 0): number {
  if (!Number.isInteger(h.blockId) || h.blockId < 0 || h.blockId > 0xffff) {
    throw new FecHeaderError('out-of-range', `block id ${h.blockId} is not 16 bits`);
  }
  if (!isByte(h.k) || !isByte(h.m) || !isByte(h.index)) {
    throw new FecHeaderError('out-of-range', 'K, M and index are 8-bit fields');
  }
  checkShape(h.scheme, h.k, h.m, h.index);
  if (dst.length - off < FEC_HEADER_SIZE) {
    throw new FecHeaderError('truncated', 'no room for the FEC header');
  }
  dst[off] = (FEC_VERSION << 4) | h.scheme;
  dst[off + 1] = h.blockId >>> 8;
  dst[off + 2] = h.blockId & 0xff;
  dst[off + 3] = h.index;
  dst[off + 4] = h.k;
  dst[off + 5] = h.m;
  return FEC_HEADER_SIZE;
}

export function encodeFecHeader(h: FecHeader): Uint8Array {
  const out = new Uint8Array(FEC_HEADER_SIZE);
  writeFecHeader(h, out);
  return out;
}

/** Block ids are 16-bit serial numbers (RFC 1982 style): signed distance from a to b. */
export function blockDistance(a: number, b: number): number {
  return (((b - a) & 0xffff) ^ 0x8000) - 0x8000;
}
