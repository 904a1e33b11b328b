// Starts and stops the TUN reader and writer threads for one device and one ring plane.

import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Doorbell } from '../ring/doorbell.js';
import type { RingPlaneHandle } from '../ring/plane.js';
import type { RouteTableHandle } from '../ring/route-table.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, libc } from './libc.js';
import { createTunStats, readTunStats, type TunStatName } from './stats.js';
import type { TunReaderData } from './reader.js';
import type { TunWriterData } from './writer.js';

export interface TunThreadsOptions {
  /** The TUN fd (`TunDevice.fd`); must stay open until `stop()` resolves. */
  fd: number;
  plane: RingPlaneHandle;
  routes: RouteTableHandle;
  /** Shared stats buffer (default: a new one, see `stats`). */
  stats?: SharedArrayBuffer;
  /** Writer batch per ring per round (default 32). */
  writerBatch?: number;
  /** Called if a thread exits without being asked to (it threw, or the fd went bad). */
  onUnexpectedExit?: (thread: 'tun-reader' | 'tun-writer', error: Error | undefined) => void;
}

export class TunThreadError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TunThreadError';
  }
}

export class TunThreads {
  /** Counters of both threads (see `stats.ts`); readable any time from any thread. */
  readonly stats: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly stopFd: number;
  private readonly reader: Worker;
  private readonly writer: Worker;
  private readonly writerBell: Doorbell;
  private readonly exited: Promise<void>;
  private stopping: Promise<void> | undefined;

  private constructor(options: TunThreadsOptions) {
    this.stats = options.stats ?? createTunStats();
    const control = new SharedArrayBuffer(4);
    this.control = new Int32Array(control);
    this.writerBell = new Doorbell(options.plane.writerBell);
    this.stopFd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.stopFd < 0) throw new TunThreadError(`eventfd failed: errno ${libc().errno()}`);
    const readerData: TunReaderData = {
      role: 'tun-reader',
      fd: options.fd,
      stopFd: this.stopFd,
      control,
      stats: this.stats,
      routes: options.routes,
      toShard: options.plane.toShard,
    };
    const writerData: TunWriterData = {
      role: 'tun-writer',
      fd: options.fd,
      control,
      stats: this.stats,
      toWriter: options.plane.toWriter,
      writerBell: options.plane.writerBell,
      batch: options.writerBatch,
    };
    this.reader = new Worker(new URL('./reader.js', import.meta.url), {
      workerData: readerData,
      name: 'tun-reader',
    });
    this.writer = new Worker(new URL('./writer.js', import.meta.url), {
      workerData: writerData,
      name: 'tun-writer',
    });
    const watch = (worker: Worker, thread: 'tun-reader' | 'tun-writer') => {
      let failure: Error | undefined;
      worker.on('error', (e) => (failure = e));
      return new Promise<void>((resolve) => {
        worker.once('exit', () => {
          if (this.stopping === undefined) options.onUnexpectedExit?.(thread, failure);
          resolve();
        });
      });
    };
    this.exited = Promise.all([
      watch(this.reader, 'tun-reader'),
      watch(this.writer, 'tun-writer'),
    ]).then(() => {
      fs.closeSync(this.stopFd);
    });
  }

  /** Start both threads; resolves once both run. */
  static async start(options: TunThreadsOptions): Promise<TunThreads> {
    const threads = new TunThreads(options);
    try {
      await Promise.all([onlineOf(threads.reader), onlineOf(threads.writer)]);
    } catch (e) {
      await threads.stop();
      throw e;
    }
    return threads;
  }

  /** A snapshot of the counters by name. */
  counters(): Record<TunStatName, number> {
    return readTunStats(this.stats);
  }

  /** Ask both threads to finish and wait until they have exited. Idempotent. */
  stop(): Promise<void> {
    if (this.stopping) return this.stopping;
    Atomics.store(this.control, 0, 1);
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    fs.writeSync(this.stopFd, one);
    this.writerBell.wake();
    this.stopping = this.exited;
    return this.stopping;
  }
}

function onlineOf(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) =>
      reject(new TunThreadError('TUN thread failed to start', { cause: e }));
    worker.once('error', fail);
    worker.once('online', () => {
      worker.off('error', fail);
      resolve();
    });
  });
}
