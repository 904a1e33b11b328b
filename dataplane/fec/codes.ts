// Scheme name → erasure code.
import type { ErasureCode, FecScheme } from './code.js';
import { reedSolomonCode } from './reed-solomon.js';
import { xorCode } from './xor.js';

export function codeFor(scheme: FecScheme): ErasureCode {
  return scheme === 'xor' ? xorCode : reedSolomonCode;
}
