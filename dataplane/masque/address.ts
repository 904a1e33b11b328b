// IPv4 and IPv6 addresses and prefixes as bytes. Strings appear only at the edges (configuration,
// logs, URI template variables); packet checks compare bytes in place and never build strings.

export type IpVersion = 4 | 6;

/** An address prefix: `address` is 4 or 16 bytes with every bit past `prefixLength` zero. */
export interface IpPrefix {
  readonly version: IpVersion;
  readonly address: Uint8Array;
  readonly prefixLength: number;
}

/** Address length in bytes for an IP version. */
export function addressLength(version: IpVersion): 4 | 16 {
  return version === 4 ? 4 : 16;
}

/** Maximum prefix length in bits for an IP version. */
export function maxPrefixLength(version: IpVersion): 32 | 128 {
  return version === 4 ? 32 : 128;
}

function parseIpv4(text: string, out: Uint8Array, offset: number): boolean {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    // Leading zeros are refused: some stacks read them as octal, so accepting them is ambiguous.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const v = Number(p);
    if (v > 255) return false;
    out[offset + i] = v;
  }
  return true;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  // An embedded IPv4 tail (::ffff:10.0.0.1) takes the last four bytes.
  const all = halves.length === 2 ? tail : head;
  let v4Tail = false;
  if (all.length > 0 && all[all.length - 1].includes('.')) {
    const v4 = all.pop() as string;
    if (!parseIpv4(v4, out, 12)) return undefined;
    v4Tail = true;
  }
  const groupBytes = (head.length + tail.length) * 2 + (v4Tail ? 4 : 0);
  if (halves.length === 1 ? groupBytes !== 16 : groupBytes > 14) return undefined;
  const put = (groups: string[], startByte: number): boolean => {
    for (let i = 0; i < groups.length; i++) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(groups[i])) return false;
      const v = parseInt(groups[i], 16);
      out[startByte + 2 * i] = v >> 8;
      out[startByte + 2 * i + 1] = v & 0xff;
    }
    return true;
  };
  if (!put(head, 0)) return undefined;
  const tailEnd = v4Tail ? 12 : 16;
  if (!put(tail, tailEnd - tail.length * 2)) return undefined;
  return out;
}

/** Parses a textual IPv4 or IPv6 address into 4 or 16 bytes; `undefined` if it is not one. */
export function parseIp(text: string): Uint8Array | undefined {
  if (text.includes(':')) return parseIpv6(text);
  const out = new Uint8Array(4);
  return parseIpv4(text, out, 0) ? out : undefined;
}

/** Formats 4 or 16 address bytes (RFC 5952 form for IPv6). */
export function formatIp(address: Uint8Array): string {
  if (address.length === 4) return address.join('.');
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((address[i] << 8) | address[i + 1]);
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Whether every bit of `address` past `prefixLength` is zero. */
export function hostBitsZero(address: Uint8Array, prefixLength: number): boolean {
  for (let bit = prefixLength; bit < address.length * 8;) {
    const byte = bit >> 3;
    const mask = 0xff >> (bit & 7);
    if ((address[byte] & mask) !== 0) return false;
    bit = (byte + 1) * 8;
  }
  return true;
}

/**
 * Parses `addr/len` (or a bare address, meaning a host prefix). Host bits must be zero, as on the
 * wire (RFC 9484 §4.7.1), so a typo in configuration fails loudly instead of widening a prefix.
 */
export function parsePrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf('/');
  const address = parseIp(slash < 0 ? text : text.slice(0, slash));
  if (!address) return undefined;
  const version: IpVersion = address.length === 4 ? 4 : 6;
  const max = maxPrefixLength(version);
  let prefixLength: number = max;
  if (slash >= 0) {
    const len = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(len)) return undefined;
    prefixLength = Number(len);
    if (prefixLength > max) return undefined;
  }
  if (!hostBitsZero(address, prefixLength)) return undefined;
  return { version, address, prefixLength };
}

export function formatPrefix(prefix: IpPrefix): string {
  return `${formatIp(prefix.address)}/${prefix.prefixLength}`;
}

/** Whether `prefix` contains the address stored at `buf[offset..]` (length given by the prefix). */
export function prefixContains(prefix: IpPrefix, buf: Uint8Array, offset: number): boolean {
  const a = prefix.address;
  const full = prefix.prefixLength >> 3;
  for (let i = 0; i < full; i++) if (a[i] !== buf[offset + i]) return false;
  const rest = prefix.prefixLength & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (buf[offset + full] & mask) === a[full];
}

/**
 * Compares `len` bytes of `a` at `aOff` with `b` at `bOff` as big-endian unsigned integers:
 * negative, zero or positive.
 */
export function compareAddress(
  a: Uint8Array,
  aOff: number,
  b: Uint8Array,
  bOff: number,
  len: number,
): number {
  for (let i = 0; i < len; i++) {
    const d = a[aOff + i] - b[bOff + i];
    if (d !== 0) return d;
  }
  return 0;
}

/** The last address of a prefix (all host bits set). */
export function prefixLastAddress(prefix: IpPrefix): Uint8Array {
  const out = Uint8Array.from(prefix.address);
  for (let bit = prefix.prefixLength; bit < out.length * 8;) {
    const byte = bit >> 3;
    out[byte] |= 0xff >> (bit & 7);
    bit = (byte + 1) * 8;
  }
  return out;
}

/** Address bytes as an unsigned bigint (used off the hot path: route normalisation). */
export function addressToBigInt(address: Uint8Array): bigint {
  let v = 0n;
  for (const b of address) v = (v << 8n) | BigInt(b);
  return v;
}

export function bigIntToAddress(value: bigint, version: IpVersion): Uint8Array {
  const out = new Uint8Array(addressLength(version));
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

export function isUnspecified(address: Uint8Array): boolean {
  for (const b of address) if (b !== 0) return false;
  return true;
}

export function prefixEquals(a: IpPrefix, b: IpPrefix): boolean {
  return (
    a.version === b.version &&
    a.prefixLength === b.prefixLength &&
    compareAddress(a.address, 0, b.address, 0, a.address.length) === 0
  );
}
