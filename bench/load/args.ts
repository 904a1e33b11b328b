// Command line of `masque-bench load`, parsed without side effects so it is unit-tested.

/**
 * What happens after the ramp to N tunnels:
 * - hold: the tunnels stay up, idle (QUIC keep-alives only) unless --pps/--icmp-pps say otherwise;
 * - steady: every tunnel sends UDP echoes at --pps (and ICMP echoes at --icmp-pps);
 * - churn: tunnels are closed and reopened continuously at --rate; leak checks follow;
 * - mix: a quarter of the tunnels churn, a quarter stay idle, half send traffic at --pps.
 */
export type Scenario = 'hold' | 'steady' | 'churn' | 'mix';
export const SCENARIOS: readonly Scenario[] = ['hold', 'steady', 'churn', 'mix'];

/** What one simulated client does after its setup. */
export type Role = 'traffic' | 'idle' | 'churn';

/** The role of client `index` in a scenario (mix: 1/4 churn, 1/4 idle, 1/2 traffic). */
export function roleOf(scenario: Scenario, index: number): Role {
  if (scenario === 'churn') return 'churn';
  if (scenario !== 'mix') return 'traffic';
  return index % 4 === 0 ? 'churn' : index % 4 === 1 ? 'idle' : 'traffic';
}

export interface LoadOptions {
  scenario: Scenario;
  /** Concurrent tunnels to ramp to. */
  tunnels: number;
  /** Tunnel setups started per second during the ramp (and in churn): a ceiling, see maxPending. */
  rate: number;
  /** Setups in flight at most (all threads together): the ramp slows to what the server sustains. */
  maxPending: number;
  /** Seconds to hold (or churn) after the ramp. */
  hold: number;
  /** UDP echoes per second per (active) tunnel. */
  pps: number;
  /** ICMP echoes per second per (active) tunnel. */
  icmpPps: number;
  /** Data plane worker threads (passed to `dataplane --workers`). */
  workers: number;
  /** Generator worker threads in the client namespace (spread over the generator processes). */
  clientThreads: number;
  /** Most tunnels per generator process; 0 = from the descriptor limit (at most 4000). */
  perGenerator: number;
  json: boolean;
  /** Also write the JSON and the SVG charts under docs/benchmarks/. */
  save: boolean;
}

export const MAX_TUNNELS = 20_000;
export const MAX_HOLD_S = 1_800;

/** Traffic defaults per scenario: idle where the target is about idle tunnels. */
const DEFAULT_RATES: Record<Scenario, { pps: number; icmpPps: number }> = {
  hold: { pps: 0, icmpPps: 0 },
  steady: { pps: 10, icmpPps: 1 },
  churn: { pps: 0, icmpPps: 0 },
  mix: { pps: 10, icmpPps: 1 },
};

export function usage(): string {
  return [
    'usage: masque-bench load [--scenario hold|steady|churn|mix] [--tunnels N] [--rate R]',
    '                         [--max-pending K] [--hold S] [--pps P] [--icmp-pps Q]',
    '                         [--workers W] [--client-threads T] [--json] [--save]',
    '  --scenario S        after the ramp: hold (idle), steady (traffic), churn (close/reopen,',
    '                      then leak checks), mix (1/4 churn, 1/4 idle, 1/2 traffic); default hold',
    '  --churn             same as --scenario churn',
    `  --tunnels N         concurrent tunnels to ramp to, 1..${MAX_TUNNELS} (default 100)`,
    '  --rate R            tunnel setups started per second, 1..5000 (default 100)',
    '  --max-pending K     setups in flight at most, 1..5000 (default 64): the ramp slows to',
    '                      what the server sustains instead of queueing into timeouts',
    `  --hold S            seconds to hold (or churn) after the ramp, 1..${MAX_HOLD_S} (default 10)`,
    '  --seconds S         same as --hold',
    '  --pps P             UDP echoes per second per active tunnel, 0..1000',
    '                      (default 10 for steady and mix, else 0)',
    '  --icmp-pps Q        ICMP echoes per second per active tunnel, 0..1000',
    '                      (default 1 for steady and mix, else 0)',
    '  --workers W         data plane workers, 1..64 (default 2)',
    '  --client-threads T  load generator worker threads, 1..32 (default 2)',
    '  --per-generator G   most tunnels per generator process, 0..20000 (default 0: from the',
    '                      open-files limit, at most 4000; each tunnel holds two descriptors)',
    '  --json              print the result as JSON instead of a table',
    '  --save              also write docs/benchmarks/load-<date>-<scenario>.json and the',
    '                      setup latency and RSS charts (.svg) next to it',
    'Needs root (network namespaces).',
    '',
  ].join('\n');
}

/** The options, or an error message for the user. `--help` yields the string 'help'. */
export function parseArgs(argv: readonly string[]): LoadOptions | string {
  const o: Omit<LoadOptions, 'pps' | 'icmpPps'> & { pps?: number; icmpPps?: number } = {
    scenario: 'hold',
    tunnels: 100,
    rate: 100,
    maxPending: 64,
    hold: 10,
    workers: 2,
    clientThreads: 2,
    perGenerator: 0,
    json: false,
    save: false,
  };
  const int = (flag: string, text: string | undefined, min: number, max: number): number => {
    if (text === undefined) throw new ArgError(`${flag} needs a value`);
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < min || n > max) {
      throw new ArgError(`${flag} must be an integer ${min}..${max} (got '${text}')`);
    }
    return n;
  };
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      switch (a) {
        case '--scenario': {
          const s = argv[++i];
          if (!SCENARIOS.includes(s as Scenario)) {
            throw new ArgError(`--scenario must be one of ${SCENARIOS.join(', ')} (got '${s}')`);
          }
          o.scenario = s as Scenario;
          break;
        }
        case '--churn':
          o.scenario = 'churn';
          break;
        case '--tunnels':
          o.tunnels = int(a, argv[++i], 1, MAX_TUNNELS);
          break;
        case '--rate':
          o.rate = int(a, argv[++i], 1, 5000);
          break;
        case '--max-pending':
          o.maxPending = int(a, argv[++i], 1, 5000);
          break;
        case '--hold':
        case '--seconds':
          o.hold = int(a, argv[++i], 1, MAX_HOLD_S);
          break;
        case '--pps':
          o.pps = int(a, argv[++i], 0, 1000);
          break;
        case '--icmp-pps':
          o.icmpPps = int(a, argv[++i], 0, 1000);
          break;
        case '--workers':
          o.workers = int(a, argv[++i], 1, 64);
          break;
        case '--client-threads':
          o.clientThreads = int(a, argv[++i], 1, 32);
          break;
        case '--per-generator':
          o.perGenerator = int(a, argv[++i], 0, MAX_TUNNELS);
          break;
        case '--json':
          o.json = true;
          break;
        case '--save':
          o.save = true;
          break;
        case '--help':
        case '-h':
          return 'help';
        default:
          return `unknown option '${a}'`;
      }
    }
  } catch (err) {
    if (err instanceof ArgError) return err.message;
    throw err;
  }
  const d = DEFAULT_RATES[o.scenario];
  return { ...o, pps: o.pps ?? d.pps, icmpPps: o.icmpPps ?? d.icmpPps };
}

class ArgError extends Error {}
