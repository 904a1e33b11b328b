// UDP echo probes built and read in process: a simulated client sends a sequenced, timestamped
// datagram from its tunnel address to the echo responder behind the server's TUN, which sends the
// payload back unchanged. Unlike ICMP echo (answered by the server's kernel), this exercises the
// whole path to a user-space application and back, and the sequence numbers count loss per tunnel.
import { finishChecksum, internetChecksum, sumWords } from '../../dataplane/masque/checksum.js';

const IPV4_HEADER = 20;
const UDP_HEADER = 8;
/** 'MQLD': tells our probes from anything else arriving on the tunnel. */
export const UDP_MAGIC = 0x4d514c44;
/** magic u32, tunnel index u32, sequence u32, reserved u32, send time (µs) f64. */
export const UDP_PAYLOAD = 24;
export const UDP_PACKET_SIZE = IPV4_HEADER + UDP_HEADER + UDP_PAYLOAD;

export interface UdpProbe {
  src: number;
  dst: number;
  srcPort: number;
  dstPort: number;
  tunnel: number;
  seq: number;
  sentUs: number;
}

/** One's-complement sum of the IPv4 pseudo-header, folded into the UDP checksum. */
function pseudoHeaderSum(src: number, dst: number, udpLength: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + 17 + udpLength;
}

/** UDP checksum over b[start, end) with the pseudo-header (RFC 768); 0 is sent as 0xffff. */
export function udpChecksum(
  b: Uint8Array,
  start: number,
  end: number,
  src: number,
  dst: number,
): number {
  const c = finishChecksum(sumWords(b, start, end - start, pseudoHeaderSum(src, dst, end - start)));
  return c === 0 ? 0xffff : c;
}

/**
 * Writes a probe into `out` (at least UDP_PACKET_SIZE bytes), reusing the caller's buffer so the
 * send loop does not allocate. Returns the packet length.
 */
export function writeUdpProbe(out: Uint8Array, p: UdpProbe): number {
  const len = UDP_PACKET_SIZE;
  const v = new DataView(out.buffer, out.byteOffset, len);
  v.setUint8(0, 0x45);
  v.setUint8(1, 0);
  v.setUint16(2, len);
  v.setUint16(4, p.seq & 0xffff);
  v.setUint16(6, 0x4000); // DF
  v.setUint8(8, 64);
  v.setUint8(9, 17);
  v.setUint16(10, 0);
  v.setUint32(12, p.src >>> 0);
  v.setUint32(16, p.dst >>> 0);
  v.setUint16(10, internetChecksum(out, 0, IPV4_HEADER));
  const u = IPV4_HEADER;
  v.setUint16(u, p.srcPort);
  v.setUint16(u + 2, p.dstPort);
  v.setUint16(u + 4, UDP_HEADER + UDP_PAYLOAD);
  v.setUint16(u + 6, 0);
  v.setUint32(u + 8, UDP_MAGIC);
  v.setUint32(u + 12, p.tunnel >>> 0);
  v.setUint32(u + 16, p.seq >>> 0);
  v.setUint32(u + 20, 0);
  v.setFloat64(u + 24, p.sentUs);
  v.setUint16(u + 6, udpChecksum(out, u, len, p.src >>> 0, p.dst >>> 0));
  return len;
}

/**
 * The probe in `p` (as sent, or as echoed back with addresses and ports swapped), or undefined
 * when `p` is anything else: other protocol, fragment, short, bad checksum, not our magic.
 * Never throws.
 */
export function parseUdpProbe(p: Uint8Array): UdpProbe | undefined {
  if (p.length < IPV4_HEADER + UDP_HEADER + UDP_PAYLOAD || p[0] >> 4 !== 4) return undefined;
  const ihl = (p[0] & 0x0f) * 4;
  if (ihl < IPV4_HEADER || p.length < ihl + UDP_HEADER + UDP_PAYLOAD) return undefined;
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const total = v.getUint16(2);
  if (total < ihl + UDP_HEADER + UDP_PAYLOAD || total > p.length) return undefined;
  if (p[9] !== 17 || (v.getUint16(6) & 0x3fff) !== 0) return undefined;
  const udpLength = v.getUint16(ihl + 4);
  if (udpLength !== total - ihl) return undefined;
  const src = v.getUint32(12);
  const dst = v.getUint32(16);
  // A zero checksum means "none" in IPv4; anything else must verify (sum over all incl. itself).
  if (v.getUint16(ihl + 6) !== 0) {
    const sum = sumWords(p, ihl, total - ihl, pseudoHeaderSum(src, dst, udpLength));
    if (finishChecksum(sum) !== 0) return undefined;
  }
  if (v.getUint32(ihl + 8) !== UDP_MAGIC) return undefined;
  return {
    src,
    dst,
    srcPort: v.getUint16(ihl),
    dstPort: v.getUint16(ihl + 2),
    tunnel: v.getUint32(ihl + 12),
    seq: v.getUint32(ihl + 16),
    sentUs: v.getFloat64(ihl + 24),
  };
}
