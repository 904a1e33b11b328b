// The HPACK Huffman code (RFC 7541 Appendix B), used unchanged by QPACK (RFC 9204 §4.1.2).
// The code is canonical, so it is rebuilt here from the code lengths alone (PROTOCOL.md
// Appendix A): list symbols by (length, value); the first code is 0 and each next code is the
// previous plus one, shifted left by the growth in length.

import { H3Error, H3ErrorCode } from './error.js';

const CODE_LENGTHS = `
13 23 28 28 28 28 28 28 28 24 30 28 28 30 28 28 28 28 28 28 28 28 30 28 28 28 28 28 28 28 28 28
 6 10 10 12 13  6  8 11 10 10  8 11  8  6  6  6  5  5  5  6  6  6  6  6  6  6  7  8 15  6 12 10
13  6  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  7  8  7  8 13 19 13 14  6
15  5  6  5  6  5  6  6  6  5  7  7  6  6  6  5  6  7  6  5  5  6  7  7  7  7  7 15 11 14 13 28
20 22 20 20 22 22 22 23 22 23 23 23 23 23 24 23 24 24 22 23 24 23 23 23 23 21 22 23 22 23 23 24
22 21 20 22 22 23 23 21 23 22 22 24 21 22 23 23 21 21 22 21 23 22 23 23 20 22 22 22 23 22 22 23
26 26 20 19 22 23 22 25 26 26 26 27 27 26 24 25 19 21 26 27 27 26 27 24 21 21 26 26 28 27 27 27
20 24 20 21 22 21 21 23 22 22 25 25 24 24 26 23 26 27 26 26 27 27 27 27 27 28 27 27 27 27 27 26
30`;

export const EOS = 256;
const MAX_LENGTH = 30;

const lengths = Uint8Array.from(CODE_LENGTHS.trim().split(/\s+/).map(Number));
const codes = new Uint32Array(257);
/** Per code length: the first canonical code, how many codes, and where they start in `sorted`. */
const firstCode = new Float64Array(MAX_LENGTH + 1);
const countByLength = new Uint16Array(MAX_LENGTH + 1);
const offsetByLength = new Uint16Array(MAX_LENGTH + 1);
const sorted = new Uint16Array(257);

{
  if (lengths.length !== 257) throw new Error('Huffman table must list 257 code lengths');
  const order = Array.from({ length: 257 }, (_, s) => s).sort(
    (a, b) => lengths[a] - lengths[b] || a - b,
  );
  let code = 0;
  let prevLength = lengths[order[0]];
  order.forEach((symbol, i) => {
    const len = lengths[symbol];
    if (i > 0) code = (code + 1) * 2 ** (len - prevLength);
    prevLength = len;
    codes[symbol] = code;
    sorted[i] = symbol;
    if (countByLength[len] === 0) {
      firstCode[len] = code;
      offsetByLength[len] = i;
    }
    countByLength[len]++;
  });
}

/** The code of `symbol` and its length in bits (for tests and tables). */
export function huffmanCode(symbol: number): { code: number; length: number } {
  return { code: codes[symbol], length: lengths[symbol] };
}

/** Bytes `src` would take once Huffman-coded, padding included. */
export function huffmanEncodedLength(src: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < src.length; i++) bits += lengths[src[i]];
  return Math.ceil(bits / 8);
}

/**
 * Huffman-codes `src` into `out` at `offset` (which must have `huffmanEncodedLength(src)` bytes of
 * room); returns the offset after the last byte. The tail is padded with the MSBs of EOS (ones).
 */
export function huffmanEncode(src: Uint8Array, out: Uint8Array, offset: number): number {
  let acc = 0; // fewer than 8 pending bits + one code of at most 30 bits: exact in a double
  let bits = 0;
  let o = offset;
  for (let i = 0; i < src.length; i++) {
    const len = lengths[src[i]];
    acc = acc * 2 ** len + codes[src[i]];
    bits += len;
    while (bits >= 8) {
      bits -= 8;
      const scale = 2 ** bits;
      const byte = Math.floor(acc / scale);
      out[o++] = byte;
      acc -= byte * scale;
    }
  }
  if (bits > 0) out[o++] = (acc << (8 - bits)) | ((1 << (8 - bits)) - 1);
  return o;
}

function decodeError(message: string): H3Error {
  return new H3Error(H3ErrorCode.QPACK_DECOMPRESSION_FAILED, `Huffman: ${message}`);
}

/**
 * Decodes `src[start, end)`. Errors (RFC 7541 §5.2) → QPACK_DECOMPRESSION_FAILED: EOS inside the
 * string, padding longer than 7 bits, padding that is not all ones.
 */
export function huffmanDecode(src: Uint8Array, start = 0, end: number = src.length): Uint8Array {
  // The shortest code is 5 bits, so the output is at most 8/5 of the input.
  const out = new Uint8Array(Math.floor(((end - start) * 8) / 5));
  let o = 0;
  let code = 0;
  let len = 0;
  for (let i = start; i < end; i++) {
    const byte = src[i];
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      // A canonical code's prefix of length L is never below firstCode[L], so one comparison
      // tells whether it is a complete code.
      const count = countByLength[len];
      if (count !== 0 && code - firstCode[len] < count) {
        const symbol = sorted[offsetByLength[len] + code - firstCode[len]];
        if (symbol === EOS) throw decodeError('EOS symbol inside a string');
        out[o++] = symbol;
        code = 0;
        len = 0;
      } else if (len >= MAX_LENGTH) {
        throw decodeError('invalid code'); // unreachable for this complete code; kept for safety
      }
    }
  }
  if (len > 7) throw decodeError('padding longer than 7 bits');
  if (code !== 2 ** len - 1) throw decodeError('padding is not the MSBs of EOS');
  return out.subarray(0, o);
}
