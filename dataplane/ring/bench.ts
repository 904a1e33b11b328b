// Ring throughput between two threads: a producer worker fills slots, this thread consumes them.
// `node dist/dataplane/ring/bench.js [--packets N] [--size BYTES] [--slots N] [--write inplace|copy]
//  [--consumer wait|async] [--batch N]` or `main(argv)` from another module.
// inplace: the producer writes a sequence number into the reserved slot (as the TUN reader's read
// lands in it); copy: it copies a whole `size`-byte packet in with `push` (the staged path).
// The consumer touches the first and last byte of each packet and releases in batches.

import { Worker, isMainThread, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { createRing, RingConsumer, RingProducer, type RingHandle } from './spsc.js';

export interface RingBenchOptions {
  packets: number;
  size: number;
  slots: number;
  write: 'inplace' | 'copy';
  consumer: 'wait' | 'async';
  batch: number;
}

export interface RingBenchResult extends RingBenchOptions {
  seconds: number;
  packetsPerSecond: number;
  gigabitsPerSecond: number;
  drops: number;
}

interface ProducerData {
  role: 'ring-bench-producer';
  ring: RingHandle;
  packets: number;
  size: number;
  write: 'inplace' | 'copy';
}

function producer(d: ProducerData): void {
  const p = new RingProducer(d.ring);
  const packet = new Uint8Array(d.ring.slotBytes).fill(0xab);
  for (let seq = 0; seq < d.packets; seq++) {
    if (d.write === 'copy') {
      packet[0] = seq & 0xff;
      while (p.reserve() === null) p.waitForSpace(1000);
      p.push(packet, d.size);
    } else {
      let slot = p.reserve();
      while (slot === null) {
        p.waitForSpace(1000);
        slot = p.reserve();
      }
      slot[0] = seq & 0xff;
      slot[d.size - 1] = 0xab;
      p.commit(d.size);
    }
  }
}

if (!isMainThread && (workerData as ProducerData | undefined)?.role === 'ring-bench-producer')
  producer(workerData as ProducerData);

function parse(argv: readonly string[]): RingBenchOptions {
  const o: RingBenchOptions = {
    packets: 2_000_000,
    size: 1280,
    slots: 1024,
    write: 'inplace',
    consumer: 'wait',
    batch: 64,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--packets') o.packets = Number(value);
    else if (flag === '--size') o.size = Number(value);
    else if (flag === '--slots') o.slots = Number(value);
    else if (flag === '--batch') o.batch = Number(value);
    else if (flag === '--write' && (value === 'inplace' || value === 'copy')) o.write = value;
    else if (flag === '--consumer' && (value === 'wait' || value === 'async')) o.consumer = value;
    else throw new Error(`unknown option ${flag} ${value}`);
  }
  return o;
}

export async function main(argv: readonly string[]): Promise<RingBenchResult> {
  const o = parse(argv);
  const ring = createRing({ slotCount: o.slots, slotBytes: Math.max(2048, o.size) });
  const c = new RingConsumer(ring);
  const t0 = process.hrtime.bigint();
  const data: ProducerData = {
    role: 'ring-bench-producer',
    ring,
    packets: o.packets,
    size: o.size,
    write: o.write,
  };
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  let received = 0;
  let expect = 0;
  let bad = 0;
  while (received < o.packets) {
    const n = Math.min(c.available(), o.batch);
    if (n === 0) {
      if (o.consumer === 'wait') c.wait(1000);
      else await c.waitAsync(1000);
      continue;
    }
    for (let i = 0; i < n; i++) {
      const s = c.slot(i);
      if (s[0] !== (expect & 0xff) || s[c.length(i) - 1] !== 0xab) bad++;
      expect++;
    }
    c.release(n);
    received += n;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await exited;
  if (bad !== 0) throw new Error(`${bad} packets arrived damaged or out of order`);
  const result: RingBenchResult = {
    ...o,
    seconds,
    packetsPerSecond: o.packets / seconds,
    gigabitsPerSecond: (o.packets * o.size * 8) / seconds / 1e9,
    drops: c.drops(),
  };
  console.log(
    `ring ${o.write}/${o.consumer}: ${o.packets} x ${o.size} B through ${o.slots} slots in ` +
      `${seconds.toFixed(2)} s = ${(result.packetsPerSecond / 1e6).toFixed(2)} Mpps, ` +
      `${result.gigabitsPerSecond.toFixed(1)} Gbit/s`,
  );
  return result;
}

if (isMainThread && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
