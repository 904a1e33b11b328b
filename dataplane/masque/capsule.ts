// Capsules (RFC 9297 §3) and the CONNECT-IP capsule types (RFC 9484 §4.7): codecs for each value,
// and a streaming parser for the request stream's data, which arrives in arbitrary pieces.

import { readVarint, varintLengthFromFirstByte, varintSize, writeVarint } from '../h3/varint.js';
import {
  addressLength,
  hostBitsZero,
  isUnspecified,
  maxPrefixLength,
  type IpPrefix,
  type IpVersion,
} from './address.js';
import { CapsuleError, H3_EXCESSIVE_LOAD } from './errors.js';
import { validateRoutes, type IpRange } from './route.js';

export const CAPSULE_DATAGRAM = 0x00;
export const CAPSULE_ADDRESS_ASSIGN = 0x01;
export const CAPSULE_ADDRESS_REQUEST = 0x02;
export const CAPSULE_ROUTE_ADVERTISEMENT = 0x03;
/** Types seen in the wild that we skip (PROTOCOL.md §6.1). */
export const CAPSULE_DNS_ASSIGN = 0x1ace79ec;
export const CAPSULE_PREF64 = 0x274c0fbc;

/** An Assigned Address (request ID 0 = unsolicited) or Requested Address entry. */
export interface AddressEntry {
  readonly requestId: number;
  readonly prefix: IpPrefix;
}

export type Capsule =
  /** `payload` is the HTTP Datagram Payload: context ID then (for context 0) an IP packet. */
  | { readonly kind: 'datagram'; readonly payload: Uint8Array }
  | { readonly kind: 'address-assign'; readonly addresses: readonly AddressEntry[] }
  | { readonly kind: 'address-request'; readonly addresses: readonly AddressEntry[] }
  | { readonly kind: 'route-advertisement'; readonly ranges: readonly IpRange[] }
  /** Only ever encoded (GREASE, extensions); the parser skips unknown types instead. */
  | { readonly kind: 'other'; readonly type: number; readonly value: Uint8Array };

// ---------------------------------------------------------------------------------------------
// Value codecs

function readEntries(value: Uint8Array, what: string): AddressEntry[] {
  const out: AddressEntry[] = [];
  let off = 0;
  while (off < value.length) {
    const id = readVarint(value, off);
    if (!id) throw new CapsuleError(`${what}: truncated request ID`);
    // IDs above 2^53-1 are legal varints but cannot be echoed exactly as numbers; peers allocate
    // request IDs from 1 upward, so refusing them costs no interop.
    if (id.value > Number.MAX_SAFE_INTEGER)
      throw new CapsuleError(`${what}: request ID above 2^53-1 not supported`);
    off += id.length;
    if (off >= value.length) throw new CapsuleError(`${what}: missing IP version`);
    const v = value[off++];
    if (v !== 4 && v !== 6) throw new CapsuleError(`${what}: IP version ${v}`);
    const version: IpVersion = v;
    const alen = addressLength(version);
    if (off + alen + 1 > value.length) throw new CapsuleError(`${what}: truncated address`);
    const address = value.slice(off, off + alen);
    off += alen;
    const prefixLength = value[off++];
    if (prefixLength > maxPrefixLength(version))
      throw new CapsuleError(`${what}: prefix length ${prefixLength}`);
    if (!hostBitsZero(address, prefixLength)) throw new CapsuleError(`${what}: host bits set`);
    out.push({ requestId: id.value, prefix: { version, address, prefixLength } });
  }
  return out;
}

export function decodeAddressAssign(value: Uint8Array): AddressEntry[] {
  return readEntries(value, 'ADDRESS_ASSIGN');
}

/** RFC 9484 §4.7.2: at least one entry, and no request ID 0. */
export function decodeAddressRequest(value: Uint8Array): AddressEntry[] {
  const entries = readEntries(value, 'ADDRESS_REQUEST');
  if (entries.length === 0) throw new CapsuleError('ADDRESS_REQUEST without entries');
  for (const e of entries)
    if (e.requestId === 0) throw new CapsuleError('ADDRESS_REQUEST with request ID 0');
  return entries;
}

export function decodeRouteAdvertisement(value: Uint8Array): IpRange[] {
  const out: IpRange[] = [];
  let off = 0;
  while (off < value.length) {
    const v = value[off++];
    if (v !== 4 && v !== 6) throw new CapsuleError(`ROUTE_ADVERTISEMENT: IP version ${v}`);
    const version: IpVersion = v;
    const alen = addressLength(version);
    if (off + 2 * alen + 1 > value.length)
      throw new CapsuleError('ROUTE_ADVERTISEMENT: truncated range');
    const start = value.slice(off, off + alen);
    const end = value.slice(off + alen, off + 2 * alen);
    off += 2 * alen;
    out.push({ version, start, end, ipProtocol: value[off++] });
  }
  const problem = validateRoutes(out);
  if (problem) throw new CapsuleError(`ROUTE_ADVERTISEMENT: ${problem}`);
  return out;
}

