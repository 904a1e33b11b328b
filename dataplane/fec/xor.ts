// XOR parity: one repair symbol per block, the sum of the block's symbols. It is the m = 1 case of
// the Reed–Solomon code in this package (whose first repair row is all ones), so both schemes share
// the engine; this module only skips the matrix work a single row never needs.
import type { ErasureCode } from './code.js';

export const xorCode: ErasureCode = {
  scheme: 'xor',
  maxRepair: 1,
  coefficient(): number {
    return 1;
  },
  solve(rows: readonly number[], missing: readonly number[]): void {
    // With one row and one unknown, repair minus the known symbols already is the lost symbol.
    if (rows.length !== 1 || missing.length !== 1 || rows[0] !== 0) {
      throw new RangeError('XOR parity recovers exactly one symbol from repair row 0');
    }
  },
};
