// ICMP and ICMPv6 error messages a tunnel endpoint originates (RFC 9484 §7.2.1, §10.1; RFC 792,
// RFC 1191, RFC 4443), written into a caller-provided buffer with their checksums.

import { copyBytes } from './bytes.js';
import { finishChecksum, sumWords } from './checksum.js';
import { isIcmpError, type PacketInfo } from './ip.js';

/** The errors this layer sends; see the table in PROTOCOL.md §7. */
export const IcmpError = {
  /** Packet larger than the tunnel MTU: v6 Packet Too Big, v4 Fragmentation Needed (DF set only). */
  PacketTooBig: 0,
  /** TTL / Hop Limit would reach 0 on encapsulation. */
  TimeExceeded: 1,
  /** Source not assigned, or refused by policy. */
  AdminProhibited: 2,
  /** No route to the destination. */
  NoRoute: 3,
} as const;
export type IcmpError = (typeof IcmpError)[keyof typeof IcmpError];

/** Hop limit of the errors we originate (the value connect-ip-go uses too). */
const ORIGINATED_TTL = 64;
/** RFC 1812 §4.3.2.3: an ICMPv4 error should not exceed 576 bytes. */
const ICMPV4_MAX = 576;
/** RFC 4443 §2.4(c): an ICMPv6 error must fit the minimum IPv6 MTU. */
const ICMPV6_MAX = 1280;

/** Size of the buffer that always holds any error `writeIcmpError` builds. */
export const ICMP_ERROR_BUFFER_SIZE = ICMPV6_MAX;

function typeAndCode(version: 4 | 6, kind: IcmpError): [number, number] {
  if (version === 4) {
    switch (kind) {
      case IcmpError.PacketTooBig:
        return [3, 4];
      case IcmpError.TimeExceeded:
        return [11, 0];
      case IcmpError.AdminProhibited:
        return [3, 13];
      case IcmpError.NoRoute:
        return [3, 0];
    }
  }
  switch (kind) {
    case IcmpError.PacketTooBig:
      return [2, 0];
    case IcmpError.TimeExceeded:
      return [3, 0];
    case IcmpError.AdminProhibited:
      return [1, 1];
    case IcmpError.NoRoute:
      return [1, 0];
  }
  return [0, 0];
}

/** RFC 1812 §4.3.2.7 / RFC 4443 §2.4(e): never answer multicast, broadcast or unspecified sources. */
function sourceMayReceiveErrors(buf: Uint8Array, info: PacketInfo): boolean {
  const s = info.srcOffset;
  if (info.version === 4) {
    if (buf[s] >= 224) return false; // multicast, reserved, limited broadcast
    return !(buf[s] === 0 && buf[s + 1] === 0 && buf[s + 2] === 0 && buf[s + 3] === 0);
  }
  if (buf[s] === 0xff) return false;
  for (let i = 0; i < 16; i++) if (buf[s + i] !== 0) return true;
  return false;
}

/**
 * Builds the ICMP error `kind` about the packet at `packet[offset, offset+len)` (already accepted
 * by `inspectPacket` into `info`) at `out[outOffset..]`, and returns its length. Returns 0 when no
 * error may be sent: the packet is itself an ICMP error, a later fragment, from a multicast or
 * unspecified source, or (IPv4 Packet Too Big) does not have DF set.
 *
 * `mtu` is the tunnel MTU reported by Packet Too Big. `from` (4 or 16 bytes) is the error's source
 * address; by default it is the invoking packet's destination, as connect-ip-go does. The quote is
 * as much of the invoking packet as fits the size limits and `out`.
 */
export function writeIcmpError(
  out: Uint8Array,
  outOffset: number,
  packet: Uint8Array,
  offset: number,
  len: number,
  info: PacketInfo,
  kind: IcmpError,
  mtu = 1280,
  from?: Uint8Array,
): number {
  if (info.laterFragment || isIcmpError(packet, info, offset + len)) return 0;
  if (!sourceMayReceiveErrors(packet, info)) return 0;
  const [type, code] = typeAndCode(info.version, kind);
  const room = out.length - outOffset;
  if (info.version === 4) {
    if (kind === IcmpError.PacketTooBig && (packet[offset + 6] & 0x40) === 0) return 0;
    const quote = Math.min(len, ICMPV4_MAX - 28, room - 28);
    if (quote < 0) return 0;
    const total = 28 + quote;
    const o = outOffset;
    out[o] = 0x45;
    out[o + 1] = 0;
    out[o + 2] = total >> 8;
    out[o + 3] = total & 0xff;
    out.fill(0, o + 4, o + 8); // identification, flags, fragment offset
    out[o + 8] = ORIGINATED_TTL;
    out[o + 9] = 1;
    out[o + 10] = 0;
    out[o + 11] = 0;
    if (from) out.set(from, o + 12);
    else copyBytes(packet, info.dstOffset, out, o + 12, 4);
    copyBytes(packet, info.srcOffset, out, o + 16, 4);
    const ipSum = finishChecksum(sumWords(out, o, 20));
    out[o + 10] = ipSum >> 8;
    out[o + 11] = ipSum & 0xff;
    const m = o + 20;
    out[m] = type;
    out[m + 1] = code;
    out[m + 2] = 0;
    out[m + 3] = 0;
    out[m + 4] = 0;
    out[m + 5] = 0;
    // RFC 1191: the Next-Hop MTU sits in the low half of the "unused" word.
    const nextHop = kind === IcmpError.PacketTooBig ? mtu : 0;
    out[m + 6] = (nextHop >> 8) & 0xff;
    out[m + 7] = nextHop & 0xff;
    copyBytes(packet, offset, out, m + 8, quote);
    const sum = finishChecksum(sumWords(out, m, 8 + quote));
    out[m + 2] = sum >> 8;
    out[m + 3] = sum & 0xff;
    return total;
  }
  const quote = Math.min(len, ICMPV6_MAX - 48, room - 48);
  if (quote < 0) return 0;
  const payload = 8 + quote;
  const o = outOffset;
  out[o] = 0x60;
  out[o + 1] = 0;
  out[o + 2] = 0;
  out[o + 3] = 0;
  out[o + 4] = payload >> 8;
  out[o + 5] = payload & 0xff;
  out[o + 6] = 58;
  out[o + 7] = ORIGINATED_TTL;
  if (from) out.set(from, o + 8);
  else copyBytes(packet, info.dstOffset, out, o + 8, 16);
  copyBytes(packet, info.srcOffset, out, o + 24, 16);
  const m = o + 40;
  out[m] = type;
  out[m + 1] = code;
  out[m + 2] = 0;
  out[m + 3] = 0;
  const word = kind === IcmpError.PacketTooBig ? mtu : 0; // RFC 4443 §3.2: the MTU, else unused
  out[m + 4] = (word >>> 24) & 0xff;
  out[m + 5] = (word >>> 16) & 0xff;
  out[m + 6] = (word >>> 8) & 0xff;
  out[m + 7] = word & 0xff;
  copyBytes(packet, offset, out, m + 8, quote);
  // RFC 4443 §2.3: the checksum covers the pseudo-header (addresses, length, next header 58).
  let sum = sumWords(out, o + 8, 32);
  sum += payload + 58;
  sum = sumWords(out, m, payload, sum);
  const c = finishChecksum(sum);
  out[m + 2] = c >> 8;
  out[m + 3] = c & 0xff;
  return 40 + payload;
}
