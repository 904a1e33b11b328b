// ICMPv4 echo packets built and read in process, so a simulated client needs no TUN: the request
// goes from the tunnel's assigned address to the server's tunnel address, and the data plane's
// kernel answers it through the TUN like any ping.
import { internetChecksum } from '../../dataplane/masque/checksum.js';

const IPV4_HEADER = 20;
const ICMP_HEADER = 8;
/** Payload: an 8-byte send timestamp (µs, float64) so a reply carries its own RTT origin. */
export const ECHO_PAYLOAD = 8;
export const ECHO_PACKET_SIZE = IPV4_HEADER + ICMP_HEADER + ECHO_PAYLOAD;

/** Dotted quad to a 32-bit number; throws RangeError on anything else. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) throw new RangeError(`not an IPv4 address: ${text}`);
  let v = 0;
  for (const p of parts) {
    const n = Number(p);
    if (!/^\d{1,3}$/.test(p) || n > 255) throw new RangeError(`not an IPv4 address: ${text}`);
    v = v * 256 + n;
  }
  return v;
}

/**
 * Writes an echo request into `out` (at least ECHO_PACKET_SIZE bytes), reusing the caller's buffer
 * so the send loop does not allocate. Returns the packet length.
 */
export function writeEchoRequest(
  out: Uint8Array,
  src: number,
  dst: number,
  id: number,
  seq: number,
  sentUs: number,
): number {
  const len = ECHO_PACKET_SIZE;
  const v = new DataView(out.buffer, out.byteOffset, len);
  v.setUint8(0, 0x45);
  v.setUint8(1, 0);
  v.setUint16(2, len);
  v.setUint16(4, seq & 0xffff); // IP identification: anything; the sequence is handy in captures
  v.setUint16(6, 0x4000); // DF
  v.setUint8(8, 64);
  v.setUint8(9, 1);
  v.setUint16(10, 0);
  v.setUint32(12, src >>> 0);
  v.setUint32(16, dst >>> 0);
  v.setUint16(10, internetChecksum(out, 0, IPV4_HEADER));
  v.setUint8(20, 8);
  v.setUint8(21, 0);
  v.setUint16(22, 0);
  v.setUint16(24, id & 0xffff);
  v.setUint16(26, seq & 0xffff);
  v.setFloat64(28, sentUs);
  v.setUint16(22, internetChecksum(out, IPV4_HEADER, len - IPV4_HEADER));
  return len;
}

export interface EchoReply {
  src: number;
  dst: number;
  id: number;
  seq: number;
  sentUs: number;
}

/**
 * The echo reply in `p`, or undefined when `p` is anything else (other protocol, fragment, IP
 * options we do not expect, short, bad checksum). Never throws.
 */
export function parseEchoReply(p: Uint8Array): EchoReply | undefined {
  if (p.length < IPV4_HEADER + ICMP_HEADER) return undefined;
  if (p[0] >> 4 !== 4) return undefined;
  const ihl = (p[0] & 0x0f) * 4;
  if (ihl < IPV4_HEADER || p.length < ihl + ICMP_HEADER + ECHO_PAYLOAD) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const total = v.getUint16(2);
  if (total < ihl + ICMP_HEADER + ECHO_PAYLOAD || total > p.length) return undefined;
  if (p[9] !== 1 || (v.getUint16(6) & 0x3fff) !== 0) return undefined;
  if (p[ihl] !== 0 || p[ihl + 1] !== 0) return undefined;
  if (internetChecksum(p, ihl, total - ihl) !== 0) return undefined;
  return {
    src: v.getUint32(12),
    dst: v.getUint32(16),
    id: v.getUint16(ihl + 4),
    seq: v.getUint16(ihl + 6),
    sentUs: v.getFloat64(ihl + 8),
  };
}
