// `masque-bench load`: control plane and data plane in a server namespace, a load generator of
// simulated clients (real MasqueTransport tunnels, no TUN) in a client namespace, devices
// provisioned through the control plane API for the run and removed after it. Reports setup rate
// and latency, echo RTT and delivery, errors by reason, and the data plane's RSS and CPU.
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ControlClient } from '../../controlplane/client.js';
import { isRoot, ROOT, Topology, type Proc } from '../../test/e2e/netns.js';
import { metric, scrape, startControlPlane, startDataplane } from '../../test/e2e/stack.js';
import { parseArgs, usage, type LoadOptions } from './args.js';
import { findProcess, sampleProcess, type ProcSample } from './procstat.js';
import { loadCharts } from './charts.js';
import {
  buildReport,
  formatTable,
  type LeakCheck,
  type LoadReport,
  type PhaseMarks,
} from './report.js';
import { mergeResults } from './generator.js';
import {
  addCounters,
  emptyCounters,
  type Counters,
  type DeviceJob,
  type GeneratorJob,
  type GeneratorLine,
  type ThreadResult,
} from './wire.js';

const ECHO_TARGET = '10.77.0.1';
const UDP_ECHO_PORT = 7;
/** The data plane's Prometheus endpoint, on the server namespace's loopback. */
const DATAPLANE_METRICS = '127.0.0.1:9391';
/** The data plane's QUIC idle timeout (30 s) and some slack. */
const DRAIN_WAIT_MS = 40_000;

