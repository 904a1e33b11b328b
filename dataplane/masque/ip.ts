// IP packet rules of the tunnel (RFC 9484 §7): structural validation, the IPv6 extension-header
// walk that finds the transport protocol, source/destination checks, and the TTL / Hop Limit
// decrement on encapsulation. Everything works in place on the caller's buffer and fills a
// preallocated PacketInfo, so the per-packet path allocates nothing.

import type { IpVersion } from './address.js';
import { updateChecksum } from './checksum.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, rangesContain, type IpRange } from './route.js';

/** Protocol value when it cannot be known: a non-first IPv6 fragment (RFC 9484 §4.8). */
export const PROTOCOL_UNKNOWN = -1;

/** What `inspectPacket` learned; reuse one instance per thread. Offsets are absolute in the buffer. */
export class PacketInfo {
  version: IpVersion = 4;
  /** IPv4 header length, or the IPv6 fixed header plus every extension header walked. */
  headerLength = 0;
  /** The transport protocol after the extension headers, or PROTOCOL_UNKNOWN. */
  protocol = 0;
  /** Offset of the transport header (meaningful when `protocol` is known). */
  transportOffset = 0;
  srcOffset = 0;
  dstOffset = 0;
  /** A non-first fragment: no transport header is present. */
  laterFragment = false;
}

/** Why a packet is refused. Each is a forwarding decision, never a stream error (RFC 9484 §7.2). */
export const Verdict = {
  Ok: 0,
  /** Not a complete IPv4/IPv6 packet: drop silently (quiche opens with a junk datagram). */
  Malformed: 1,
  /** Source outside the addresses assigned to the sender: drop, ICMP admin prohibited. */
  SourceNotAllowed: 2,
  /** Destination outside routes and assigned addresses: drop, ICMP unreachable. */
  DestinationNotAllowed: 3,
  /** The operator's policy callback refused it: drop, ICMP admin prohibited. */
  PolicyDenied: 4,
} as const;
export type Verdict = (typeof Verdict)[keyof typeof Verdict];

const EXT_HEADERS_8 = new Uint8Array(256);
for (const nh of [0, 43, 60, 135, 139, 140]) EXT_HEADERS_8[nh] = 1;

/**
 * Validates a packet at `buf[offset, offset+len)`: version 4 or 6, a full header (IPv4 IHL ≥ 5),
 * length fields equal to the datagram length, and a well-formed IPv6 extension chain. Fills
 * `info` and returns true, or returns false for a malformed packet.
 */
export function inspectPacket(
  buf: Uint8Array,
  offset: number,
  len: number,
  info: PacketInfo,
): boolean {
  if (len < 1 || offset + len > buf.length) return false;
  const version = buf[offset] >> 4;
  if (version === 4) {
    if (len < 20) return false;
    const ihl = (buf[offset] & 0x0f) * 4;
    if (ihl < 20 || ihl > len) return false;
    if (((buf[offset + 2] << 8) | buf[offset + 3]) !== len) return false;
    info.version = 4;
    info.headerLength = ihl;
    info.srcOffset = offset + 12;
    info.dstOffset = offset + 16;
    info.protocol = buf[offset + 9];
    info.transportOffset = offset + ihl;
    info.laterFragment = (((buf[offset + 6] & 0x1f) << 8) | buf[offset + 7]) !== 0;
    return true;
  }
  if (version !== 6 || len < 40) return false;
  // A zero payload length means a jumbogram (RFC 2675), which no tunnel MTU can carry.
  if (((buf[offset + 4] << 8) | buf[offset + 5]) + 40 !== len) return false;
  info.version = 6;
  info.srcOffset = offset + 8;
  info.dstOffset = offset + 24;
  info.laterFragment = false;
  const end = offset + len;
  let nh = buf[offset + 6];
  let pos = offset + 40;
  // Every step advances at least 8 bytes, so the walk ends within len/8 steps.
  for (;;) {
    if (EXT_HEADERS_8[nh] === 1) {
      if (pos + 8 > end) return false;
      const next = buf[pos];
      pos += (buf[pos + 1] + 1) * 8;
      if (pos > end) return false;
      nh = next;
    } else if (nh === 44) {
      if (pos + 8 > end) return false;
      const fragOffset = ((buf[pos + 2] << 8) | buf[pos + 3]) >> 3;
      if (fragOffset !== 0) {
        info.laterFragment = true;
        info.protocol = PROTOCOL_UNKNOWN;
        info.transportOffset = pos + 8;
        info.headerLength = pos + 8 - offset;
        return true;
      }
      nh = buf[pos];
      pos += 8;
    } else if (nh === 51) {
      if (pos + 8 > end) return false;
      const next = buf[pos];
      pos += (buf[pos + 1] + 2) * 4;
      if (pos > end) return false;
      nh = next;
    } else break; // ESP (50), No Next Header (59) and transports end the walk
  }
  info.protocol = nh;
  info.transportOffset = pos;
  info.headerLength = pos - offset;
  return true;
}

