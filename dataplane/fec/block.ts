// Whole-block encode and decode as pure functions. The streaming sender and receiver use the same
// arithmetic incrementally; these are the reference the property tests and the benchmark drive.
import type { ErasureCode } from './code.js';
import { LENGTH_PREFIX, addPacketToSymbol, symbolPacketLength, symbolSize } from './symbol.js';

export class FecDecodeError extends Error {
  constructor(
    readonly reason: 'inconsistent-repair' | 'corrupt-length' | 'bad-shape',
    message: string,
  ) {
    super(message);
    this.name = 'FecDecodeError';
  }
}

/** Repair symbols (length prefix + zero-padded packet, no FEC header) for one block. */
export function encodeBlock(
  code: ErasureCode,
  packets: readonly Uint8Array[],
  m: number,
): Uint8Array[] {
  const k = packets.length;
  if (k < 1 || m < 1 || m > code.maxRepair || k + m > 256) {
    throw new FecDecodeError('bad-shape', `cannot encode k=${k} m=${m} with ${code.scheme}`);
  }
  let longest = 0;
  for (const p of packets) longest = Math.max(longest, p.length);
  const size = symbolSize(longest);
  const repair: Uint8Array[] = [];
  for (let j = 0; j < m; j++) {
    const acc = new Uint8Array(size);
    for (let i = 0; i < k; i++) {
      addPacketToSymbol(acc, packets[i], 0, packets[i].length, code.coefficient(j, i));
    }
    repair.push(acc);
  }
  return repair;
}

/**
 * Returns the block's k packets when the received data (`undefined` = lost) plus repair symbols
 * (`undefined` = lost) hold at least k symbols, otherwise `undefined`. Never returns a packet it
 * could not reconstruct exactly.
 */
export function decodeBlock(
  code: ErasureCode,
  data: readonly (Uint8Array | undefined)[],
  repair: readonly (Uint8Array | undefined)[],
): Uint8Array[] | undefined {
  const k = data.length;
  const m = repair.length;
  if (k < 1 || m > code.maxRepair || k + m > 256) {
    throw new FecDecodeError('bad-shape', `cannot decode k=${k} m=${m} with ${code.scheme}`);
  }
  const missing: number[] = [];
  for (let i = 0; i < k; i++) if (data[i] === undefined) missing.push(i);
  if (missing.length === 0) return data as Uint8Array[];
  const rows: number[] = [];
  let size = -1;
  for (let j = 0; j < m && rows.length < missing.length; j++) {
    const r = repair[j];
    if (r === undefined) continue;
    if (size === -1) size = r.length;
    if (r.length !== size || size < LENGTH_PREFIX) {
      throw new FecDecodeError(
        'inconsistent-repair',
        'repair symbols of one block differ in length',
      );
    }
    rows.push(j);
  }
  if (rows.length < missing.length) return undefined;
  const t = rows.map((j) => Uint8Array.from(repair[j] as Uint8Array));
  for (let r = 0; r < rows.length; r++) {
    for (let i = 0; i < k; i++) {
      const p = data[i];
      if (p === undefined) continue;
      if (symbolSize(p.length) > size) {
        throw new FecDecodeError('inconsistent-repair', 'a data packet is longer than the repair');
      }
      addPacketToSymbol(t[r], p, 0, p.length, code.coefficient(rows[r], i));
    }
  }
  code.solve(rows, missing, t, size);
  const out = data.slice() as Uint8Array[];
  for (let r = 0; r < missing.length; r++) {
    const len = symbolPacketLength(t[r]);
    if (len + LENGTH_PREFIX > size) {
      throw new FecDecodeError('corrupt-length', 'recovered length exceeds the symbol');
    }
    if (!isZero(t[r], LENGTH_PREFIX + len, size)) {
      throw new FecDecodeError('corrupt-length', 'recovered padding is not zero');
    }
    out[missing[r]] = t[r].subarray(LENGTH_PREFIX, LENGTH_PREFIX + len);
  }
  return out;
}

/** True when buf[from..to) is all zero: the padding of a correctly recovered symbol. */
export function isZero(buf: Uint8Array, from: number, to: number): boolean {
  let acc = 0;
  for (let i = from; i < to; i++) acc |= buf[i];
  return acc === 0;
}
