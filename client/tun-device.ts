// The client's TUN packet I/O. netconfig.ts created the persistent device; this attaches to it.
// Reads happen on a worker thread (a blocking read loop must not stall QUIC on the event loop)
// that lands each packet straight in a SharedArrayBuffer ring slot; the main thread drains the
// ring in batches. Writes go straight from the main thread: a TUN write never blocks for long,
// and a rare EAGAIN is a dropped packet, as on any congested link.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { createRing, RingConsumer, RingProducer, type RingHandle } from '../dataplane/ring/spsc.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, libc, ReadableWaiter } from '../dataplane/tun/libc.js';
import { TunDevice } from '../dataplane/tun/device.js';
import type { OpenedDevice } from './run.js';

interface ReaderData {
  role: 'client-tun-reader';
  fd: number;
  stopFd: number;
  control: SharedArrayBuffer;
  ring: RingHandle;
}

/** Worker body: read until EAGAIN, poll the TUN and the stop eventfd, repeat. */
function runReader(data: ReaderData): void {
  const control = new Int32Array(data.control);
  const ring = new RingProducer(data.ring);
  const waiter = new ReadableWaiter([data.fd, data.stopFd]);
  const spare = new Uint8Array(data.ring.slotBytes);
  while (Atomics.load(control, 0) === 0) {
    const slot = ring.reserve();
    const buf = slot ?? spare;
    let n: number;
    try {
      n = fs.readSync(data.fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        waiter.wait(1000);
        continue;
      }
      if (code === 'EBADF') return;
      continue;
    }
    // With the ring full the packet was read into `spare` only to be dropped, which is what a
    // full queue means; reading it keeps the kernel's queue moving.
    if (slot !== null) ring.commit(n);
    else ring.countDrop();
  }
}

if (!isMainThread && (workerData as ReaderData | undefined)?.role === 'client-tun-reader') {
  runReader(workerData as ReaderData);
}

export class ClientTunDevice implements OpenedDevice {
  private readonly ring = createRing({ slotCount: 1024 });
  private readonly control = new SharedArrayBuffer(4);
  private readonly stopFd: number;
  private reader: Worker | undefined;
  private stopped = false;
  writeDrops = 0;

  private constructor(private readonly device: TunDevice) {
    this.stopFd = libc().eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (this.stopFd < 0) throw new Error(`eventfd failed: errno ${libc().errno()}`);
  }

  static async open(tun: string, mtu: number): Promise<ClientTunDevice> {
    return new ClientTunDevice(await TunDevice.open({ name: tun, mtu, up: true }));
  }

  start(sink: (packet: Uint8Array) => void): void {
    if (this.reader !== undefined) return;
    const data: ReaderData = {
      role: 'client-tun-reader',
      fd: this.device.fd,
      stopFd: this.stopFd,
      control: this.control,
      ring: this.ring,
    };
    this.reader = new Worker(fileURLToPath(import.meta.url), { workerData: data, execArgv: [] });
    this.reader.unref();
    void this.drain(sink);
  }

  private async drain(sink: (packet: Uint8Array) => void): Promise<void> {
    const ring = new RingConsumer(this.ring);
    while (!this.stopped) {
      const n = ring.available();
      if (n === 0) {
        await ring.waitAsync(1000);
        continue;
      }
      for (let i = 0; i < n; i++) sink(ring.slot(i).subarray(0, ring.length(i)));
      ring.release(n);
      // Let QUIC I/O run between batches.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  write(packet: Uint8Array): boolean {
    try {
      fs.writeSync(this.device.fd, packet);
      return true;
    } catch {
      this.writeDrops++;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(new Int32Array(this.control), 0, 1);
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    fs.writeSync(this.stopFd, one);
    if (this.reader !== undefined)
      await new Promise<void>((r) => this.reader?.once('exit', () => r()));
    fs.closeSync(this.stopFd);
    // Detaching from a persistent TUN leaves the device in place; netconfig removes it.
    await this.device.close();
  }
}
