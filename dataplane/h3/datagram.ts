// HTTP datagrams on QUIC DATAGRAM frames (RFC 9297 §2.1):
// `HTTP/3 Datagram { Quarter Stream ID (i), HTTP Datagram Payload (..) }`.
// These run once per tunnelled packet, so they work on caller-owned buffers and return offsets.

import { H3Error, H3ErrorCode } from './error.js';
import { varintLengthFromFirstByte, varintSize, writeVarint } from './varint.js';

/** Bytes the quarter stream ID of `streamId` takes in front of the payload. */
export function datagramHeaderSize(streamId: number): number {
  return varintSize(streamId / 4);
}

/** Writes the quarter stream ID of `streamId` at `offset`; returns where the payload starts. */
export function writeDatagramHeader(buf: Uint8Array, offset: number, streamId: number): number {
  return writeVarint(buf, offset, streamId / 4);
}

/** QSID + payload in a new buffer (off the per-packet path). */
export function encodeDatagram(streamId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(datagramHeaderSize(streamId) + payload.length);
  out.set(payload, writeDatagramHeader(out, 0, streamId));
  return out;
}

/**
 * Reads the quarter stream ID at the start of a QUIC DATAGRAM payload. Returns it (as a number,
 * exact up to 2^53) and the payload offset through `out`, to stay allocation-free. A payload too
 * short for a QSID, or a QSID above 2^60−1, is connection error H3_DATAGRAM_ERROR.
 */
export function readQuarterStreamId(data: Uint8Array, out: { qsid: number; offset: number }): void {
  const length = data.length === 0 ? 1 : varintLengthFromFirstByte(data[0]);
  if (data.length < length) {
    throw new H3Error(H3ErrorCode.DATAGRAM_ERROR, 'datagram too short for a QSID');
  }
  // Checked on the wire bits: 2^60−1 itself is not exact as a double.
  if (length === 8 && (data[0] & 0x30) !== 0) {
    throw new H3Error(H3ErrorCode.DATAGRAM_ERROR, 'quarter stream ID above 2^60-1');
  }
  let value = data[0] & 0x3f;
  for (let i = 1; i < length; i++) value = value * 256 + data[i];
  out.qsid = value;
  out.offset = length;
}
