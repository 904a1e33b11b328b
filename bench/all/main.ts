// `masque-bench all [--quick] [--out FILE] [--only a,b] [--skip a,b]`: every benchmark in turn,
// each as its own `masque-bench <name>` process (its own namespaces, removed on any exit) under a
// time bound, their JSON collected into one docs/benchmarks.md-style report, written to --out and
// printed on stdout.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderReport, type Machine, type StepResult } from './markdown.js';
import { QUICK_PLAN, selectSteps, type Step } from './plan.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = join(ROOT, 'bin', 'masque-bench.js');
/** After SIGTERM, a benchmark gets this long to remove its namespaces before SIGKILL. */
const GRACE_MS = 15_000;

export interface AllOptions {
  quick: boolean;
  out: string | undefined;
  only: string[] | undefined;
  skip: string[];
}

export function usage(): string {
  return [
    'usage: masque-bench all [--quick] [--out FILE] [--only a,b] [--skip a,b]',
    '  --quick       short durations for every benchmark (the only mode so far; on by default)',
    '  --out FILE    where to write the report (default docs/benchmarks/report-<date>.md)',
    `  --only LIST   run only these (${QUICK_PLAN.map((s) => s.name).join(',')})`,
    '  --skip LIST   run all but these',
    'Each benchmark runs as `masque-bench <name> ...` under a time bound; the report is also',
    'printed on stdout. Most benchmarks need root (network namespaces).',
    '',
  ].join('\n');
}

export function parseAllArgs(argv: readonly string[]): AllOptions | string {
  const o: AllOptions = { quick: true, out: undefined, only: undefined, skip: [] };
  const list = (v: string | undefined) => (v ?? '').split(',').filter((x) => x !== '');
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--out') {
      const v = argv[++i];
      if (v === undefined || v === '') return '--out needs a file name';
      o.out = v;
    } else if (a === '--only') o.only = list(argv[++i]);
    else if (a === '--skip') o.skip = list(argv[++i]);
    else if (a === '--help' || a === '-h') return 'help';
    else return `unknown option '${a}'`;
  }
  return o;
}

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5_000 }).trim();
  } catch {
    return '?';
  }
}

function machine(date: string, uptimeBefore: string): Machine {
  return {
    date,
    kernel: run('uname', ['-r']),
    cores: cpus().length,
    model: cpus()[0]?.model ?? '?',
    node: process.version,
    uptimeBefore,
    uptimeAfter: run('uptime', []),
  };
}

/** stdout as JSON: the whole of it, else from its first line that opens an object or array. */
export function parseJsonOutput(stdout: string): unknown {
  const text = stdout.trim();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    const start = text.search(/^[[{]/m);
    if (start <= 0) return undefined;
    try {
      return JSON.parse(text.slice(start)) as unknown;
    } catch {
      return undefined;
    }
  }
}

/** One benchmark in its own process group, so a timeout stops it and everything it started. */
function runStep(step: Step, signal: AbortSignal): Promise<StepResult> {
  const command = `npx masque-bench ${step.name} ${step.args.join(' ')}`.trim();
  const started = Date.now();
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, step.name, ...step.args], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (stderr.length > 1 << 20) stderr = stderr.slice(-(64 << 10));
    });
    let timedOut = false;
    const stop = () => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
      setTimeout(() => {
        try {
          if (child.pid !== undefined && child.exitCode === null)
            process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }, GRACE_MS).unref();
    };
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, step.timeoutS * 1000);
    signal.addEventListener('abort', stop, { once: true });
    child.on('close', (code) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
      const json = step.json ? parseJsonOutput(stdout) : undefined;
      done({
        step,
        command,
        exitCode: code,
        timedOut,
        seconds: (Date.now() - started) / 1000,
        ...(json === undefined ? {} : { json }),
        text: json === undefined ? stdout : '',
        stderrTail: stderr.split('\n').slice(-15).join('\n').replace(/\r/g, '\n').slice(-3000),
      });
    });
  });
}

export async function main(argv: string[]): Promise<number> {
  const o = parseAllArgs(argv);
  if (o === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (typeof o === 'string') {
    process.stderr.write(`masque-bench all: ${o}\n\n${usage()}`);
    return 2;
  }
  const steps = selectSteps(QUICK_PLAN, o.only, o.skip);
  if (typeof steps === 'string') {
    process.stderr.write(`masque-bench all: ${steps}\n`);
    return 2;
  }
  const date = new Date().toISOString();
  const out = o.out ?? join(ROOT, 'docs', 'benchmarks', `report-${date.slice(0, 10)}.md`);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const uptimeBefore = run('uptime', []);
  const results: StepResult[] = [];
  try {
    for (const [i, step] of steps.entries()) {
      if (abort.signal.aborted) break;
      process.stderr.write(
        `[${i + 1}/${steps.length}] ${step.name} (at most ${step.timeoutS} s) ... `,
      );
      const r = await runStep(step, abort.signal);
      results.push(r);
      process.stderr.write(
        `${r.timedOut ? 'stopped at its time bound' : r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`} in ${Math.round(r.seconds)} s\n`,
      );
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const report = renderReport({
    command: `npx masque-bench all ${argv.join(' ')}`.trim(),
    machine: machine(date, uptimeBefore),
    results,
  });
  mkdirSync(dirname(resolve(out)), { recursive: true });
  writeFileSync(out, report);
  process.stdout.write(report);
  process.stderr.write(`wrote ${out}\n`);
  if (abort.signal.aborted) return 130;
  return results.every((r) => r.exitCode === 0 && !r.timedOut) ? 0 : 1;
}
