// masque-bench quic: one client process and one server process (N worker threads each side, one
// connection per worker) pushing 1300-byte DATAGRAMs as fast as congestion control allows.
// Reports datagrams/s, payload Mbit/s, CPU µs per datagram per side, RSS, and the smoothed RTT
// under that load (queueing that an inner TCP would feel).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { benchPki } from './pki.js';
import type { ChildConfig, ChildEvent } from './child.js';

const DATAGRAM_BYTES = 1300;

export interface QuicBenchResult {
  workers: number;
  seconds: number;
  cc: 'bbr' | 'cubic';
  datagramsPerSecond: number;
  payloadMbitPerSecond: number;
  lossPercent: number;
  serverCpuUsPerDatagram: number;
  clientCpuUsPerDatagram: number;
  serverRssMiB: number;
  clientRssMiB: number;
  srttUs: number;
  command: string;
}

interface Options {
  workers: number;
  seconds: number;
  json: boolean;
  cc: 'bbr' | 'cubic';
}

function usage(): string {
  return 'usage: masque-bench quic [--workers N] [--seconds S] [--cc bbr|cubic] [--json]\n';
}

function parse(argv: string[]): Options | string {
  const o: Options = { workers: 1, seconds: 5, json: false, cc: 'bbr' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => argv[++i] ?? '';
    if (a === '--json') o.json = true;
    else if (a === '--workers') o.workers = Number(value());
    else if (a === '--seconds') o.seconds = Number(value());
    else if (a === '--cc') {
      const cc = value();
      if (cc !== 'bbr' && cc !== 'cubic') return `--cc must be bbr or cubic\n${usage()}`;
      o.cc = cc;
    } else if (a === '--help' || a === '-h') return usage();
    else return `unknown option '${a}'\n${usage()}`;
  }
  if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 64)
    return `--workers must be 1..64\n`;
  if (!(o.seconds > 0)) return `--seconds must be > 0\n`;
  return o;
}

class Side {
  private readonly lines: AsyncIterator<string>;
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    this.lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    proc.stderr.pipe(process.stderr);
  }
  async event(): Promise<ChildEvent> {
    const r = await this.lines.next();
    if (r.done) throw new Error('benchmark process ended early');
    return JSON.parse(r.value) as ChildEvent;
  }
  send(cmd: string): void {
    this.proc.stdin.write(`${cmd}\n`);
  }
}

function start(role: 'server' | 'client', cfg: ChildConfig): Side {
  const file = fileURLToPath(new URL('./child.js', import.meta.url));
  return new Side(spawn(process.execPath, [file, role, JSON.stringify(cfg)], { stdio: 'pipe' }));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runQuicBench(o: Options): Promise<QuicBenchResult> {
  const pki = benchPki();
  const server = start('server', { workers: o.workers, port: 0, pki, cc: o.cc });
  let client: Side | undefined;
  try {
    const ready = await server.event();
    if (ready.event !== 'ready') throw new Error('server did not start');
    client = start('client', { workers: o.workers, port: ready.port, pki, cc: o.cc });
    if ((await client.event()).event !== 'ready') throw new Error('client did not connect');
    client.send('go');
    await sleep(1000); // let congestion control leave slow start
    server.send('start');
    client.send('start');
    await sleep(o.seconds * 1000);
    client.send('stop');
    server.send('stop');
    const c = await client.event();
    const s = await server.event();
    if (c.event !== 'result' || s.event !== 'result') throw new Error('no result');
    const rate = s.datagrams / s.seconds;
    return {
      workers: o.workers,
      seconds: s.seconds,
      cc: o.cc,
      datagramsPerSecond: Math.round(rate),
      payloadMbitPerSecond: Math.round((rate * DATAGRAM_BYTES * 8) / 1e4) / 100,
      lossPercent:
        c.datagrams > 0 ? Math.max(0, Math.round((1 - s.datagrams / c.datagrams) * 1e4) / 100) : 0,
      serverCpuUsPerDatagram: s.datagrams ? Math.round((s.cpuUs / s.datagrams) * 100) / 100 : 0,
      clientCpuUsPerDatagram: c.datagrams ? Math.round((c.cpuUs / c.datagrams) * 100) / 100 : 0,
      serverRssMiB: Math.round(s.rssBytes / 1048576),
      clientRssMiB: Math.round(c.rssBytes / 1048576),
      srttUs: Math.round(c.srttUs),
      command: `masque-bench quic --workers ${o.workers} --seconds ${o.seconds} --cc ${o.cc}`,
    };
  } finally {
    client?.send('exit');
    server.send('exit');
    await Promise.all(
      [client?.proc, server.proc].map(
        (p) => p && p.exitCode === null && new Promise((r) => p.once('exit', r)),
      ),
    );
  }
}

export async function main(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (typeof o === 'string') {
    process.stderr.write(o);
    return o === usage() ? 0 : 2;
  }
  const r = await runQuicBench(o);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(r)}\n`);
  } else {
    process.stdout.write(
      [
        `QUIC datagrams, ${r.workers} worker(s) per side, ${r.cc}, ${r.seconds.toFixed(1)} s, 1300-byte payloads`,
        `  throughput     ${r.datagramsPerSecond} datagrams/s = ${r.payloadMbitPerSecond} Mbit/s payload`,
        `  loss           ${r.lossPercent} % (sent by client, not received by server)`,
        `  CPU/datagram   server ${r.serverCpuUsPerDatagram} µs, client ${r.clientCpuUsPerDatagram} µs`,
        `  RSS            server ${r.serverRssMiB} MiB, client ${r.clientRssMiB} MiB`,
        `  smoothed RTT   ${r.srttUs} µs under load`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}
