// One side of the QUIC benchmark as its own process: `node child.js <server|client> <json>`.
// It runs one worker thread per connection/shard and answers line commands on stdin
// (go, start, stop, exit) with JSON lines on stdout.
import { createInterface } from 'node:readline';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

import type { BenchPki } from './pki.js';
import type { WorkerReport } from './worker.js';

export interface ChildConfig {
  workers: number;
  port: number;
  pki: BenchPki;
  cc: 'bbr' | 'cubic';
}

/** What a child prints, one JSON object per line. */
export type ChildEvent =
  | { event: 'ready'; port: number }
  | {
      event: 'result';
      datagrams: number;
      seconds: number;
      cpuUs: number;
      rssBytes: number;
      srttUs: number;
    };

const workerFile = fileURLToPath(new URL('./worker.js', import.meta.url));

function next(w: Worker, kind: WorkerReport['kind']): Promise<WorkerReport> {
  return new Promise((resolve) => {
    const on = (m: WorkerReport) => {
      if (m.kind !== kind) return;
      w.off('message', on);
      resolve(m);
    };
    w.on('message', on);
  });
}

function spawnWorker(data: object): Worker {
  const w = new Worker(workerFile, { workerData: data });
  w.on('error', (e) => {
    process.stderr.write(`bench worker failed: ${e.stack ?? e}\n`);
    process.exit(1);
  });
  return w;
}

function emit(e: ChildEvent): void {
  process.stdout.write(`${JSON.stringify(e)}\n`);
}

async function run(role: 'server' | 'client', cfg: ChildConfig): Promise<void> {
  const workers: Worker[] = [];
  let port = cfg.port;
  if (role === 'server') {
    // Shards bind in order: the reuseport program picks sockets by their index in the group.
    for (let shardId = 0; shardId < cfg.workers; shardId++) {
      const w = spawnWorker({
        role,
        pki: cfg.pki,
        port,
        shardId,
        shardCount: cfg.workers,
        cc: cfg.cc,
      });
      const r = await next(w, 'ready');
      if (r.kind === 'ready') port = r.port;
      workers.push(w);
    }
  } else {
    for (let i = 0; i < cfg.workers; i++)
      workers.push(spawnWorker({ role, pki: cfg.pki, port, cc: cfg.cc }));
    await Promise.all(workers.map((w) => next(w, 'ready')));
  }
  emit({ event: 'ready', port });

  const counts = async () => {
    const rs = await Promise.all(
      workers.map((w) => {
        const p = next(w, 'count');
        w.postMessage('count');
        return p;
      }),
    );
    let datagrams = 0;
    let srtt = 0;
    for (const r of rs)
      if (r.kind === 'count') {
        datagrams += r.datagrams;
        srtt += r.srttUs / rs.length;
      }
    return { datagrams, srtt };
  };
  let start = { datagrams: 0, cpu: process.cpuUsage(), t: process.hrtime.bigint() };
  const srttSamples: number[] = [];
  let sampler: NodeJS.Timeout | undefined;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'go') for (const w of workers) w.postMessage('go');
    else if (line === 'start') {
      start = {
        datagrams: (await counts()).datagrams,
        cpu: process.cpuUsage(),
        t: process.hrtime.bigint(),
      };
      sampler = setInterval(() => void counts().then((c) => srttSamples.push(c.srtt)), 250);
    } else if (line === 'stop') {
      const cpu = process.cpuUsage(start.cpu);
      const t = process.hrtime.bigint();
      clearInterval(sampler);
      const end = await counts();
      const srtt = srttSamples.length
        ? srttSamples.reduce((a, b) => a + b) / srttSamples.length
        : end.srtt;
      emit({
        event: 'result',
        datagrams: end.datagrams - start.datagrams,
        seconds: Number(t - start.t) / 1e9,
        cpuUs: cpu.user + cpu.system,
        rssBytes: process.memoryUsage().rss,
        srttUs: srtt,
      });
    } else if (line === 'exit') break;
  }
  await Promise.all(
    workers.map((w) => {
      const p = next(w, 'closed');
      w.postMessage('close');
      return p;
    }),
  );
  process.exit(0);
}

const [role, json] = process.argv.slice(2);
if (role !== 'server' && role !== 'client') {
  process.stderr.write('usage: child.js <server|client> <json config>\n');
  process.exit(2);
}
await run(role, JSON.parse(json ?? '{}') as ChildConfig);