function drained(g: LeakCheck['server']): boolean {
  return g !== undefined && Object.values(g).every((v) => v === undefined || v === 0);
}
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
      const base = join(dir, `load-${report.date.slice(0, 10)}-${report.options.scenario}`);
      writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
      const charts = loadCharts(report);
      writeFileSync(`${base}-setup.svg`, charts.setupLatency);
      writeFileSync(`${base}-rss.svg`, charts.rss);
      process.stderr.write(`wrote ${base}.json, ${base}-setup.svg, ${base}-rss.svg\n`);
    }
    const leaked = report.leaks !== undefined && !report.leaks.clean;
    return Object.keys(report.errors).length === 0 && !leaked ? 0 : 1;
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
  const dp = await guard(
    startDataplane(stack, o.workers, ['--metrics', DATAPLANE_METRICS]),
    signal,
  );
  const dpPid = findProcess(dp.child.pid ?? -1, 'dataplane.js');
  if (dpPid === undefined) throw new Error('cannot find the data plane process');
  const echo = topo.startCmd(topo.srv, [
    process.execPath,
    fileURLToPath(new URL('./udp-echo.js', import.meta.url)),
    ECHO_TARGET,
    String(UDP_ECHO_PORT),
  ]);
  await guard(echo.waitFor(/udp echo ready/, 10_000), signal);

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
    const idleFds = countFds(dpPid);
    const leasedBefore = await leased(control);
    const devices = await guard(provision(control, o.tunnels, users, signal), signal);
    // Each simulated client holds a UDP socket and a timer descriptor, and this container does
    // not let us raise the hard limit on descriptors: more clients means more generator processes.
    const perGenerator =
      o.perGenerator > 0
        ? o.perGenerator
        : Math.max(100, Math.min(4000, Math.floor((nofileHardLimit() - 512) / 3)));
    const groups = Math.ceil(devices.length / perGenerator);
    const script = fileURLToPath(new URL('./generator.js', import.meta.url));
    const gens: { proc: Proc; pid?: number }[] = [];
    for (let g = 0; g < groups; g++) {
      const first = Math.round((g * devices.length) / groups);
      const mine = devices.slice(first, Math.round(((g + 1) * devices.length) / groups));
      const share = mine.length / devices.length;
      const job: GeneratorJob = {
        devices: mine,
        echoTarget: ECHO_TARGET,
        udpPort: UDP_ECHO_PORT,
        scenario: o.scenario,
        rate: o.rate * share,
        maxPending: Math.max(1, Math.round(o.maxPending * share)),
        hold: o.hold,
        pps: o.pps,
        icmpPps: o.icmpPps,
        threads: Math.max(1, Math.ceil(o.clientThreads / groups)),
        firstIndex: first,
      };
      const jobFile = join(topo.dir, `load-job-${g}.json`);
      writeFileSync(jobFile, JSON.stringify(job));
      gens.push({
        proc: topo.startCmd(topo.cli, [
          'prlimit',
          `--nofile=${nofileHardLimit()}`,
          '--',
          process.execPath,
          script,
          jobFile,
        ]),
      });
    }
    // The ramp may run below the offered rate (maxPending): allow it 20 setups/s at worst.
    const bound = (o.tunnels / Math.min(o.rate, 20) + o.hold + 120) * 1000;
    for (const gen of gens) gen.pid = await findLater(gen.proc.child.pid ?? -1, 'generator.js');
    const cpPid = findProcess(stack.control.child.pid ?? -1, 'controlplane.js');
    const sampleOthers = () => {
      const t = Date.now() - t0;
      const g = gens.map((x) => (x.pid === undefined ? undefined : sampleProcess(x.pid, t, true)));
      return {
        generator: g.some((x) => x === undefined) ? undefined : combine(g as ProcSample[]),
        controlplane: cpPid === undefined ? undefined : sampleProcess(cpPid, t, true),
      };
    };
    const outcome = await guard(
      followAll(gens, o.hold, sample, sampleOthers, o.tunnels, bound),
      signal,
    );
    // Every tunnel is closed now. A close the server never heard (a CONNECTION_CLOSE lost when
    // thousands close at once) ends with its idle timeout (30 s): wait that out, then whatever the
    // server still holds is a leak.
    const closedAt = Date.now();
    let server = await dataplaneGauges(topo);
    while (!drained(server) && Date.now() - closedAt < DRAIN_WAIT_MS) {
      await guard(sleep(1000), signal);
      server = await dataplaneGauges(topo);
    }
    const drainedAfterS = drained(server) ? Math.round((Date.now() - closedAt) / 100) / 10 : null;
    const afterDrain = sample();
    const afterFds = countFds(dpPid);
    await deprovision(control, users);
    users.length = 0;
    const leasedAfter = await leased(control);
    const leaks = leakCheck({
      server,
      drainedAfterS,
      fds: [idleFds, afterFds],
      leased: [leasedBefore, leasedAfter],
      rssKb: [idle?.rssKb, afterDrain?.rssKb],
    });
    return buildReport({
      options: o,
      command: `npx masque-bench load ${argv.join(' ')}`.trim(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', loadavg: loadavg() },
      result: outcome.result,
      idle,
      marks: outcome.marks,
      openAtHoldEnd: outcome.openAtHoldEnd,
      samples,
      leaks,
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
  // Removing a user is a durable write (an fsync): allow 50 ms each on top of a minute.
  const deadline = Date.now() + 60_000 + users.length * 50;
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

function countFds(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/** IPv4 addresses leased from the control plane's pool. */
async function leased(control: ControlClient): Promise<number | undefined> {
  try {
    const res = await control.pool.showPools({});
    const v4 = res.pools.find((p) => p.family === 4);
    return v4 === undefined ? undefined : Number(v4.allocated);
  } catch {
    return undefined;
  }
}

/** What the data plane still holds, from its /metrics (sums over workers). */
async function dataplaneGauges(topo: Topology): Promise<LeakCheck['server']> {
  let text: string;
  try {
    text = await scrape(topo, topo.srv, DATAPLANE_METRICS);
  } catch {
    return undefined;
  }
  const sum = (name: string): number | undefined => {
    let total: number | undefined;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) total = (total ?? 0) + v;
    }
    return total;
  };
  return {
    activeConnections: metric(text, 'masque_vpn_active_connections'),
    workerSessions: sum('masque_vpn_worker_sessions'),
    quicConnections: sum('masque_vpn_worker_quic_connections'),
    ringDepth: sum('masque_vpn_ring_depth'),
  };
}

/** After every tunnel closed and every device was removed: the server is back where it started. */
export function leakCheck(input: {
  server: LeakCheck['server'];
  drainedAfterS?: number | null;
  fds: [number | undefined, number | undefined];
  leased: [number | undefined, number | undefined];
  rssKb: [number | undefined, number | undefined];
}): LeakCheck {
  const s = input.server;
  const problems: string[] = [];
  if (s === undefined) problems.push('data plane metrics unreadable');
  else {
    for (const [k, v] of Object.entries(s)) {
      if (v !== undefined && v !== 0) problems.push(`${k} ${v} after every tunnel closed`);
    }
  }
  const [fd0, fd1] = input.fds;
  // A few descriptors come and go with the control link and metrics scrapes.
  if (fd0 !== undefined && fd1 !== undefined && fd1 > fd0 + 8) {
    problems.push(`data plane file descriptors ${fd0} → ${fd1}`);
  }
  const [l0, l1] = input.leased;
  if (l0 !== undefined && l1 !== undefined && l1 !== l0) {
    problems.push(`pool leases ${l0} → ${l1} after the devices were removed`);
  }
  return {
    server: s,
    drainedAfterS: input.drainedAfterS ?? null,
    fds: { idle: fd0 ?? null, afterDrain: fd1 ?? null },
    leased: { before: l0 ?? null, after: l1 ?? null },
    rssKb: { idle: input.rssKb[0] ?? null, afterDrain: input.rssKb[1] ?? null },
    clean: problems.length === 0,
    problems,
  };
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

/** Several processes' samples as one (their threads have distinct ids). */
export function combine(samples: readonly ProcSample[]): ProcSample {
  const threads: Record<string, number> = {};
  for (const s of samples) Object.assign(threads, s.threads ?? {});
  return {
    t: Math.max(...samples.map((s) => s.t)),
    rssKb: samples.reduce((a, s) => a + s.rssKb, 0),
    cpuTicks: samples.reduce((a, s) => a + s.cpuTicks, 0),
    threads,
  };
}

/** The hard limit on open files (what prlimit may raise the soft limit to without privilege). */
function nofileHardLimit(): number {
  try {
    const m = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m === null ? 4096 : Number(m[1]);
  } catch {
    return 4096;
  }
}

/**
 * Reads every generator's lines, shows progress, starts the hold when all of them are ramped and
 * ends it after `holdS`, sampling the processes at each phase change.
 */
function followAll(
  gens: readonly { proc: Proc; pid?: number }[],
  holdS: number,
  sample: (perThread?: boolean) => ProcSample | undefined,
  sampleOthers: () => { generator?: ProcSample; controlplane?: ProcSample },
  target: number,
  boundMs: number,
): Promise<Outcome> {
  return new Promise<Outcome>((ok, fail) => {
    let phase = 'ramp';
    const latest: Counters[] = gens.map(() => emptyCounters());
    const results: (ThreadResult | undefined)[] = gens.map(() => undefined);
    const marks: PhaseMarks = { ramp: { dataplane: sample(true), ...sampleOthers() } };
    let ramped = 0;
    let openAtHoldEnd = 0;
    let settled = false;
    const total = (): Counters => {
      const c = emptyCounters();
      for (const x of latest) addCounters(c, x);
      return c;
    };
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== undefined) fail(err);
      else ok({ result: mergeResults(results as ThreadResult[]), marks, openAtHoldEnd });
    };
    const timer = setTimeout(
      () => finish(new Error(`the load generator did not finish within ${boundMs / 1000} s`)),
      boundMs,
    );
    const signalAll = (sig: NodeJS.Signals) => {
      for (const g of gens) if (g.pid !== undefined) process.kill(g.pid, sig);
    };
    const startHold = () => {
      phase = 'hold';
      marks.hold = { dataplane: sample(true), ...sampleOthers() };
      signalAll('SIGUSR1');
      setTimeout(() => {
        phase = 'drain';
        openAtHoldEnd = total().open;
        marks.drain = { dataplane: sample(true), ...sampleOthers() };
        signalAll('SIGUSR2');
      }, holdS * 1000);
    };
    gens.forEach((gen, i) => {
      const lines = createInterface({ input: gen.proc.child.stdout as NodeJS.ReadableStream });
      lines.on('line', (text) => {
        let line: GeneratorLine;
        try {
          line = JSON.parse(text) as GeneratorLine;
        } catch {
          return; // not ours (a library warning)
        }
        if (line.kind === 'progress') {
          latest[i] = line.counters;
          if (i !== 0) return;
          const c = total();
          const s = sample();
          const errors = Object.values(c.errors).reduce((a, b) => a + b, 0);
          process.stderr.write(
            `\r${phase.padEnd(5)} open ${c.open}/${target} ready ${c.ready}` +
              ` icmp ${c.echoesReceived}/${c.echoesSent}` +
              ` udp ${c.udpReceived}/${c.udpSent} errors ${errors}` +
              ` dataplane RSS ${s === undefined ? '?' : (s.rssKb / 1024).toFixed(1)} MB   `,
          );
        } else if (line.kind === 'phase') {
          if (line.phase === 'ramped' && ++ramped === gens.length) startHold();
        } else if (line.kind === 'fatal') {
          finish(new Error(`load generator ${i}: ${line.message}`));
        } else if (line.kind === 'result') {
          results[i] = line.result;
          if (results.every((r) => r !== undefined)) finish();
        }
      });
      gen.proc.child.once('exit', (code) => {
        // A result line already settled this generator; otherwise this is a failure.
        setTimeout(() => {
          if (results[i] === undefined) {
            finish(
              new Error(`load generator ${i} exited (${code}):\n${gen.proc.output().slice(-2000)}`),
            );
          }
        }, 100);
      });
    });
  });
}
