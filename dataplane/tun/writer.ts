// TUN writer thread (a worker_threads entry): drains every shard's ring round-robin and writes each
// packet to the TUN fd straight from its slot. Sleeps on the rings' shared doorbell when all are
// empty; a stop request sets the control word and rings that doorbell.

import fs from 'node:fs';
import { isMainThread, workerData } from 'node:worker_threads';
import type { DoorbellHandle } from '../ring/doorbell.js';
import { RingGroupConsumer } from '../ring/group.js';
import type { RingHandle } from '../ring/spsc.js';
import { TunStat } from './stats.js';

export interface TunWriterData {
  role: 'tun-writer';
  fd: number;
  /** Int32 word 0: non-zero = stop. */
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  toWriter: RingHandle[];
  writerBell: DoorbellHandle;
  /** Packets taken from one ring before moving to the next (default 32). */
  batch?: number;
  idleTimeoutMs?: number;
}

export function runTunWriter(data: TunWriterData): void {
  const { fd } = data;
  const control = new Int32Array(data.control);
  const stats = new Float64Array(data.stats);
  const group = new RingGroupConsumer(data.toWriter, data.writerBell);
  const batch = data.batch ?? 32;
  const idleTimeoutMs = data.idleTimeoutMs ?? 1000;

  const write = (slot: Uint8Array, length: number): void => {
    try {
      fs.writeSync(fd, slot, 0, length);
      stats[TunStat.writePackets]++;
      stats[TunStat.writeBytes] += length;
    } catch {
      // EINVAL (not an IP packet), EIO (link down), EAGAIN: the packet is lost either way.
      stats[TunStat.writeErrors]++;
    }
  };

  while (Atomics.load(control, 0) === 0) {
    if (group.drain(write, batch) > 0) continue;
    stats[TunStat.writeWaits]++;
    group.wait(idleTimeoutMs);
  }
}

if (!isMainThread && (workerData as TunWriterData | undefined)?.role === 'tun-writer')
  runTunWriter(workerData as TunWriterData);
