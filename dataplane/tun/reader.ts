// TUN reader thread (a worker_threads entry): reads packets from the TUN fd and hands each to the
// shard owning its destination address.
//
// The destination is only known after the read, so the read lands speculatively in the free slot
// of the ring that took the previous packet (bulk flows make that the right ring most of the
// time, and with one shard always): then committing is free. When the guess is wrong or that ring
// is full, the packet goes through a staging slot and one copy into the right ring.
// The fd is non-blocking: the loop reads until EAGAIN, then poll()s the TUN fd and the stop
// eventfd together, so a stop request wakes it at once even when no packet ever comes.

import fs from 'node:fs';
import { isMainThread, workerData } from 'node:worker_threads';
import { RingProducer, type RingHandle } from '../ring/spsc.js';
import {
  RouteTable,
  ROUTE_NONE,
  routeSession,
  routeShard,
  type RouteTableHandle,
} from '../ring/route-table.js';
import { ReadableWaiter } from './libc.js';
import { TunStat } from './stats.js';

export interface TunReaderData {
  role: 'tun-reader';
  /** Non-blocking TUN fd. */
  fd: number;
  /** eventfd that becomes readable when the thread must stop. */
  stopFd: number;
  /** Int32 word 0: non-zero = stop. */
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  routes: RouteTableHandle;
  /** One ring per shard, indexed by shard id. */
  toShard: RingHandle[];
  /** Upper bound on an idle poll (ms); the stop eventfd normally wakes it sooner. */
  idleTimeoutMs?: number;
}

export function runTunReader(data: TunReaderData): void {
  const { fd } = data;
  const control = new Int32Array(data.control);
  const stats = new Float64Array(data.stats);
  const routes = new RouteTable(data.routes);
  const rings = data.toShard.map((h) => new RingProducer(h));
  const slotBytes = rings[0].slotBytes;
  const staging = new Uint8Array(slotBytes);
  const waiter = new ReadableWaiter([fd, data.stopFd]);
  const idleTimeoutMs = data.idleTimeoutMs ?? 1000;
  let guess = 0;

  while (Atomics.load(control, 0) === 0) {
    const speculative = rings[guess].reserve();
    const buf = speculative ?? staging;
    let n: number;
    try {
      n = fs.readSync(fd, buf, 0, slotBytes, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        stats[TunStat.readWaits]++;
        waiter.wait(idleTimeoutMs);
        continue;
      }
      stats[TunStat.readErrors]++;
      if (code === 'EBADF') break; // the device is gone: nothing more to read
      continue;
    }
    stats[TunStat.readPackets]++;
    stats[TunStat.readBytes] += n;
    if (n >= slotBytes) {
      // read(2) on a TUN truncates silently: a full slot may be a cut-off packet.
      stats[TunStat.dropOversize]++;
      continue;
    }
    const route = routes.lookupDestination(buf, n);
    if (route < 0) {
      stats[route === ROUTE_NONE ? TunStat.dropNoRoute : TunStat.dropMalformed]++;
      continue;
    }
    const shard = routeShard(route);
    if (shard >= rings.length) {
      stats[TunStat.dropNoRoute]++;
      continue;
    }
    if (speculative !== null && shard === guess) {
      rings[shard].commit(n, routeSession(route));
    } else {
      stats[TunStat.stagedCopies]++;
      if (!rings[shard].push(buf, n, routeSession(route))) stats[TunStat.dropRingFull]++;
    }
    guess = shard;
  }
}

if (!isMainThread && (workerData as TunReaderData | undefined)?.role === 'tun-reader')
  runTunReader(workerData as TunReaderData);
