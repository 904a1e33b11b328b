// What `masque-bench all` runs: every benchmark with short durations, each bounded in time. The
// arguments are the benchmarks' own flags (see each one's --help); --json wherever it exists, so
// the report is built from figures rather than scraped from tables.

export interface Step {
  /** The benchmark's name in `masque-bench <name>`. */
  name: string;
  args: string[];
  /** Wall-clock bound; the step is stopped (its process group) when it runs over. */
  timeoutS: number;
  /** Prints JSON on stdout with these args (else its text output goes into the report). */
  json: boolean;
  /** What the figures are compared against, when the benchmark has peers. */
  peers?: string;
}

export const QUICK_PLAN: readonly Step[] = [
  { name: 'quic', args: ['--seconds', '3', '--json'], timeoutS: 90, json: true },
  {
    name: 'control',
    args: ['--users', '50', '--bulk', '100', '--seconds', '3', '--json'],
    timeoutS: 120,
    json: true,
  },
  {
    name: 'tunnel',
    args: ['--quick', '--json'],
    timeoutS: 420,
    json: true,
    peers: 'wireguard-go and OpenVPN over the same namespaces',
  },
  {
    name: 'loss',
    args: ['--quick', '--json', '--chart', 'none'],
    timeoutS: 300,
    json: true,
    peers: 'FEC off (the same link without repair)',
  },
  {
    name: 'load',
    args: ['--scenario', 'steady', '--tunnels', '200', '--hold', '10', '--json'],
    timeoutS: 300,
    json: true,
  },
  { name: 'fuzz', args: ['--seconds', '2'], timeoutS: 120, json: false },
  { name: 'fec', args: ['--seconds', '1', '--json'], timeoutS: 60, json: true },
  { name: 'ring', args: ['--packets', '2000000'], timeoutS: 60, json: false },
];

/** The plan restricted by --only / --skip (names not in the plan are an error for the caller). */
export function selectSteps(
  plan: readonly Step[],
  only: readonly string[] | undefined,
  skip: readonly string[],
): Step[] | string {
  const known = new Set(plan.map((s) => s.name));
  for (const n of [...(only ?? []), ...skip]) {
    if (!known.has(n)) return `unknown benchmark '${n}' (known: ${[...known].join(', ')})`;
  }
  return plan.filter(
    (s) => (only === undefined || only.includes(s.name)) && !skip.includes(s.name),
  );
}
