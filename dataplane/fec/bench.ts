// `masque-bench fec`: encoder and decoder throughput of the FEC engine on one core, in MB/s of
// data packets, for XOR parity and Reed–Solomon. Decoding is measured with the worst case the
// block can still survive (m data packets lost in every block), so every block pays for recovery.
import { performance } from 'node:perf_hooks';
import type { FecScheme } from './code.js';
import { FecReceiver } from './receiver.js';
import { FecSender, type FecSendSink } from './sender.js';

interface Options {
  seconds: number;
  size: number;
  k: number;
  m: number;
  json: boolean;
}

interface Result {
  scheme: FecScheme;
  k: number;
  m: number;
  packetSize: number;
  encodeMBps: number;
  decodeMBps: number;
  recovered: number;
}

function parseArgs(argv: string[]): Options | string {
  const o: Options = { seconds: 1, size: 1200, k: 10, m: 3, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${a} needs a positive number`);
      return v;
    };
    try {
      if (a === '--seconds') o.seconds = num();
      else if (a === '--size') o.size = Math.floor(num());
      else if (a === '--k') o.k = Math.floor(num());
      else if (a === '--m') o.m = Math.floor(num());
      else if (a === '--json') o.json = true;
      else if (a === '--help' || a === '-h') return 'help';
      else return `unknown option ${a}`;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (o.k + o.m > 256 || o.size > 65535) return 'k + m must be ≤ 256 and --size ≤ 65535';
  return o;
}

function packets(count: number, size: number): Uint8Array[] {
  return Array.from({ length: count }, (_, n) => {
    const p = new Uint8Array(size);
    for (let i = 0; i < size; i++) p[i] = (n * 131 + i * 7) & 0xff;
    return p;
  });
}

/**
 * Runs `step` repeatedly for about `seconds` of wall time; returns calls per CPU-second of this
 * process, so the figure is per core and holds on a machine shared with other work.
 */
function rate(seconds: number, step: () => void): number {
  for (let i = 0; i < 50; i++) step(); // warm up the JIT
  let calls = 0;
  const cpu0 = process.cpuUsage();
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 20; i++) step();
    calls += 20;
  }
  const cpu = process.cpuUsage(cpu0);
  return (calls * 1e6) / Math.max(1, cpu.user + cpu.system);
}

function measure(scheme: FecScheme, o: Options): Result {
  const k = o.k;
  const m = scheme === 'xor' ? 1 : o.m;
  const data = packets(k, o.size);
  const sender = new FecSender({
    scheme,
    maxK: k,
    maxM: m,
    maxPacketSize: o.size,
    flushDelayMs: 5,
  });
  const discard: FecSendSink = { sendPlain: () => undefined, sendFec: () => undefined };
  const blocksPerSecEnc = rate(o.seconds, () => {
    for (let i = 0; i < k; i++) sender.send(data[i], 0, discard);
  });

  // One block on the wire with its first m data packets lost.
  const wire: Uint8Array[] = [];
  const capture: FecSendSink = {
    sendPlain: () => undefined,
    sendFec: (h, b) => {
      const p = new Uint8Array(h.length + b.length);
      p.set(h);
      p.set(b, h.length);
      wire.push(p);
    },
  };
  const fresh = new FecSender({ scheme, maxK: k, maxM: m, maxPacketSize: o.size, flushDelayMs: 5 });
  for (let i = 0; i < k; i++) fresh.send(data[i], 0, capture);
  const arriving = wire.slice(m);
  const receiver = new FecReceiver({ scheme, maxK: k, maxM: m, maxPacketSize: o.size });
  let id = 0;
  let delivered = 0;
  const deliver = (): void => {
    delivered++;
  };
  const blocksPerSecDec = rate(o.seconds, () => {
    id = (id + 1) & 0xffff;
    for (const p of arriving) {
      p[1] = id >>> 8; // a new block id each round, as on a live tunnel
      p[2] = id & 0xff;
      receiver.receive(p, 0, deliver);
    }
  });
  if (delivered === 0 || receiver.metrics.packetsRecovered === 0) {
    throw new Error(`${scheme}: the decoder recovered nothing; the measurement is void`);
  }
  const mb = (blocksPerSec: number) => (blocksPerSec * k * o.size) / 1e6;
  return {
    scheme,
    k,
    m,
    packetSize: o.size,
    encodeMBps: mb(blocksPerSecEnc),
    decodeMBps: mb(blocksPerSecDec),
    recovered: receiver.metrics.packetsRecovered,
  };
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (o === 'help') {
    process.stdout.write(
      'usage: masque-bench fec [--seconds S] [--size BYTES] [--k K] [--m M] [--json]\n' +
        'Encoder and decoder MB/s on one core; decode recovers m lost data packets per block.\n',
    );
    return 0;
  }
  if (typeof o === 'string') {
    process.stderr.write(`masque-bench fec: ${o}\n`);
    return 2;
  }
  const results = (['xor', 'rs'] as const).map((s) => measure(s, o));
  if (o.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `FEC throughput per core, MB of data per CPU-second (${o.size}-byte packets, ${o.seconds}s each)\n`,
  );
  for (const r of results) {
    process.stdout.write(
      `  ${r.scheme.padEnd(3)} k=${r.k} m=${r.m}  encode ${r.encodeMBps.toFixed(0).padStart(6)} MB/s` +
        `  decode (m lost/block) ${r.decodeMBps.toFixed(0).padStart(6)} MB/s\n`,
    );
  }
  return 0;
}
