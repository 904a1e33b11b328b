// `masque-bench fuzz`: runs the fuzz targets for a bounded time and prints inputs/s per target.
// Exit status 1 when any target failed.

import { h3FuzzTargets, runFuzz, type FuzzTarget } from './fuzz.js';

function flag(argv: string[], name: string): number | undefined {
  const i = argv.indexOf(name);
  if (i < 0 || i + 1 >= argv.length) return undefined;
  const v = Number(argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
  return v;
}

/** `argv`: `--seconds S` (default 10), `--iterations N`, `--seed N`. Returns the exit code. */
export function main(argv: string[], extraTargets: FuzzTarget[] = []): number {
  const iterations = flag(argv, '--iterations');
  const seconds = flag(argv, '--seconds') ?? (iterations === undefined ? 10 : undefined);
  const seed = flag(argv, '--seed') ?? Date.now() % 2 ** 32;
  const targets = [...h3FuzzTargets(), ...extraTargets];
  console.log(`fuzzing ${targets.length} targets, seed ${seed}`);
  const reports = runFuzz(targets, { seconds, iterations, seed });
  let failed = 0;
  for (const r of reports) {
    console.log(
      `${r.target.padEnd(28)} ${String(r.inputs).padStart(10)} inputs ` +
        `${Math.round(r.inputsPerSecond).toString().padStart(8)}/s  ` +
        `typed errors ${r.expectedErrors}  slowest ${r.slowestMs.toFixed(1)} ms  ` +
        `failures ${r.failures.length}`,
    );
    for (const f of r.failures) {
      failed++;
      console.log(`  FAIL ${f.reason.split('\n')[0]}\n    input ${f.input}`);
    }
  }
  return failed === 0 ? 0 : 1;
}
