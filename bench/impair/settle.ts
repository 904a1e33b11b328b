// Waiting for UDP traffic through the proxy to finish, for tests and benchmarks: on a loaded
// machine the proxy may still be draining its socket long after the sender stopped, so a fixed
// sleep undercounts. Progress is any number that grows while packets still move.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `progress()` has not changed for `quietMs` (giving up after `maxMs`). */
export async function settle(progress: () => number, quietMs = 300, maxMs = 10_000): Promise<void> {
  const step = 100;
  let last = progress();
  let still = 0;
  for (let waited = 0; still * step < quietMs && waited < maxMs; waited += step) {
    await sleep(step);
    const now = progress();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}
