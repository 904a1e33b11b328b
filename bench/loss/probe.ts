// A sequenced, timestamped UDP echo: the flow `masque-bench loss --network` sends through the
// tunnel. The sender paces datagrams at a constant rate; the echo side counts what arrives (uplink
// delivery), stamps and returns each datagram; the sender counts the echoes (downlink delivery)
// and their round trip. Both stamps are CLOCK_MONOTONIC (process.hrtime), which network namespaces
// share, so one-way delays across namespaces are meaningful.
//
// Datagram: Run (32) | Seq (32) | Sent ns (64) | Echoed ns (64) | zero padding.
// Run tells this run's datagrams from stragglers of an earlier one on the same port.
//
// Run as a program in a namespace:
//   node probe.js echo --bind ADDR:PORT --run ID --from N --to M    (prints JSON on SIGTERM)
//   node probe.js send --to ADDR:PORT --run ID --rate N --size B --warmup S --seconds S
//                      [--drain MS]   (prints "measuring" after the warm-up, then JSON)
import dgram from 'node:dgram';
import { pathToFileURL } from 'node:url';

export const PROBE_HEADER_BYTES = 24;
/** IPv4 and UDP headers: the IP packet is this much larger than the UDP payload. */
export const IPV4_UDP_OVERHEAD = 28;

export interface Percentiles {
  p50: number;
  p99: number;
}

/** Nearest-rank percentiles of `values` (sorted in place); zeros when there are none. */
export function percentiles(values: Float64Array): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0 };
  values.sort();
  const at = (q: number): number =>
    values[Math.min(values.length - 1, Math.max(0, Math.ceil(q * values.length) - 1))];
  return { p50: at(0.5), p99: at(0.99) };
}

export interface EchoResult {
  /** Distinct datagrams of the measured range [from, to) that arrived. */
  received: number;
  /** One-way sender → echo delay of those, ms. */
  upMs: Percentiles;
}

export interface SenderResult {
  /** Datagrams sent in the measured range (after the warm-up). */
  sent: number;
  /** Distinct echoes of the measured range that came back. */
  echoed: number;
  /** Payload bytes per datagram (the IP packet is IPV4_UDP_OVERHEAD larger). */
  payloadBytes: number;
  measuredSeconds: number;
  rttMs: Percentiles;
  /** One-way echo → sender delay, ms. */
  downMs: Percentiles;
}

const nowNs = (): bigint => process.hrtime.bigint();
const nsToMs = (ns: bigint): number => Number(ns) / 1e6;

function socketFor(host: string): dgram.Socket {
  return dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
}

