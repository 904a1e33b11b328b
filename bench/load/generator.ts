// The load generator process, started by the benchmark inside the client namespace:
//   node generator.js JOB.json
// It spreads the devices over worker threads, tells them when to hold and when to stop, and writes
// one JSON line per event on stdout (progress every second, phase changes, the merged result).
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { LatencyHistogram } from './histogram.js';
import {
  addCounters,
  emptyCounters,
  type Counters,
  type FromThread,
  type GeneratorJob,
  type GeneratorLine,
  type ThreadJob,
  type ThreadResult,
} from './wire.js';

function emit(line: GeneratorLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Devices split into `threads` contiguous shares, as even as possible. */
export function shares<T>(items: readonly T[], threads: number): { first: number; items: T[] }[] {
  const out: { first: number; items: T[] }[] = [];
  const n = Math.max(1, Math.min(threads, items.length));
  let first = 0;
  for (let t = 0; t < n; t++) {
    const size = Math.floor(items.length / n) + (t < items.length % n ? 1 : 0);
    out.push({ first, items: items.slice(first, first + size) });
    first += size;
  }
  return out;
}

export function mergeResults(results: readonly ThreadResult[]): ThreadResult {
  const c = emptyCounters();
  const connect = new LatencyHistogram();
  const setup = new LatencyHistogram();
  const rtt = new LatencyHistogram();
  const udpRtt = new LatencyHistogram();
  const setupTimeline: number[] = [];
  let first = Infinity;
  let last = 0;
  let rampReady = 0;
  for (const r of results) {
    addCounters(c, r);
    connect.merge(LatencyHistogram.fromWire(r.connect));
    setup.merge(LatencyHistogram.fromWire(r.setup));
    rtt.merge(LatencyHistogram.fromWire(r.rtt));
    udpRtt.merge(LatencyHistogram.fromWire(r.udpRtt));
    for (const v of r.setupTimeline) setupTimeline.push(v);
    first = Math.min(first, r.rampFirstStartMs);
    last = Math.max(last, r.rampLastReadyMs);
    rampReady += r.rampReady;
  }
  return {
    ...c,
    connect: connect.toWire(),
    setup: setup.toWire(),
    rtt: rtt.toWire(),
    udpRtt: udpRtt.toWire(),
    setupTimeline,
    rampFirstStartMs: first,
    rampLastReadyMs: last,
    rampReady,
  };
}

async function run(
  jobPath: string,
  holdSignal: Promise<void>,
  stopSignal: Promise<void>,
): Promise<void> {
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as GeneratorJob;
  const parts = shares(job.devices, job.threads);
  const latest: Counters[] = parts.map(() => emptyCounters());
  const results: ThreadResult[] = [];
  let ramped = 0;
  let rampedAll!: () => void;
  const rampDone = new Promise<void>((ok) => (rampedAll = ok));
  let finishedAll!: () => void;
  const finished = new Promise<void>((ok) => (finishedAll = ok));
  emit({ kind: 'phase', phase: 'ramp' });
  const workers = parts.map((part, t) => {
    const data: ThreadJob = {
      devices: part.items,
      echoTarget: job.echoTarget,
      udpPort: job.udpPort,
      scenario: job.scenario,
      rate: (job.rate * part.items.length) / job.devices.length,
      maxPending: Math.max(
        1,
        Math.round((job.maxPending * part.items.length) / job.devices.length),
      ),
      pps: job.pps,
      icmpPps: job.icmpPps,
      firstIndex: job.firstIndex + part.first,
    };
    const w = new Worker(new URL('./client-thread.js', import.meta.url), { workerData: data });
    w.on('message', (m: FromThread) => {
      if (m.kind === 'progress') latest[t] = m.counters;
      else if (m.kind === 'ramped') {
        latest[t] = m.counters;
        if (++ramped === parts.length) rampedAll();
      } else {
        results.push(m.result);
        if (results.length === parts.length) finishedAll();
      }
    });
    w.on('error', (err) => {
      emit({ kind: 'fatal', message: `client thread ${t}: ${err.message}` });
      process.exit(1);
    });
    return w;
  });
  const progress = setInterval(() => {
    const total = emptyCounters();
    for (const c of latest) addCounters(total, c);
    emit({ kind: 'progress', counters: total });
  }, 1000);
  await rampDone;
  // The benchmark may run several generators (a process has a limited number of descriptors):
  // it says when all of them are ramped (SIGUSR1: hold) and when the hold is over (SIGUSR2).
  emit({ kind: 'phase', phase: 'ramped' });
  await holdSignal;
  emit({ kind: 'phase', phase: 'hold' });
  for (const w of workers) w.postMessage({ kind: 'hold' });
  await stopSignal;
  emit({ kind: 'phase', phase: 'drain' });
  for (const w of workers) w.postMessage({ kind: 'stop' });
  await finished;
  clearInterval(progress);
  emit({ kind: 'result', result: mergeResults(results) });
  await Promise.all(workers.map((w) => w.terminate()));
}

const jobPath = process.argv[2];
if (jobPath !== undefined && process.argv[1]?.endsWith('generator.js')) {
  // The parent stops us with SIGTERM on its own exit; worker threads go with the process.
  process.on('SIGINT', () => undefined); // the parent decides when we stop
  // Installed at once, before the parent can send them: an unhandled SIGUSR1/2 would kill us.
  const holdSignal = new Promise<void>((ok) => process.once('SIGUSR1', () => ok()));
  const stopSignal = new Promise<void>((ok) => process.once('SIGUSR2', () => ok()));
  run(jobPath, holdSignal, stopSignal).then(
    () => process.exit(0),
    (err: Error) => {
      emit({ kind: 'fatal', message: err.stack ?? err.message });
      process.exit(1);
    },
  );
}