/** Whether the packet is an ICMP/ICMPv6 error message (never answered with another error). */
export function isIcmpError(buf: Uint8Array, info: PacketInfo, end: number): boolean {
  if (info.laterFragment) return false;
  if (info.version === 4) {
    if (info.protocol !== IPPROTO_ICMP || info.transportOffset >= end) return false;
    const t = buf[info.transportOffset];
    return t === 3 || t === 4 || t === 5 || t === 11 || t === 12;
  }
  if (info.protocol !== IPPROTO_ICMPV6 || info.transportOffset >= end) return false;
  return buf[info.transportOffset] < 128;
}

/**
 * Whether the address at `buf[offset..]` is link-local (169.254.0.0/16, fe80::/10) or, for IPv6,
 * link-scoped multicast (ff02::/16): traffic a proxy must never forward off the tunnel link
 * (RFC 9484 §7.1).
 */
export function isLinkLocal(buf: Uint8Array, offset: number, version: IpVersion): boolean {
  if (version === 4) return buf[offset] === 169 && buf[offset + 1] === 254;
  const a = buf[offset];
  const b = buf[offset + 1];
  return (a === 0xfe && (b & 0xc0) === 0x80) || (a === 0xff && (b & 0x0f) === 0x02);
}

/** Address sets a packet is checked against. `undefined` means "not enforced". */
export interface PacketRules {
  /** Allowed source addresses (the addresses assigned to the sender). */
  sources: readonly IpRange[] | undefined;
  /** Allowed destinations (advertised routes, plus addresses the other side was assigned). */
  destinations: readonly IpRange[] | undefined;
  /** Extra operator policy, consulted after the address checks; false refuses the packet. */
  policy?: (buf: Uint8Array, info: PacketInfo) => boolean;
}

/**
 * Runs the §7.2 checks on a packet `inspectPacket` accepted. The source check ignores the protocol;
 * the destination check applies each range's protocol (ICMP always passes).
 */
export function checkPacket(buf: Uint8Array, info: PacketInfo, rules: PacketRules): Verdict {
  if (
    rules.sources &&
    !rangesContain(rules.sources, info.version, buf, info.srcOffset, ICMP_OF[info.version])
  )
    return Verdict.SourceNotAllowed;
  if (
    rules.destinations &&
    !rangesContain(rules.destinations, info.version, buf, info.dstOffset, info.protocol)
  )
    return Verdict.DestinationNotAllowed;
  if (rules.policy && !rules.policy(buf, info)) return Verdict.PolicyDenied;
  return Verdict.Ok;
}

// Checking a source "as ICMP" makes every range admit it whatever its protocol: source sets are
// address assignments, which carry no protocol.
const ICMP_OF: Record<IpVersion, number> = { 4: IPPROTO_ICMP, 6: IPPROTO_ICMPV6 };

/**
 * Decrements the IPv4 TTL (fixing the header checksum incrementally, RFC 1624) or the IPv6 Hop
 * Limit, in place, just before encapsulation (RFC 9484 §7.2). Returns false, leaving the packet
 * untouched, when the value would reach 0: the caller drops it and sends ICMP Time Exceeded.
 */
export function decrementHopLimit(buf: Uint8Array, offset: number, info: PacketInfo): boolean {
  if (info.version === 6) {
    const hl = buf[offset + 7];
    if (hl <= 1) return false;
    buf[offset + 7] = hl - 1;
    return true;
  }
  const ttl = buf[offset + 8];
  if (ttl <= 1) return false;
  const proto = buf[offset + 9];
  const oldWord = (ttl << 8) | proto;
  const checksum = (buf[offset + 10] << 8) | buf[offset + 11];
  const fixed = updateChecksum(checksum, oldWord, oldWord - 0x100);
  buf[offset + 8] = ttl - 1;
  buf[offset + 10] = fixed >> 8;
  buf[offset + 11] = fixed & 0xff;
  return true;
}
