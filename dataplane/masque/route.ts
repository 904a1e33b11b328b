// IP address ranges as carried by ROUTE_ADVERTISEMENT (RFC 9484 §4.7.3): validation of a received
// set, and the sender-side normaliser that produces a set any strict receiver accepts.

import {
  addressLength,
  addressToBigInt,
  bigIntToAddress,
  compareAddress,
  prefixLastAddress,
  type IpPrefix,
  type IpVersion,
} from './address.js';

/** An inclusive address range; `ipProtocol` 0 means every protocol. */
export interface IpRange {
  readonly version: IpVersion;
  readonly start: Uint8Array;
  readonly end: Uint8Array;
  readonly ipProtocol: number;
}

export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

export function rangeFromPrefix(prefix: IpPrefix, ipProtocol = 0): IpRange {
  return {
    version: prefix.version,
    start: Uint8Array.from(prefix.address),
    end: prefixLastAddress(prefix),
    ipProtocol,
  };
}

/** The whole address space of a version, every protocol. */
export function fullRange(version: IpVersion): IpRange {
  const len = addressLength(version);
  return {
    version,
    start: new Uint8Array(len),
    end: new Uint8Array(len).fill(0xff),
    ipProtocol: 0,
  };
}

function cmp(a: Uint8Array, b: Uint8Array): number {
  return compareAddress(a, 0, b, 0, a.length);
}

/**
 * Checks a received ROUTE_ADVERTISEMENT against the MUSTs of RFC 9484 §4.7.3: start ≤ end; for
 * consecutive ranges version ascending, then protocol ascending, then strictly disjoint and not
 * touching; and no protocol-0 range overlapping a protocol-specific range of the same version.
 * Returns a reason on violation, `undefined` when the set is valid.
 */
export function validateRoutes(ranges: readonly IpRange[]): string | undefined {
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (cmp(r.start, r.end) > 0) return `range ${i}: start after end`;
    if (i === 0) continue;
    const p = ranges[i - 1];
    if (p.version > r.version) return `range ${i}: IP version out of order`;
    if (p.version < r.version) continue;
    if (p.ipProtocol > r.ipProtocol) return `range ${i}: IP protocol out of order`;
    if (p.ipProtocol < r.ipProtocol) continue;
    // "end(A) < start(B)" with no touching: end(A) + 1 < start(B), i.e. end(A) + 1 ≠ start(B).
    if (cmp(p.end, r.start) >= 0) return `range ${i}: overlaps or is not after range ${i - 1}`;
    if (addressToBigInt(p.end) + 1n === addressToBigInt(r.start))
      return `range ${i}: touches range ${i - 1}`;
  }
  // Protocol-0 ranges against protocol-specific ones: both lists are sorted, so one merge pass per
  // version suffices (ranges with the same version are contiguous after the ordering check).
  for (const version of [4, 6] as const) {
    const all = ranges.filter((r) => r.version === version && r.ipProtocol === 0);
    const specific = ranges.filter((r) => r.version === version && r.ipProtocol !== 0);
    if (all.length === 0 || specific.length === 0) continue;
    for (const s of specific) {
      for (const a of all) {
        if (cmp(a.start, s.end) <= 0 && cmp(s.start, a.end) <= 0)
          return `protocol ${s.ipProtocol} range overlaps a protocol-0 range`;
      }
    }
  }
  return undefined;
}

interface Span {
  lo: bigint;
  hi: bigint;
}

function mergeSpans(spans: Span[]): Span[] {
  spans.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const out: Span[] = [];
  for (const s of spans) {
    const last = out[out.length - 1];
    if (last && s.lo <= last.hi + 1n) {
      if (s.hi > last.hi) last.hi = s.hi;
    } else out.push({ lo: s.lo, hi: s.hi });
  }
  return out;
}

/** `spans` minus `holes` (both merged and sorted). */
function subtractSpans(spans: Span[], holes: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of spans) {
    let lo = s.lo;
    for (const h of holes) {
      if (h.hi < lo || h.lo > s.hi) continue;
      if (h.lo > lo) out.push({ lo, hi: h.lo - 1n });
      lo = h.hi + 1n;
      if (lo > s.hi) break;
    }
    if (lo <= s.hi) out.push({ lo, hi: s.hi });
  }
  return out;
}

/**
 * Sender side: turns any list of ranges into the canonical set a strict receiver accepts. Ranges
 * with start > end are dropped; overlapping or touching ranges of one (version, protocol) merge;
 * protocol-specific ranges lose the parts a protocol-0 range already covers (that traffic is
 * routed anyway, and the overlap is forbidden); the result is sorted by (version, protocol, start).
 * The output depends only on the set of addresses per (version, protocol), so the function is
 * idempotent and independent of input order.
 */
export function normaliseRoutes(ranges: readonly IpRange[]): IpRange[] {
  const out: IpRange[] = [];
  for (const version of [4, 6] as const) {
    const byProto = new Map<number, Span[]>();
    for (const r of ranges) {
      if (r.version !== version) continue;
      const lo = addressToBigInt(r.start);
      const hi = addressToBigInt(r.end);
      if (lo > hi) continue;
      let list = byProto.get(r.ipProtocol);
      if (!list) byProto.set(r.ipProtocol, (list = []));
      list.push({ lo, hi });
    }
    const everything = mergeSpans(byProto.get(0) ?? []);
    for (const proto of [...byProto.keys()].sort((a, b) => a - b)) {
      const merged = mergeSpans(byProto.get(proto) as Span[]);
      const spans = proto === 0 ? merged : subtractSpans(merged, everything);
      for (const s of spans) {
        out.push({
          version,
          start: bigIntToAddress(s.lo, version),
          end: bigIntToAddress(s.hi, version),
          ipProtocol: proto,
        });
      }
    }
  }
  return out;
}

/**
 * Whether an address stored at `buf[offset..]` falls inside one of `ranges` that admits
 * `protocol`. ICMP and ICMPv6 are admitted by every range (RFC 9484 §4.7.3). A `protocol` of -1
 * (unknown: a non-first IPv6 fragment) matches only protocol-0 ranges. No allocation.
 */
export function rangesContain(
  ranges: readonly IpRange[],
  version: IpVersion,
  buf: Uint8Array,
  offset: number,
  protocol: number,
): boolean {
  const len = version === 4 ? 4 : 16;
  const icmp = protocol === (version === 4 ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i];
    if (r.version !== version) continue;
    if (r.ipProtocol !== 0 && r.ipProtocol !== protocol && !icmp) continue;
    if (compareAddress(buf, offset, r.start, 0, len) < 0) continue;
    if (compareAddress(buf, offset, r.end, 0, len) > 0) continue;
    return true;
  }
  return false;
}

export function rangeEquals(a: IpRange, b: IpRange): boolean {
  return (
    a.version === b.version &&
    a.ipProtocol === b.ipProtocol &&
    cmp(a.start, b.start) === 0 &&
    cmp(a.end, b.end) === 0
  );
}