/** Decodes a capsule value of a known type; `undefined` for types this layer does not know. */
export function decodeCapsuleValue(type: number, value: Uint8Array): Capsule | undefined {
  switch (type) {
    case CAPSULE_DATAGRAM:
      return { kind: 'datagram', payload: value };
    case CAPSULE_ADDRESS_ASSIGN:
      return { kind: 'address-assign', addresses: decodeAddressAssign(value) };
    case CAPSULE_ADDRESS_REQUEST:
      return { kind: 'address-request', addresses: decodeAddressRequest(value) };
    case CAPSULE_ROUTE_ADVERTISEMENT:
      return { kind: 'route-advertisement', ranges: decodeRouteAdvertisement(value) };
    default:
      return undefined;
  }
}

function entriesSize(entries: readonly AddressEntry[]): number {
  let n = 0;
  for (const e of entries) n += varintSize(e.requestId) + 2 + addressLength(e.prefix.version);
  return n;
}

function writeEntries(buf: Uint8Array, off: number, entries: readonly AddressEntry[]): number {
  for (const e of entries) {
    off = writeVarint(buf, off, e.requestId);
    buf[off++] = e.prefix.version;
    buf.set(e.prefix.address, off);
    off += e.prefix.address.length;
    buf[off++] = e.prefix.prefixLength;
  }
  return off;
}

function capsuleTypeOf(c: Capsule): number {
  switch (c.kind) {
    case 'datagram':
      return CAPSULE_DATAGRAM;
    case 'address-assign':
      return CAPSULE_ADDRESS_ASSIGN;
    case 'address-request':
      return CAPSULE_ADDRESS_REQUEST;
    case 'route-advertisement':
      return CAPSULE_ROUTE_ADVERTISEMENT;
    case 'other':
      return c.type;
  }
}

function valueSize(c: Capsule): number {
  switch (c.kind) {
    case 'datagram':
      return c.payload.length;
    case 'address-assign':
    case 'address-request':
      return entriesSize(c.addresses);
    case 'route-advertisement': {
      let n = 0;
      for (const r of c.ranges) n += 2 + 2 * addressLength(r.version);
      return n;
    }
    case 'other':
      return c.value.length;
  }
}

/**
 * Encodes a whole capsule (type, length, value) with minimal varints. The sender does not check
 * semantic rules here: normalise routes with `normaliseRoutes` first.
 */
export function encodeCapsule(c: Capsule): Uint8Array {
  const type = capsuleTypeOf(c);
  const len = valueSize(c);
  const out = new Uint8Array(varintSize(type) + varintSize(len) + len);
  let off = writeVarint(out, 0, type);
  off = writeVarint(out, off, len);
  switch (c.kind) {
    case 'datagram':
      out.set(c.payload, off);
      break;
    case 'address-assign':
    case 'address-request':
      writeEntries(out, off, c.addresses);
      break;
    case 'route-advertisement':
      for (const r of c.ranges) {
        out[off++] = r.version;
        out.set(r.start, off);
        off += r.start.length;
        out.set(r.end, off);
        off += r.end.length;
        out[off++] = r.ipProtocol;
      }
      break;
    case 'other':
      out.set(c.value, off);
      break;
  }
  return out;
}