export function splitAddress(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (m === null) throw new Error(`'${text}' is not HOST:PORT`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

export interface EchoOptions {
  bind: string;
  run: number;
  from: number;
  to: number;
}

export interface EchoHandle {
  port: number;
  result(): EchoResult;
  close(): Promise<void>;
}

export async function startEcho(o: EchoOptions): Promise<EchoHandle> {
  const { host, port } = splitAddress(o.bind);
  const socket = socketFor(host);
  const span = Math.max(0, o.to - o.from);
  const seen = new Uint8Array(span);
  const upMs = new Float64Array(span);
  let received = 0;
  socket.on('message', (msg, rinfo) => {
    if (msg.length < PROBE_HEADER_BYTES || msg.readUInt32BE(0) !== o.run) return;
    const at = nowNs();
    const seq = msg.readUInt32BE(4);
    const i = seq - o.from;
    if (i >= 0 && i < span && seen[i] === 0) {
      seen[i] = 1;
      upMs[received++] = nsToMs(at - msg.readBigUInt64BE(8));
    }
    // Every copy is echoed, so the sender's own duplicate check sees what the tunnel did.
    msg.writeBigUInt64BE(at, 16);
    socket.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    result: () => ({ received, upMs: percentiles(upMs.slice(0, received)) }),
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

export interface SenderOptions {
  to: string;
  run: number;
  /** Datagrams per second. */
  rate: number;
  /** IP packet size; the UDP payload is IPV4_UDP_OVERHEAD smaller. */
  size: number;
  warmupSeconds: number;
  seconds: number;
  /** Wait for late echoes after the last send, ms. */
  drainMs: number;
}

/** The sequence numbers a sender with these options measures: [from, to). */
export function measuredRange(o: Pick<SenderOptions, 'rate' | 'warmupSeconds' | 'seconds'>): {
  from: number;
  to: number;
} {
  const from = Math.round(o.rate * o.warmupSeconds);
  return { from, to: from + Math.max(1, Math.round(o.rate * o.seconds)) };
}

/** Sends the paced flow, counts echoes; `onMeasuring` runs when the warm-up ends. */
export async function runSender(
  o: SenderOptions,
  onMeasuring: () => void = () => {},
): Promise<SenderResult> {
  const { host, port } = splitAddress(o.to);
  const { from, to } = measuredRange(o);
  const payloadBytes = Math.max(PROBE_HEADER_BYTES, o.size - IPV4_UDP_OVERHEAD);
  const socket = socketFor(host);
  const span = to - from;
  const seen = new Uint8Array(span);
  const rttMs = new Float64Array(span);
  const downMs = new Float64Array(span);
  let echoed = 0;
  socket.on('message', (msg) => {
    if (msg.length < PROBE_HEADER_BYTES || msg.readUInt32BE(0) !== o.run) return;
    const i = msg.readUInt32BE(4) - from;
    if (i < 0 || i >= span || seen[i] !== 0) return;
    const at = nowNs();
    seen[i] = 1;
    rttMs[echoed] = nsToMs(at - msg.readBigUInt64BE(8));
    downMs[echoed] = nsToMs(at - msg.readBigUInt64BE(16));
    echoed++;
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', () => {
    // A send refused (no route while the tunnel flaps, ICMP unreachable): counted as lost.
  });

  // A small pool of buffers: a datagram's bytes must stay untouched until its send completes.
  const pool = Array.from({ length: 64 }, () => Buffer.alloc(payloadBytes));
  for (const b of pool) b.writeUInt32BE(o.run, 0);
  let next = 0;
  let measuringSince = 0n;
  const started = nowNs();
  const perNs = o.rate / 1e9;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      // Everything due by now, so timer slack delays datagrams but never drops or thins them.
      const due = Math.min(to, Math.floor(Number(nowNs() - started) * perNs) + 1);
      while (next < due) {
        if (next === from) {
          measuringSince = nowNs();
          onMeasuring();
        }
        const buf = pool[next % pool.length];
        buf.writeUInt32BE(next, 4);
        buf.writeBigUInt64BE(nowNs(), 8);
        socket.send(buf, port, host);
        next++;
      }
      if (next >= to) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  const measuredSeconds = Number(nowNs() - measuringSince) / 1e9;
  await new Promise((r) => setTimeout(r, o.drainMs));
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return {
    sent: span,
    echoed,
    payloadBytes,
    measuredSeconds,
    rttMs: percentiles(rttMs.slice(0, echoed)),
    downMs: percentiles(downMs.slice(0, echoed)),
  };
}

function flags(argv: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      throw new Error(`bad argument ${argv[i]}`);
    }
    m.set(argv[i].slice(2), argv[i + 1]);
  }
  return m;
}

function need(m: Map<string, string>, key: string): string {
  const v = m.get(key);
  if (v === undefined) throw new Error(`--${key} is required`);
  return v;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [role, ...rest] = argv;
  const f = flags(rest);
  const num = (key: string): number => {
    const n = Number(need(f, key));
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${key} needs a number`);
    return n;
  };
  if (role === 'echo') {
    const echo = await startEcho({
      bind: need(f, 'bind'),
      run: num('run'),
      from: num('from'),
      to: num('to'),
    });
    process.stdout.write('ready\n');
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    const r = echo.result();
    await echo.close();
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  if (role === 'send') {
    const r = await runSender(
      {
        to: need(f, 'to'),
        run: num('run'),
        rate: num('rate'),
        size: num('size'),
        warmupSeconds: num('warmup'),
        seconds: num('seconds'),
        drainMs: f.has('drain') ? num('drain') : 1000,
      },
      () => process.stdout.write('measuring\n'),
    );
    process.stdout.write(`${JSON.stringify(r)}\n`);
    return 0;
  }
  throw new Error(`unknown role '${role}' (echo or send)`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`probe: ${err.message}\n`);
      process.exit(2);
    },
  );
}
