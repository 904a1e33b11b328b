// Helpers shared by this folder's tests (not imported by production code).

export const hex = (s: string): Uint8Array =>
  Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
export const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/**
 * An Internet checksum written independently of checksum.ts (bigint accumulation, folded once at
 * the end) so tests do not check the production code against itself.
 */
export function referenceChecksum(...parts: Uint8Array[]): number {
  const bytes = Buffer.concat(parts.map((p) => Buffer.from(p)));
  let sum = 0n;
  for (let i = 0; i < bytes.length; i += 2)
    sum += BigInt((bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0));
  while (sum >> 16n) sum = (sum & 0xffffn) + (sum >> 16n);
  return Number(~sum & 0xffffn);
}

/** An IPv4 packet with a valid header checksum. */
export function ipv4Packet(opts: {
  src: string;
  dst: string;
  protocol?: number;
  ttl?: number;
  df?: boolean;
  payload?: Uint8Array;
  fragmentOffset?: number;
}): Uint8Array {
  const payload = opts.payload ?? new Uint8Array(8);
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  p[2] = p.length >> 8;
  p[3] = p.length & 0xff;
  const frag = ((opts.df ?? true) ? 0x4000 : 0) | (opts.fragmentOffset ?? 0);
  p[6] = frag >> 8;
  p[7] = frag & 0xff;
  p[8] = opts.ttl ?? 64;
  p[9] = opts.protocol ?? 17;
  p.set(opts.src.split('.').map(Number), 12);
  p.set(opts.dst.split('.').map(Number), 16);
  const c = referenceChecksum(p.subarray(0, 20));
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

/** An IPv6 packet; `chain` is raw extension-header bytes whose first next-header is `firstNext`. */
export function ipv6Packet(opts: {
  src: Uint8Array;
  dst: Uint8Array;
  nextHeader?: number;
  hopLimit?: number;
  payload?: Uint8Array;
}): Uint8Array {
  const payload = opts.payload ?? new Uint8Array(8);
  const p = new Uint8Array(40 + payload.length);
  p[0] = 0x60;
  p[4] = payload.length >> 8;
  p[5] = payload.length & 0xff;
  p[6] = opts.nextHeader ?? 17;
  p[7] = opts.hopLimit ?? 64;
  p.set(opts.src, 8);
  p.set(opts.dst, 24);
  p.set(payload, 40);
  return p;
}
