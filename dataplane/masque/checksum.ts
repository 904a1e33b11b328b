// The Internet checksum (RFC 1071) and its incremental update (RFC 1624), as used by the IPv4
// header, ICMP and ICMPv6. Plain loops over bytes: no allocation, no DataView.

/** Adds `len` bytes at `buf[offset..]` as big-endian 16-bit words to `sum` (unfolded). */
export function sumWords(buf: Uint8Array, offset: number, len: number, sum = 0): number {
  let i = offset;
  const end = offset + len - 1;
  for (; i < end; i += 2) sum += (buf[i] << 8) | buf[i + 1];
  if (len & 1) sum += buf[offset + len - 1] << 8;
  // Fold now and then so the number stays a small integer even for 64 KiB inputs.
  return (sum & 0xffff) + Math.floor(sum / 0x10000);
}

/** Folds a sum to 16 bits and complements it: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The checksum of `buf[offset, offset+len)` on its own. */
export function internetChecksum(buf: Uint8Array, offset: number, len: number): number {
  return finishChecksum(sumWords(buf, offset, len));
}

/**
 * RFC 1624 eqn. 3: the checksum after one 16-bit word covered by `checksum` changes from
 * `oldWord` to `newWord`: HC' = ~(~HC + ~m + m').
 */
export function updateChecksum(checksum: number, oldWord: number, newWord: number): number {
  let sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + newWord;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}
