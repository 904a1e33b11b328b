// Systematic Reed–Solomon over GF(2^8) built on a Cauchy matrix. Repair row j, data column i:
//
//   C[j][i] = (x_0 + y_i) / (x_j + y_i),  x_j = 255 − j,  y_i = i
//
// Every square submatrix of a Cauchy matrix is nonsingular, and scaling columns by the nonzero
// (x_0 + y_i) keeps that true, so [I; C] is MDS: any k of the k + m symbols give back the block.
// The scaling makes row 0 all ones, so one repair symbol is plain XOR parity, and C[j][i] does not
// depend on k: a block closed early by the flush timer uses a leading submatrix of the same code.
// x_j ≠ y_i holds whenever i + j < 255, i.e. for every block with k + m ≤ 256.
import type { ErasureCode } from './code.js';
import { addInto, gfDiv, gfInv, gfMul, mulAddInto, mulInPlace } from './gf256.js';

export const RS_MAX_SYMBOLS = 256;

const COEF = new Uint8Array(256 * 256);
for (let j = 0; j < 256; j++) {
  for (let i = 0; i + j < 255; i++) {
    COEF[(j << 8) | i] = gfDiv(255 ^ i, (255 - j) ^ i);
  }
}

// Scratch for the e×e system; solving is synchronous, so one matrix serves every caller.
const A = new Uint8Array(256 * 256);

export class SingularMatrixError extends Error {
  constructor() {
    super('erasure system is singular (rows or indices repeated or out of range)');
    this.name = 'SingularMatrixError';
  }
}

export const reedSolomonCode: ErasureCode = {
  scheme: 'rs',
  maxRepair: 255,
  coefficient(j: number, i: number): number {
    return COEF[(j << 8) | i];
  },
  solve(rows: readonly number[], missing: readonly number[], t: Uint8Array[], len: number): void {
    const e = rows.length;
    if (missing.length !== e || t.length < e) throw new SingularMatrixError();
    if (e === 1 && rows[0] === 0) return; // the parity row: already the answer
    for (let r = 0; r < e; r++) {
      for (let c = 0; c < e; c++) {
        const j = rows[r];
        const i = missing[c];
        if (i + j >= 255) throw new SingularMatrixError();
        A[r * e + c] = COEF[(j << 8) | i];
      }
    }
    // Gauss–Jordan on [A | t]; the row operations on t are the only byte-sized work.
    for (let c = 0; c < e; c++) {
      let p = c;
      while (p < e && A[p * e + c] === 0) p++;
      if (p === e) throw new SingularMatrixError();
      if (p !== c) {
        for (let x = 0; x < e; x++) {
          const tmp = A[p * e + x];
          A[p * e + x] = A[c * e + x];
          A[c * e + x] = tmp;
        }
        const tb = t[p];
        t[p] = t[c];
        t[c] = tb;
      }
      const inv = gfInv(A[c * e + c]);
      if (inv !== 1) {
        for (let x = 0; x < e; x++) A[c * e + x] = gfMul(A[c * e + x], inv);
        mulInPlace(t[c], 0, len, inv);
      }
      for (let r = 0; r < e; r++) {
        const f = A[r * e + c];
        if (r === c || f === 0) continue;
        for (let x = 0; x < e; x++) A[r * e + x] ^= gfMul(f, A[c * e + x]);
        if (f === 1) addInto(t[r], 0, t[c], 0, len);
        else mulAddInto(t[r], 0, t[c], 0, len, f);
      }
    }
  },
};
