// TUN round-trip throughput through the packet plane, in a network namespace this script makes:
// a UDP socket on the TUN's address sends datagrams to an address routed into the TUN; the reader
// thread puts them in a shard ring; a shard thread turns each into a UDP reply and puts it in its
// writer ring; the writer thread writes it back into the TUN; the socket receives it.
// `node dist/dataplane/tun/bench.js [--packets N] [--size BYTES] [--window N]` as root,
// or `main(argv)` from another module.

import { spawn, execFile } from 'node:child_process';
import dgram from 'node:dgram';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { createRingPlane } from '../ring/plane.js';
import { createRouteTable, RouteTable } from '../ring/route-table.js';
import { RingConsumer, RingProducer, type RingHandle } from '../ring/spsc.js';
import { TunDevice } from './device.js';
import { TunThreads } from './threads.js';

export interface TunBenchOptions {
  packets: number;
  size: number;
  window: number;
}

export interface TunBenchResult extends TunBenchOptions {
  received: number;
  seconds: number;
  roundTripsPerSecond: number;
}

interface EchoData {
  role: 'tun-bench-echo';
  inbound: RingHandle;
  outbound: RingHandle;
  control: SharedArrayBuffer;
}

/** The shard stand-in: UDP/IPv4 in, the same datagram back with addresses and ports swapped. */
function echo(d: EchoData): void {
  const inbound = new RingConsumer(d.inbound);
  const outbound = new RingProducer(d.outbound);
  const control = new Int32Array(d.control);
  while (Atomics.load(control, 0) === 0) {
    const n = inbound.available();
    if (n === 0) {
      inbound.wait(200);
      continue;
    }
    for (let i = 0; i < n; i++) {
      const p = inbound.slot(i);
      const len = inbound.length(i);
      if (p[0] !== 0x45 || p[9] !== 17) continue;
      const out = outbound.reserve();
      if (out === null) {
        outbound.countDrop();
        continue;
      }
      out.set(p);
      for (let k = 0; k < 4; k++) {
        out[12 + k] = p[16 + k];
        out[16 + k] = p[12 + k];
      }
      out[20] = p[22];
      out[21] = p[23];
      out[22] = p[20];
      out[23] = p[21];
      out[26] = out[27] = 0; // UDP checksum optional over IPv4
      outbound.commit(len);
    }
    inbound.release(n);
  }
}

if (!isMainThread && (workerData as EchoData | undefined)?.role === 'tun-bench-echo')
  echo(workerData as EchoData);

function parse(argv: readonly string[]): TunBenchOptions {
  const o: TunBenchOptions = { packets: 200_000, size: 1200, window: 64 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value <= 0)
      throw new Error(`${argv[i]} needs a positive integer`);
    if (argv[i] === '--packets') o.packets = value;
    else if (argv[i] === '--size') o.size = value;
    else if (argv[i] === '--window') o.window = value;
    else throw new Error(`unknown option ${argv[i]}`);
  }
  if (o.size > 1252) throw new Error('--size must fit a 1280-byte MTU with IPv4 and UDP headers');
  return o;
}

const run = (cmd: string, args: string[]) =>
  new Promise<void>((resolve, reject) =>
    execFile(cmd, args, (e, _o, stderr) =>
      e ? reject(new Error(`${cmd}: ${stderr}`)) : resolve(),
    ),
  );

export async function main(argv: readonly string[]): Promise<TunBenchResult | undefined> {
  const o = parse(argv);
  if (process.getuid?.() !== 0) throw new Error('the TUN bench needs root');
  if (process.env.TUNBENCH_INSIDE !== '1') {
    const ns = `tunbench-${process.pid}`;
    await run('ip', ['netns', 'add', ns]);
    try {
      const self = fileURLToPath(import.meta.url);
      const code = await new Promise<number | null>((resolve) =>
        spawn('ip', ['netns', 'exec', ns, process.execPath, self, ...argv], {
          env: { ...process.env, TUNBENCH_INSIDE: '1' },
          stdio: 'inherit',
        }).on('close', resolve),
      );
      if (code !== 0) throw new Error(`bench inside ${ns} exited with ${code}`);
    } finally {
      await run('ip', ['netns', 'del', ns]);
    }
    return undefined;
  }

  const device = await TunDevice.open({ name: 'tb0', addresses: ['10.210.0.1/24'] });
  const plane = createRingPlane({ shards: 1 });
  const routesHandle = createRouteTable(64);
  new RouteTable(routesHandle).set('10.210.0.2', 0, 1);
  const threads = await TunThreads.start({ fd: device.fd, plane, routes: routesHandle });
  const control = new SharedArrayBuffer(4);
  const shard = new Worker(new URL(import.meta.url), {
    workerData: {
      role: 'tun-bench-echo',
      inbound: plane.toShard[0],
      outbound: plane.toWriter[0],
      control,
    } satisfies EchoData,
  });
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, '10.210.0.1', resolve));
    await new Promise<void>((resolve) => socket.connect(7, '10.210.0.2', resolve));
    const payload = Buffer.alloc(o.size, 0x5a);
    let sent = 0;
    let received = 0;
    const t0 = process.hrtime.bigint();
    const result = await new Promise<TunBenchResult>((resolve) => {
      let idle: NodeJS.Timeout | undefined;
      const finish = () => {
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        resolve({ ...o, received, seconds, roundTripsPerSecond: received / seconds });
      };
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(finish, 1000); // losses end the run after a quiet second
      };
      socket.on('message', () => {
        received++;
        if (sent < o.packets) {
          sent++;
          socket.send(payload);
        }
        if (received === o.packets) {
          clearTimeout(idle);
          finish();
        } else arm();
      });
      for (; sent < Math.min(o.window, o.packets); sent++) socket.send(payload);
      arm();
    });
    // The quiet second after losses is not throughput.
    if (result.received < o.packets) result.seconds -= 1;
    result.roundTripsPerSecond = result.received / result.seconds;
    const c = threads.counters();
    console.log(
      `tun echo: ${result.received}/${o.packets} x ${o.size} B round trips, window ${o.window}, ` +
        `in ${result.seconds.toFixed(2)} s = ${(result.roundTripsPerSecond / 1e3).toFixed(1)} k/s ` +
        `(${((result.roundTripsPerSecond * o.size * 8 * 2) / 1e6).toFixed(0)} Mbit/s both ways); ` +
        `reader waits ${c.readWaits}, writer waits ${c.writeWaits}, drops ` +
        `${c.dropNoRoute + c.dropRingFull + c.dropMalformed}`,
    );
    return result;
  } finally {
    socket.close();
    Atomics.store(new Int32Array(control), 0, 1);
    await new Promise((resolve) => shard.once('exit', resolve));
    await threads.stop();
    await device.close();
  }
}

if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
