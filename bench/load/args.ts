// Command line of `masque-bench load`, parsed without side effects so it is unit-tested.

export interface LoadOptions {
  /** Concurrent tunnels to ramp to. */
  tunnels: number;
  /** Tunnel setups started per second during the ramp (and in churn). */
  rate: number;
  /** Seconds to hold at N tunnels (or to churn). */
  hold: number;
  /** ICMP echo requests per second per tunnel; 0 = idle (QUIC keep-alives only). */
  pps: number;
  /** Open and close tunnels continuously for the hold time instead of holding them. */
  churn: boolean;
  /** Data plane worker threads (passed to `dataplane --workers`). */
  workers: number;
  /** Generator worker threads in the client namespace. */
  clientThreads: number;
  json: boolean;
  save: boolean;
}

export const MAX_TUNNELS = 20_000;
export const MAX_HOLD_S = 1_800;

export function usage(): string {
  return [
    'usage: masque-bench load [--tunnels N] [--rate R] [--hold S] [--pps P] [--churn]',
    '                         [--workers W] [--client-threads T] [--json] [--save]',
    `  --tunnels N         concurrent tunnels to ramp to, 1..${MAX_TUNNELS} (default 100)`,
    '  --rate R            tunnel setups per second, 1..5000 (default 100)',
    `  --hold S            seconds to hold (or churn) after the ramp, 1..${MAX_HOLD_S} (default 10)`,
    '  --pps P             ICMP echoes per second per tunnel, 0..1000; 0 = idle (default 1)',
    '  --churn             close and reopen tunnels continuously during the hold',
    '  --workers W         data plane workers, 1..64 (default 2)',
    '  --client-threads T  load generator worker threads, 1..32 (default 2)',
    '  --json              print the result as JSON instead of a table',
    '  --save              also write it to docs/benchmarks/load-<date>.json',
    'Needs root (network namespaces).',
    '',
  ].join('\n');
}

/** The options, or an error message for the user. `--help` yields the string 'help'. */
export function parseArgs(argv: readonly string[]): LoadOptions | string {
  const o: LoadOptions = {
    tunnels: 100,
    rate: 100,
    hold: 10,
    pps: 1,
    churn: false,
    workers: 2,
    clientThreads: 2,
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
        case '--tunnels':
          o.tunnels = int(a, argv[++i], 1, MAX_TUNNELS);
          break;
        case '--rate':
          o.rate = int(a, argv[++i], 1, 5000);
          break;
        case '--hold':
          o.hold = int(a, argv[++i], 1, MAX_HOLD_S);
          break;
        case '--pps':
          o.pps = int(a, argv[++i], 0, 1000);
          break;
        case '--workers':
          o.workers = int(a, argv[++i], 1, 64);
          break;
        case '--client-threads':
          o.clientThreads = int(a, argv[++i], 1, 32);
          break;
        case '--churn':
          o.churn = true;
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
  return o;
}

class ArgError extends Error {}