/** Concatenates encoded capsules (several capsules may share one DATA frame). */
export function encodeCapsules(capsules: readonly Capsule[]): Uint8Array {
  const parts = capsules.map(encodeCapsule);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** The rejection answer for a requested address: all-zero address at maximum length (§4.7.1). */
export function rejectionFor(requestId: number, version: IpVersion): AddressEntry {
  return {
    requestId,
    prefix: {
      version,
      address: new Uint8Array(addressLength(version)),
      prefixLength: maxPrefixLength(version),
    },
  };
}

export function isRejection(e: AddressEntry): boolean {
  return (
    e.prefix.prefixLength === maxPrefixLength(e.prefix.version) && isUnspecified(e.prefix.address)
  );
}

// ---------------------------------------------------------------------------------------------
// Streaming parser

export interface CapsuleLimits {
  /** Largest ADDRESS_* / ROUTE_ADVERTISEMENT value we buffer; beyond it H3_EXCESSIVE_LOAD. */
  maxControlCapsule: number;
  /** Largest DATAGRAM capsule value we deliver; larger ones are skipped (RFC 9297 §3.5). */
  maxDatagramCapsule: number;
}

export const DEFAULT_CAPSULE_LIMITS: CapsuleLimits = {
  // 64 KiB holds ~3,000 IPv6 route ranges: far beyond any real advertisement.
  maxControlCapsule: 65536,
  // Context ID (up to 8 bytes) + the largest IP packet.
  maxDatagramCapsule: 65535 + 8,
};

export interface CapsuleParserStats {
  capsules: number;
  skippedUnknown: number;
  skippedOversizeDatagrams: number;
}

/**
 * Incremental capsule parser for the concatenated DATA payloads of a request stream. Known
 * capsules are delivered whole; unknown ones and oversize DATAGRAM capsules are skipped by length
 * without buffering. Throws only CapsuleError, after which the parser is unusable (the stream is
 * being reset). A delivered `datagram` payload may be a view into the caller's chunk: copy it if
 * it must outlive the callback.
 */
export class CapsuleParser {
  readonly stats: CapsuleParserStats = {
    capsules: 0,
    skippedUnknown: 0,
    skippedOversizeDatagrams: 0,
  };
  private readonly limits: CapsuleLimits;
  private readonly header = new Uint8Array(16);
  private headerLen = 0;
  private type = 0;
  /** Bytes of the current value still to come; -1 while reading a header. */
  private remaining = -1;
  private skipping = false;
  private body: Uint8Array | undefined;
  private bodyLen = 0;

  constructor(limits: Partial<CapsuleLimits> = {}) {
    this.limits = { ...DEFAULT_CAPSULE_LIMITS, ...limits };
  }

  /** True when no capsule is partly received: a FIN here is clean. */
  get idle(): boolean {
    return this.remaining < 0 && this.headerLen === 0;
  }

  push(chunk: Uint8Array, onCapsule: (capsule: Capsule) => void): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.remaining < 0) {
        off = this.readHeader(chunk, off);
        if (this.remaining < 0) return; // header incomplete, chunk consumed
        // A whole capsule inside this chunk: decode from the chunk itself, no copy.
        if (!this.skipping && this.body === undefined && off + this.remaining <= chunk.length) {
          const value = chunk.subarray(off, off + this.remaining);
          off += this.remaining;
          this.remaining = -1;
          this.deliver(value, onCapsule);
          continue;
        }
        if (!this.skipping && this.remaining > 0) {
          this.body = new Uint8Array(this.remaining);
          this.bodyLen = 0;
        }
        if (this.remaining === 0) {
          this.remaining = -1;
          this.finishValue(onCapsule);
          continue;
        }
      }
      const take = Math.min(this.remaining, chunk.length - off);
      if (!this.skipping && this.body) this.body.set(chunk.subarray(off, off + take), this.bodyLen);
      this.bodyLen += take;
      this.remaining -= take;
      off += take;
      if (this.remaining === 0) {
        this.remaining = -1;
        this.finishValue(onCapsule);
      }
    }
  }

  /** The peer sent FIN: a partial capsule is a malformed message (RFC 9297 §3.3). */
  finish(): void {
    if (!this.idle) throw new CapsuleError('stream ended inside a capsule');
  }

  private readHeader(chunk: Uint8Array, off: number): number {
    // Collect bytes until the type and length varints are both complete; never more than 16.
    while (off < chunk.length) {
      this.header[this.headerLen++] = chunk[off++];
      const typeLen = varintLengthFromFirstByte(this.header[0]);
      if (this.headerLen <= typeLen) continue;
      const lenLen = varintLengthFromFirstByte(this.header[typeLen]);
      if (this.headerLen < typeLen + lenLen) continue;
      const type = readVarint(this.header, 0);
      const len = readVarint(this.header, typeLen);
      if (!type || !len) throw new CapsuleError('capsule header'); // unreachable by construction
      this.headerLen = 0;
      this.begin(type.value, len.value);
      return off;
    }
    return off;
  }

  private begin(type: number, length: number): void {
    this.type = type;
    this.remaining = length;
    this.body = undefined;
    this.bodyLen = 0;
    this.skipping = false;
    if (type === CAPSULE_DATAGRAM) {
      if (length > this.limits.maxDatagramCapsule) {
        this.skipping = true;
        this.stats.skippedOversizeDatagrams++;
      }
    } else if (
      type === CAPSULE_ADDRESS_ASSIGN ||
      type === CAPSULE_ADDRESS_REQUEST ||
      type === CAPSULE_ROUTE_ADVERTISEMENT
    ) {
      if (length > this.limits.maxControlCapsule)
        throw new CapsuleError(
          `capsule type ${type} of ${length} bytes exceeds the ${this.limits.maxControlCapsule}-byte limit`,
          H3_EXCESSIVE_LOAD,
        );
    } else {
      this.skipping = true;
      this.stats.skippedUnknown++;
    }
  }

  private finishValue(onCapsule: (capsule: Capsule) => void): void {
    if (this.skipping) {
      this.skipping = false;
      return;
    }
    const value = this.body ?? new Uint8Array(0);
    this.body = undefined;
    this.deliver(value, onCapsule);
  }

  private deliver(value: Uint8Array, onCapsule: (capsule: Capsule) => void): void {
    const capsule = decodeCapsuleValue(this.type, value);
    if (capsule) {
      this.stats.capsules++;
      onCapsule(capsule);
    }
  }
}
