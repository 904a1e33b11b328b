// masque-bench: one entry point for every benchmark. Each benchmark lives in its own module and
// exports `main(argv): Promise<number>`; this file only dispatches, so a benchmark that is not built
// yet says so instead of breaking the others.
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

interface Benchmark {
  module: string;
  summary: string;
}

const here = dirname(fileURLToPath(import.meta.url));

// Paths are relative to the compiled bench/ folder in dist/.
const BENCHMARKS: Record<string, Benchmark> = {
  quic: {
    module: 'quic/main.js',
    summary: 'QUIC datagram throughput and CPU per datagram (--workers N --seconds S --json)',
  },
  control: {
    module: 'control/main.js',
    summary: 'control plane: Authorize/s and user add latency',
  },
  tunnel: {
    module: 'tunnel/main.js',
    summary: 'TCP/UDP throughput and RTT through our tunnel vs wireguard-go and OpenVPN',
  },
  loss: { module: 'loss/main.js', summary: 'FEC under random and bursty loss (impairment proxy)' },
  load: { module: 'load/main.js', summary: 'thousands of simulated clients: setup rate, RTT, RSS' },
  fuzz: {
    module: 'fuzz/main.js',
    summary: 'fuzz every protocol parser (--seconds S)',
  },
  fec: { module: '../dataplane/fec/bench.js', summary: 'FEC encoder/decoder MB/s per core' },
  ring: {
    module: '../dataplane/ring/bench.js',
    summary: 'packets/s through a SharedArrayBuffer ring',
  },
  impair: { module: 'impair/main.js', summary: 'run the UDP impairment proxy (not a benchmark)' },
  all: {
    module: 'all/main.js',
    summary: 'every benchmark with short durations, one markdown report (--quick --out FILE)',
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(BENCHMARKS).map((k) => k.length));
  const rows = Object.entries(BENCHMARKS).map(
    ([name, b]) => `  ${name.padEnd(width)}  ${b.summary}`,
  );
  return [
    'usage: masque-bench <benchmark> [options]   (masque-bench <benchmark> --help for its options)',
    '',
    'benchmarks:',
    ...rows,
    '',
  ].join('\n');
}

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const bench = BENCHMARKS[name];
  if (bench === undefined) {
    process.stderr.write(`masque-bench: unknown benchmark '${name}'\n\n${usage()}`);
    return 2;
  }
  const file = join(here, bench.module);
  if (!existsSync(file)) {
    process.stderr.write(`masque-bench: '${name}' is not implemented yet\n`);
    return 2;
  }
  const mod = (await import(pathToFileURL(file).href)) as {
    main?: (argv: string[]) => Promise<unknown>;
  };
  if (typeof mod.main !== 'function') {
    process.stderr.write(`masque-bench: '${name}' has no main()\n`);
    return 2;
  }
  // Some benchmarks (ring) resolve to their result instead of an exit code: that is success.
  const code = await mod.main(rest);
  return typeof code === 'number' ? code : 0;
}

process.exitCode = await run(process.argv.slice(2));
