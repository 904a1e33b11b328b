// GF(2^8) arithmetic over the primitive polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11d), the field used
// by most packet erasure codes. Multiplication goes through a full 64 KiB product table so the hot
// loop (multiply a slice by a constant and add it into another slice) is one lookup and one XOR per
// byte, with no branches on zero and no allocation.

const POLY = 0x11d;

/** exp[i] = α^i, doubled so exp[log a + log b] never needs a modulo. */
export const EXP = new Uint8Array(512);
/** log[a] for a ≠ 0; log[0] is unused (0 has no logarithm). */
export const LOG = new Uint8Array(256);
/** MUL[c << 8 | x] = c·x: row c is the 256-entry table for multiplying by the constant c. */
const MUL = new Uint8Array(256 * 256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= POLY;
  }
  for (let i = 255; i < 512; i++) EXP[i] = EXP[i - 255];
  for (let c = 1; c < 256; c++) {
    const lc = LOG[c];
    for (let v = 1; v < 256; v++) MUL[(c << 8) | v] = EXP[lc + LOG[v]];
  }
}

export function gfMul(a: number, b: number): number {
  return MUL[((a & 0xff) << 8) | (b & 0xff)];
}

export class GfDivisionByZero extends Error {
  constructor() {
    super('division by zero in GF(256)');
    this.name = 'GfDivisionByZero';
  }
}

export function gfInv(a: number): number {
  if (a === 0) throw new GfDivisionByZero();
  return EXP[255 - LOG[a]];
}

export function gfDiv(a: number, b: number): number {
  if (b === 0) throw new GfDivisionByZero();
  if (a === 0) return 0;
  return EXP[LOG[a] + 255 - LOG[b]];
}

/** dst[dstOff..+len) ^= src[srcOff..+len): addition in GF(2^8), the XOR scheme's whole encoder. */
export function addInto(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
): void {
  // Bytewise, unrolled by four. Word-wide views would need one typed-array object per buffer and
  // measured no faster here; the data path must not allocate per packet.
  let i = 0;
  for (const end4 = len - 3; i < end4; i += 4) {
    dst[dstOff + i] ^= src[srcOff + i];
    dst[dstOff + i + 1] ^= src[srcOff + i + 1];
    dst[dstOff + i + 2] ^= src[srcOff + i + 2];
    dst[dstOff + i + 3] ^= src[srcOff + i + 3];
  }
  for (; i < len; i++) dst[dstOff + i] ^= src[srcOff + i];
}

/** dst[dstOff..+len) ^= c · src[srcOff..+len): the Reed–Solomon hot loop. */
export function mulAddInto(
  dst: Uint8Array,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
  c: number,
): void {
  if (c === 0) return;
  if (c === 1) {
    addInto(dst, dstOff, src, srcOff, len);
    return;
  }
  const row = c << 8;
  for (let i = 0; i < len; i++) dst[dstOff + i] ^= MUL[row | src[srcOff + i]];
}

/** buf[off..+len) = c · buf[off..+len). */
export function mulInPlace(buf: Uint8Array, off: number, len: number, c: number): void {
  if (c === 1) return;
  if (c === 0) {
    buf.fill(0, off, off + len);
    return;
  }
  const row = c << 8;
  for (let i = off, end = off + len; i < end; i++) buf[i] = MUL[row | buf[i]];
}

/**
 * dsts[j][dstOff..+len) ^= coefs[j] · src[srcOff..+len) for j < count: the sender's per-packet
 * work, fused so each source byte is read once for up to four accumulators (about 1.5× faster than
 * separate passes for three repair rows).
 */
export function mulAddMany(
  dsts: readonly Uint8Array[],
  coefs: ArrayLike<number>,
  count: number,
  dstOff: number,
  src: Uint8Array,
  srcOff: number,
  len: number,
): void {
  let g = 0;
  for (; count - g >= 4; g += 4) {
    const a = dsts[g];
    const b = dsts[g + 1];
    const c = dsts[g + 2];
    const d = dsts[g + 3];
    const ra = coefs[g] << 8;
    const rb = coefs[g + 1] << 8;
    const rc = coefs[g + 2] << 8;
    const rd = coefs[g + 3] << 8;
    for (let i = 0; i < len; i++) {
      const x = src[srcOff + i];
      const o = dstOff + i;
      a[o] ^= MUL[ra | x];
      b[o] ^= MUL[rb | x];
      c[o] ^= MUL[rc | x];
      d[o] ^= MUL[rd | x];
    }
  }
  const left = count - g;
  if (left === 3) {
    const a = dsts[g];
    const b = dsts[g + 1];
    const c = dsts[g + 2];
    const ra = coefs[g] << 8;
    const rb = coefs[g + 1] << 8;
    const rc = coefs[g + 2] << 8;
    for (let i = 0; i < len; i++) {
      const x = src[srcOff + i];
      const o = dstOff + i;
      a[o] ^= MUL[ra | x];
      b[o] ^= MUL[rb | x];
      c[o] ^= MUL[rc | x];
    }
  } else if (left === 2) {
    const a = dsts[g];
    const b = dsts[g + 1];
    const ra = coefs[g] << 8;
    const rb = coefs[g + 1] << 8;
    for (let i = 0; i < len; i++) {
      const x = src[srcOff + i];
      const o = dstOff + i;
      a[o] ^= MUL[ra | x];
      b[o] ^= MUL[rb | x];
    }
  } else if (left === 1) {
    mulAddInto(dsts[g], dstOff, src, srcOff, len, coefs[g]);
  }
}
