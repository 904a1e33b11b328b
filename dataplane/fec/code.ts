// The contract every erasure code of this package meets. A code is systematic: data packets travel
// as they are and repair symbol j of a block is Σ_i coefficient(j, i) · symbol_i over GF(2^8). The
// coefficient of a data index never depends on the block's final k, so the sender can fold each
// packet into the repair accumulators the moment it arrives, and a block cut short by the flush
// timer stays decodable.

export type FecScheme = 'xor' | 'rs';

export interface ErasureCode {
  readonly scheme: FecScheme;
  /** Largest number of repair symbols per block. */
  readonly maxRepair: number;
  /** The generator coefficient of data index `i` in repair row `j` (0 ≤ i, j; i + j < 255). */
  coefficient(j: number, i: number): number;
  /**
   * Erasure solve. On entry `t[r]` holds repair row `rows[r]` with the contribution of every data
   * symbol that did arrive already subtracted, over `len` bytes; `missing` lists the lost data
   * indices (as many as rows). On return `t[r]` holds the data symbol of `missing[r]`. The solver
   * may permute the entries of `t` (never the bytes' owners); callers read `t` again afterwards.
   */
  solve(rows: readonly number[], missing: readonly number[], t: Uint8Array[], len: number): void;
}
