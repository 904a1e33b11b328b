// IP addresses and CIDR prefixes: canonical text at the edges, bigint inside, so a pool of 2^64
// addresses is four numbers and arithmetic on it is exact.

export type IpFamily = 4 | 6;

export class InvalidAddressError extends Error {
  override readonly name = 'InvalidAddressError';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid IP address "${input}": ${reason}`);
  }
}

export class InvalidCidrError extends Error {
  override readonly name = 'InvalidCidrError';
  constructor(
    readonly input: string,
    reason: string,
  ) {
    super(`invalid CIDR "${input}": ${reason}`);
  }
}

export interface ParsedAddress {
  readonly family: IpFamily;
  readonly value: bigint;
}

export interface Cidr {
  readonly family: IpFamily;
  readonly network: bigint;
  readonly prefixLength: number;
  /** Canonical text, e.g. `10.77.0.0/16`, `fd77::/64`. */
  readonly text: string;
}

export function addressBits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

function parseIpv4Value(text: string, input: string): bigint {
  const parts = text.split('.');
  if (parts.length !== 4)
    throw new InvalidAddressError(input, 'expected four dotted decimal octets');
  let value = 0n;
  for (const part of parts) {
    // No leading zeros: "010" means 8 to some parsers and 10 to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) {
      throw new InvalidAddressError(input, `bad octet "${part}"`);
    }
    const octet = Number(part);
    if (octet > 255) throw new InvalidAddressError(input, `octet ${octet} is above 255`);
    value = (value << 8n) | BigInt(octet);
  }
  return value;
}

function parseIpv6Value(text: string, input: string): bigint {
  if (text.includes('%')) throw new InvalidAddressError(input, 'zone identifiers are not allowed');
  const halves = text.split('::');
  if (halves.length > 2) throw new InvalidAddressError(input, '"::" may appear only once');
  const groupsOf = (half: string): string[] => (half === '' ? [] : half.split(':'));
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];

  // An embedded dotted IPv4 address (::ffff:192.0.2.1) stands for the last two groups.
  const words: number[] = [];
  const pushGroups = (groups: string[], allowIpv4Last: boolean): void => {
    groups.forEach((group, i) => {
      if (allowIpv4Last && i === groups.length - 1 && group.includes('.')) {
        const v4 = parseIpv4Value(group, input);
        words.push(Number(v4 >> 16n), Number(v4 & 0xffffn));
        return;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(group)) {
        throw new InvalidAddressError(input, `bad group "${group}"`);
      }
      words.push(parseInt(group, 16));
    });
  };
  const compressed = halves.length === 2;
  pushGroups(head, !compressed);
  const headWords = words.length;
  pushGroups(tail, true);
  const tailWords = words.length - headWords;

  if (compressed) {
    if (headWords + tailWords > 7) throw new InvalidAddressError(input, 'too many groups');
    words.splice(headWords, 0, ...new Array<number>(8 - headWords - tailWords).fill(0));
  } else if (words.length !== 8) {
    throw new InvalidAddressError(input, 'expected eight groups or "::"');
  }
  let value = 0n;
  for (const word of words) value = (value << 16n) | BigInt(word);
  return value;
}

export function parseAddress(text: string): ParsedAddress {
  if (typeof text !== 'string' || text.length === 0 || text.length > 45) {
    throw new InvalidAddressError(String(text), 'empty or too long');
  }
  if (text.includes(':')) return { family: 6, value: parseIpv6Value(text, text) };
  return { family: 4, value: parseIpv4Value(text, text) };
}

export function formatAddress(family: IpFamily, value: bigint): string {
  const max = (1n << BigInt(addressBits(family))) - 1n;
  if (value < 0n || value > max) throw new RangeError(`${value} is not an IPv${family} address`);
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  }
  const words: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) words.push(Number((value >> shift) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLength))}`;
}

export function canonicalAddress(text: string): string {
  const { family, value } = parseAddress(text);
  return formatAddress(family, value);
}

export function addressFamily(text: string): IpFamily {
  return parseAddress(text).family;
}

/** Orders IPv4 before IPv6, then numerically. */
export function compareAddresses(a: string, b: string): number {
  const x = parseAddress(a);
  const y = parseAddress(b);
  if (x.family !== y.family) return x.family < y.family ? -1 : 1;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

/** The address `delta` places after (or, negative, before) `text`, in the same family. */
export function addressOffset(text: string, delta: bigint): string {
  const { family, value } = parseAddress(text);
  const next = value + delta;
  if (next < 0n || next >= 1n << BigInt(addressBits(family))) {
    throw new RangeError(
      `${text} ${delta < 0n ? '-' : '+'} ${delta < 0n ? -delta : delta} leaves IPv${family}`,
    );
  }
  return formatAddress(family, next);
}

export function parseCidr(text: string): Cidr {
  if (typeof text !== 'string') throw new InvalidCidrError(String(text), 'not a string');
  const slash = text.indexOf('/');
  if (slash < 0) throw new InvalidCidrError(text, 'missing "/prefix-length"');
  const addressText = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  let address: ParsedAddress;
  try {
    address = parseAddress(addressText);
  } catch (err) {
    if (err instanceof InvalidAddressError) {
      throw new InvalidCidrError(text, err.message.replace(/^invalid IP address "[^"]*": /, ''));
    }
    throw err;
  }
  const bits = addressBits(address.family);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefixText) || Number(prefixText) > bits) {
    throw new InvalidCidrError(text, `prefix length must be 0..${bits} for IPv${address.family}`);
  }
  const prefixLength = Number(prefixText);
  const hostMask = (1n << BigInt(bits - prefixLength)) - 1n;
  if ((address.value & hostMask) !== 0n) {
    const network = formatAddress(address.family, address.value & ~hostMask);
    throw new InvalidCidrError(
      text,
      `host bits are set (did you mean ${network}/${prefixLength}?)`,
    );
  }
  return {
    family: address.family,
    network: address.value,
    prefixLength,
    text: `${formatAddress(address.family, address.value)}/${prefixLength}`,
  };
}

export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(addressBits(cidr.family) - cidr.prefixLength);
}

export function cidrContains(cidr: Cidr, value: bigint): boolean {
  return value >= cidr.network && value < cidr.network + cidrSize(cidr);
}
