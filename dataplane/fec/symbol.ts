// Symbol layout. Packets of one block differ in length, so every symbol is the packet's true length
// (16 bits, big-endian) followed by the packet, zero-padded to the block's longest symbol. The
// length prefix is coded like the bytes, so a recovered symbol tells how much of it is packet.
import { gfMul, mulAddInto, mulAddMany } from './gf256.js';

export const LENGTH_PREFIX = 2;
export const MAX_PACKET = 0xffff;

export function symbolSize(packetLength: number): number {
  return packetLength + LENGTH_PREFIX;
}

/** acc ^= c · symbol(packet), touching only the symbol's meaningful bytes (padding is zero). */
export function addPacketToSymbol(
  acc: Uint8Array,
  packet: Uint8Array,
  off: number,
  len: number,
  c: number,
): void {
  acc[0] ^= gfMul(c, len >>> 8);
  acc[1] ^= gfMul(c, len & 0xff);
  mulAddInto(acc, LENGTH_PREFIX, packet, off, len, c);
}

/** Writes symbol(packet) without padding into dst; returns the bytes written. */
export function writeSymbol(dst: Uint8Array, packet: Uint8Array, off: number, len: number): number {
  dst[0] = len >>> 8;
  dst[1] = len & 0xff;
  dst.set(off === 0 && len === packet.length ? packet : packet.subarray(off, off + len), 2);
  return len + LENGTH_PREFIX;
}

export function symbolPacketLength(symbol: Uint8Array): number {
  return (symbol[0] << 8) | symbol[1];
}

/** For j < count: accs[j] ^= coefs[j] · symbol(packet), in one pass over the packet. */
export function addPacketToSymbols(
  accs: readonly Uint8Array[],
  coefs: ArrayLike<number>,
  count: number,
  packet: Uint8Array,
  off: number,
  len: number,
): void {
  for (let j = 0; j < count; j++) {
    const acc = accs[j];
    acc[0] ^= gfMul(coefs[j], len >>> 8);
    acc[1] ^= gfMul(coefs[j], len & 0xff);
  }
  mulAddMany(accs, coefs, count, LENGTH_PREFIX, packet, off, len);
}
