// masque-bench control: the control plane under load, as a data plane and an admin see it. Starts
// `controlplane` as a child process on a fresh data directory (its own event loop and its own
// SQLite file, as in production), then measures over the unix socket:
//   1. `user add` latency (AddUser with a bundle, what `vpnctl user add` does), one at a time;
//   2. bulk `user add` with C concurrent callers (users/s);
//   3. Authorize calls/s and latency with C concurrent callers over the certificates of step 1.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { parse as parseToml } from 'smol-toml';
import { ControlClient } from '../../controlplane/client.js';

interface Options {
  users: number;
  bulk: number;
  concurrency: number;
  seconds: number;
  synchronous: 'full' | 'normal';
  json: boolean;
}

interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summarize(samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? 0;
  return {
    count: s.length,
    p50Ms: round(at(0.5)),
    p99Ms: round(at(0.99)),
    maxMs: round(s[s.length - 1] ?? 0),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s+/g, ''), 'base64');
}

async function startDaemon(dataDir: string, synchronous: string): Promise<ChildProcess> {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  const configPath = join(dataDir, '..', 'bench-cp.toml');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(configPath, `[store]\nsynchronous = "${synchronous}"\n`);
  const child = spawn(
    process.execPath,
    [
      join(root, 'bin', 'controlplane.js'),
      '--config',
      configPath,
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const sock = join(dataDir, 'control.sock');
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`controlplane exited with ${child.exitCode}`);
    if (existsSync(sock)) {
      const c = new ControlClient({ address: `unix:${sock}`, deadlineMs: 2_000 });
      try {
        await c.pool.showPools({});
        return child;
      } catch {
        // not yet
      } finally {
        c.close();
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('controlplane did not start within 30 s');
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('masque-bench control')
    .description('control plane: user add latency, bulk import rate, Authorize calls/s and p99')
    .option(
      '--users <n>',
      'users added one at a time (latency; their certificates feed Authorize)',
      '100',
    )
    .option('--bulk <n>', 'users added by concurrent callers (rate)', '200')
    .option('--concurrency <n>', 'concurrent callers', '16')
    .option('--seconds <s>', 'Authorize phase duration', '5')
    .option('--synchronous <mode>', 'SQLite synchronous: full (default) or normal', 'full')
    .option('--json', 'print the result as JSON', false)
    .exitOverride();
  try {
    program.parse(argv, { from: 'user' });
  } catch {
    return 2;
  }
  const raw = program.opts<Record<string, string | boolean>>();
  const o: Options = {
    users: Number(raw.users),
    bulk: Number(raw.bulk),
    concurrency: Number(raw.concurrency),
    seconds: Number(raw.seconds),
    synchronous: raw.synchronous === 'normal' ? 'normal' : 'full',
    json: raw.json === true,
  };
  if (![o.users, o.bulk, o.concurrency, o.seconds].every((n) => Number.isFinite(n) && n > 0)) {
    process.stderr.write(
      'masque-bench control: --users, --bulk, --concurrency, --seconds must be > 0\n',
    );
    return 2;
  }

  const dir = mkdtempSync(join(tmpdir(), 'bench-control-'));
  const dataDir = join(dir, 'data');
  const child = await startDaemon(dataDir, o.synchronous);
  const client = new ControlClient({ address: `unix:${join(dataDir, 'control.sock')}` });
  try {
    // 1. user add, one at a time
    const addMs: number[] = [];
    const certs: Buffer[] = [];
    for (let i = 0; i < o.users; i++) {
      const t = performance.now();
      const res = await client.users.addUser({ name: `lat${i}`, bundle: true });
      addMs.push(performance.now() - t);
      const doc = parseToml(res.bundle?.toml ?? '') as { tls: { cert: string } };
      certs.push(pemToDer(doc.tls.cert));
    }

    // 2. bulk user add, concurrent
    let next = 0;
    const bulkMs: number[] = [];
    const bulkStart = performance.now();
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.bulk) {
          const i = next++;
          const t = performance.now();
          await client.users.addUser({ name: `bulk${i}` });
          bulkMs.push(performance.now() - t);
        }
      }),
    );
    const bulkSeconds = (performance.now() - bulkStart) / 1000;

    // 3. Authorize
    const { dataplaneId } = await client.dataplane.register({ name: 'bench' });
    const authMs: number[] = [];
    let denied = 0;
    const authEnd = performance.now() + o.seconds * 1000;
    let k = 0;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (performance.now() < authEnd) {
          const der = certs[k++ % certs.length];
          const t = performance.now();
          const res = await client.dataplane.authorize({ dataplaneId, clientCertDer: der });
          authMs.push(performance.now() - t);
          if (res.allowed === undefined) denied++;
        }
      }),
    );
    const result = {
      benchmark: 'control',
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '' },
      options: o,
      userAdd: summarize(addMs),
      bulkUserAdd: {
        ...summarize(bulkMs),
        perSecond: round(o.bulk / bulkSeconds),
      },
      authorize: {
        ...summarize(authMs),
        perSecond: round(authMs.length / o.seconds),
        denied,
      },
    };
    if (o.json) {
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else {
      const l = (x: Latency) => `p50 ${x.p50Ms} ms, p99 ${x.p99Ms} ms, max ${x.maxMs} ms`;
      process.stdout.write(
        [
          `control plane benchmark (SQLite synchronous=${o.synchronous}, ${result.machine.cpus} CPUs)`,
          `  user add (with bundle), sequential, n=${o.users}: ${l(result.userAdd)}`,
          `  user add, ${o.concurrency} concurrent, n=${o.bulk}: ${result.bulkUserAdd.perSecond}/s, ${l(result.bulkUserAdd)}`,
          `  Authorize, ${o.concurrency} concurrent, ${o.seconds} s: ${result.authorize.perSecond}/s, ${l(result.authorize)}${denied ? `, ${denied} denied (unexpected)` : ''}`,
          '',
        ].join('\n'),
      );
    }
    return denied === 0 ? 0 : 1;
  } finally {
    client.close();
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
    rmSync(dir, { recursive: true, force: true });
  }
}
