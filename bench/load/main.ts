// `masque-bench load`: control plane and data plane in a server namespace, a load generator of
// simulated clients (real MasqueTransport tunnels, no TUN) in a client namespace, devices
// provisioned through the control plane API for the run and removed after it. Reports setup rate
// and latency, echo RTT and delivery, errors by reason, and the data plane's RSS and CPU.
import { writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../controlplane/client.js';
import { isRoot, ROOT, Topology, type Proc } from '../../test/e2e/netns.js';
import { startControlPlane, startDataplane } from '../../test/e2e/stack.js';
import { parseArgs, usage, type LoadOptions } from './args.js';
import { findProcess, sampleProcess, type ProcSample } from './procstat.js';
import { buildReport, formatTable, type LoadReport, type PhaseMarks } from './report.js';
import {
  emptyCounters,
  type Counters,
  type DeviceJob,
  type GeneratorJob,
  type GeneratorLine,
  type ThreadResult,
} from './wire.js';

const ECHO_TARGET = '10.77.0.1';
const PROVISION_CONCURRENCY = 16;

class Aborted extends Error {}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (o === 'help') {
    process.stdout.write(usage());
    return 0;
  }
  if (typeof o === 'string') {
    process.stderr.write(`masque-bench load: ${o}\n\n${usage()}`);
    return 2;
  }
  if (!isRoot()) {
    process.stderr.write('masque-bench load: needs root (network namespaces)\n');
    return 2;
  }
  const abort = new AbortController();
  const onSignal = () => {
    process.stderr.write('\nmasque-bench load: interrupted, cleaning up\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let topo: Topology | undefined;
  try {
    topo = await Topology.create('mqld');
    const report = await run(o, topo, argv, abort.signal);
    process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : formatTable(report));
    if (o.save) {
      const dir = join(ROOT, 'docs', 'benchmarks');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `load-${report.date.slice(0, 10)}.json`);
      writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
      process.stderr.write(`wrote ${file}\n`);
    }
    return Object.keys(report.errors).length === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof Aborted) return 130;
    process.stderr.write(`masque-bench load: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await topo?.destroy();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Rejects with Aborted as soon as `signal` fires. */
function guard<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Aborted());
  return new Promise<T>((ok, fail) => {
    const onAbort = () => fail(new Aborted());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(ok, fail).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(
  o: LoadOptions,
  topo: Topology,
  argv: readonly string[],
  signal: AbortSignal,
): Promise<LoadReport> {
  const stack = await guard(startControlPlane(topo), signal);
  const dp = await guard(startDataplane(stack, o.workers), signal);
  const dpPid = findProcess(dp.child.pid ?? -1, 'dataplane.js');
  if (dpPid === undefined) throw new Error('cannot find the data plane process');

  const t0 = Date.now();
  const samples: ProcSample[] = [];
  const sample = (perThread = false): ProcSample | undefined => {
    const s = sampleProcess(dpPid, Date.now() - t0, perThread);
    if (s !== undefined) samples.push(s);
    return s;
  };
  const sampler = setInterval(() => sample(), 1000);
  const control = new ControlClient({ address: `unix:${stack.socket}` });
  const users: string[] = [];
  try {
    await guard(sleep(1000), signal);
    const idle = sample();
    const devices = await guard(provision(control, o.tunnels, users, signal), signal);
    const jobFile = join(topo.dir, 'load-job.json');
    const job: GeneratorJob = {
      devices,
      echoTarget: ECHO_TARGET,
      rate: o.rate,
      hold: o.hold,
      pps: o.pps,
      churn: o.churn,
      threads: o.clientThreads,
    };
    writeFileSync(jobFile, JSON.stringify(job));
    const script = fileURLToPath(new URL('./generator.js', import.meta.url));
    // One UDP socket per tunnel plus the addon's own descriptors.
    const nofile = Math.max(4096, o.tunnels * 4 + 1024);
    const gen = topo.startCmd(topo.cli, [
      'prlimit',
      `--nofile=${nofile}`,
      '--',
      process.execPath,
      script,
      jobFile,
    ]);
    const bound = (o.tunnels / o.rate + o.hold + 120) * 1000;
    const genPid = await findLater(gen.child.pid ?? -1, 'generator.js');
    const cpPid = findProcess(stack.control.child.pid ?? -1, 'controlplane.js');
    const sampleOthers = () => ({
      generator: genPid === undefined ? undefined : sampleProcess(genPid, Date.now() - t0, true),
      controlplane: cpPid === undefined ? undefined : sampleProcess(cpPid, Date.now() - t0, true),
    });
    const outcome = await guard(follow(gen, sample, sampleOthers, o.tunnels, bound), signal);
    return buildReport({
      options: o,
      command: `npx masque-bench load ${argv.join(' ')}`.trim(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', loadavg: loadavg() },
      result: outcome.result,
      idle,
      marks: outcome.marks,
      openAtHoldEnd: outcome.openAtHoldEnd,
      samples,
    });
  } finally {
    clearInterval(sampler);
    process.stderr.write('\n');
    await deprovision(control, users);
    control.close();
  }
}

/** One user with one device per simulated client, added through the control plane API. */
async function provision(
  control: ControlClient,
  count: number,
  users: string[],
  signal: AbortSignal,
): Promise<DeviceJob[]> {
  const devices: DeviceJob[] = new Array<DeviceJob>(count);
  let next = 0;
  const started = Date.now();
  const worker = async () => {
    while (next < count && !signal.aborted) {
      const i = next++;
      const name = `load${i}`;
      const res = await control.users.addUser({ name, deviceName: 'sim', bundle: true });
      users.push(name);
      const b = res.bundle;
      if (b === undefined || b.toml === '' || b.ipv4 === '') {
        throw new Error(`AddUser ${name}: no bundle or no IPv4 address in the answer`);
      }
      devices[i] = { toml: b.toml, ipv4: b.ipv4 };
      if (users.length % 50 === 0 || users.length === count) {
        process.stderr.write(`\rprovisioned ${users.length}/${count} devices`);
      }
    }
  };
  await Promise.all(Array.from({ length: PROVISION_CONCURRENCY }, worker));
  process.stderr.write(` in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return devices;
}

async function deprovision(control: ControlClient, users: readonly string[]): Promise<void> {
  let next = 0;
  let failed = 0;
  const deadline = Date.now() + 60_000;
  const worker = async () => {
    while (next < users.length && Date.now() < deadline) {
      const name = users[next++];
      try {
        await control.users.removeUser({ name });
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: PROVISION_CONCURRENCY }, worker));
  const left = users.length - next + failed;
  if (left > 0) process.stderr.write(`${left} provisioned users were not removed\n`);
}

interface Outcome {
  result: ThreadResult;
  marks: PhaseMarks;
  openAtHoldEnd: number;
}

/** The generator execs through `ip netns exec` and prlimit: wait for node to appear. */
async function findLater(pid: number, script: string): Promise<number | undefined> {
  for (let i = 0; i < 50; i++) {
    const p = findProcess(pid, script);
    if (p !== undefined) return p;
    await sleep(20);
  }
  return undefined;
}

/** Reads the generator's lines, shows progress, samples the data plane at phase changes. */
function follow(
  gen: Proc,
  sample: (perThread?: boolean) => ProcSample | undefined,
  sampleOthers: () => { generator?: ProcSample; controlplane?: ProcSample },
  target: number,
  boundMs: number,
): Promise<Outcome> {
  return new Promise<Outcome>((ok, fail) => {
    let phase = 'ramp';
    let counters: Counters = emptyCounters();
    const marks: PhaseMarks = {};
    let openAtHoldEnd = 0;
    const timer = setTimeout(() => {
      fail(new Error(`the load generator did not finish within ${boundMs / 1000} s`));
    }, boundMs);
    const lines = createInterface({ input: gen.child.stdout as NodeJS.ReadableStream });
    lines.on('line', (text) => {
      let line: GeneratorLine;
      try {
        line = JSON.parse(text) as GeneratorLine;
      } catch {
        return; // not ours (a library warning)
      }
      if (line.kind === 'progress') {
        counters = line.counters;
        const s = sample();
        const errors = Object.values(counters.errors).reduce((a, b) => a + b, 0);
        process.stderr.write(
          `\r${phase.padEnd(5)} open ${counters.open}/${target} ready ${counters.ready}` +
            ` echoes ${counters.echoesReceived}/${counters.echoesSent} errors ${errors}` +
            ` dataplane RSS ${s === undefined ? '?' : (s.rssKb / 1024).toFixed(1)} MB   `,
        );
      } else if (line.kind === 'phase') {
        phase = line.phase;
        marks[line.phase] = { dataplane: sample(true), ...sampleOthers() };
        if (line.phase === 'drain') openAtHoldEnd = counters.open;
      } else if (line.kind === 'fatal') {
        clearTimeout(timer);
        fail(new Error(`load generator: ${line.message}`));
      } else {
        clearTimeout(timer);
        ok({ result: line.result, marks, openAtHoldEnd });
      }
    });
    gen.child.once('exit', (code) => {
      clearTimeout(timer);
      // A result line already resolved the promise; otherwise this is a failure.
      setTimeout(
        () => fail(new Error(`load generator exited (${code}):\n${gen.output().slice(-2000)}`)),
        100,
      );
    });
  });
}
