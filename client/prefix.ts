// IP prefixes and inclusive address ranges, the two shapes addresses and routes arrive in.
// CONNECT-IP advertises routes as inclusive ranges (RFC 9484 §4.7.3) while the kernel wants CIDR
// prefixes, so ranges are decomposed into the smallest covering set of prefixes. Addresses are
// bigints internally: one code path serves IPv4 and IPv6.
import { isIPv4, isIPv6 } from 'node:net';

export type IpVersion = 4 | 6;

/** A prefix in canonical text form plus its parts. `address` may have host bits set (interfaces). */
export interface IpPrefix {
  readonly version: IpVersion;
  readonly address: string;
  readonly length: number;
}

/** An inclusive address range, as in ROUTE_ADVERTISEMENT; protocol 0 means every protocol. */
export interface IpRange {
  readonly version: IpVersion;
  readonly start: string;
  readonly end: string;
  readonly protocol: number;
}

export class PrefixError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrefixError';
  }
}

export function bitsOf(version: IpVersion): number {
  return version === 4 ? 32 : 128;
}

export function ipVersionOf(address: string): IpVersion | undefined {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return undefined;
}

export function addressToBigInt(address: string): bigint {
  if (isIPv4(address)) {
    return address.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
  }
  if (!isIPv6(address)) throw new PrefixError(`not an IP address: ${address}`);
  let text = address;
  // An embedded dotted quad (::ffff:1.2.3.4) becomes two hextets first.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = addressToBigInt(dotted[1]);
    text = `${text.slice(0, dotted.index)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const headParts = head === '' ? [] : head.split(':');
  const tailParts = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headParts.length - tailParts.length;
  const parts = [
    ...headParts,
    ...Array<string>(tail === undefined ? 0 : missing).fill('0'),
    ...tailParts,
  ];
  return parts.reduce((acc, part) => (acc << 16n) | BigInt(parseInt(part, 16)), 0n);
}

export function bigIntToAddress(value: bigint, version: IpVersion): string {
  if (version === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  }
  const hextets: number[] = [];
  for (let i = 7; i >= 0; i--) hextets.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (≥ 2) of zero hextets, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (hextets[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && hextets[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = hextets.map((h) => h.toString(16));
  if (bestStart < 0) return hex.join(':');
  const left = hex.slice(0, bestStart).join(':');
  const right = hex.slice(bestStart + bestLength).join(':');
  return `${left}::${right}`;
}

function hostMask(version: IpVersion, length: number): bigint {
  return (1n << BigInt(bitsOf(version) - length)) - 1n;
}

/**
 * Parses `ADDR/LEN` (or a bare address, taken as a host prefix). With `network: true` the host
 * bits must be zero, as the kernel demands of a route destination.
 */
export function parsePrefix(text: string, options: { network?: boolean } = {}): IpPrefix {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  const version = ipVersionOf(addressText);
  if (version === undefined) throw new PrefixError(`"${text}" is not an IP address or prefix`);
  const bits = bitsOf(version);
  let length = bits;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) > bits) {
      throw new PrefixError(`"${text}" has an invalid prefix length (0-${bits})`);
    }
    length = Number(lengthText);
  }
  const value = addressToBigInt(addressText);
  if (options.network && (value & hostMask(version, length)) !== 0n) {
    throw new PrefixError(`"${text}" has host bits set beyond /${length}`);
  }
  return { version, address: bigIntToAddress(value, version), length };
}

export function formatPrefix(prefix: IpPrefix): string {
  return `${prefix.address}/${prefix.length}`;
}

/** The prefix with its host bits cleared. */
export function networkOf(prefix: IpPrefix): IpPrefix {
  const value = addressToBigInt(prefix.address) & ~hostMask(prefix.version, prefix.length);
  return { ...prefix, address: bigIntToAddress(value, prefix.version) };
}

export function prefixContains(prefix: IpPrefix, address: string): boolean {
  const version = ipVersionOf(address);
  if (version !== prefix.version) return false;
  const mask = ~hostMask(version, prefix.length);
  return (addressToBigInt(address) & mask) === (addressToBigInt(prefix.address) & mask);
}

/** The smallest list of prefixes whose union is exactly the inclusive range [start, end]. */
export function rangeToPrefixes(range: IpRange): IpPrefix[] {
  const bits = bitsOf(range.version);
  let start = addressToBigInt(range.start);
  const end = addressToBigInt(range.end);
  if (start > end) throw new PrefixError(`range ${range.start}-${range.end} has start > end`);
  const out: IpPrefix[] = [];
  while (start <= end) {
    // Grow the block while it stays aligned at `start` and inside the range.
    let size = 0;
    while (size < bits) {
      const next = size + 1;
      const blockMask = (1n << BigInt(next)) - 1n;
      if ((start & blockMask) !== 0n || start + blockMask > end) break;
      size = next;
    }
    out.push({
      version: range.version,
      address: bigIntToAddress(start, range.version),
      length: bits - size,
    });
    start += 1n << BigInt(size);
  }
  return out;
}

/** The prefix as an inclusive range (protocol 0). */
export function prefixToRange(prefix: IpPrefix): IpRange {
  const net = addressToBigInt(networkOf(prefix).address);
  const last = net | hostMask(prefix.version, prefix.length);
  return {
    version: prefix.version,
    start: bigIntToAddress(net, prefix.version),
    end: bigIntToAddress(last, prefix.version),
    protocol: 0,
  };
}
