// Packet I/O on the client's TUN, on the main thread. The device itself (persistent, created by
// netconfig.ts) outlives this attachment. The fd is non-blocking: a poll() on [tun, eventfd] runs
// on a koffi async call (a libuv pool thread), and when the TUN is readable the main thread drains
// it with readSync until EAGAIN, handing each packet to the sink as a view of one reused buffer.
// close() wakes the poll through the eventfd, so shutdown never waits on a blocked read.
import fs from 'node:fs';
import koffi from 'koffi';
import {
  ERRNO,
  IFF_NO_PI,
  IFF_TUN,
  IFNAMSIZ,
  IFREQ_SIZE,
  POLLFD_SIZE,
  POLLIN,
  TUNSETIFF,
  libc,
} from '../dataplane/tun/libc.js';
import { ClientError } from './errors.js';
import type { OpenedDevice } from './run.js';

const EFD_NONBLOCK = 0o4000;
const EFD_CLOEXEC = 0o2000000;
/** Packets read per drain before yielding to the event loop (timers, sockets, the status socket). */
const DRAIN_BATCH = 256;

type PollAsync = (
  fds: Buffer,
  count: number,
  timeoutMs: number,
  done: (err: unknown, ready: number) => void,
) => void;

let pollAsync: PollAsync | undefined;

function poll(): PollAsync {
  if (!pollAsync) {
    const fn = koffi.load('libc.so.6').func('int poll(void *fds, unsigned long nfds, int timeout)');
    pollAsync = fn.async as PollAsync;
  }
  return pollAsync;
}

export interface TunIoCounters {
  readPackets: number;
  readBytes: number;
  readErrors: number;
  writePackets: number;
  writeBytes: number;
  writeDrops: number;
}

export class TunPacketIo implements OpenedDevice {
  readonly name: string;
  readonly counters: TunIoCounters = {
    readPackets: 0,
    readBytes: 0,
    readErrors: 0,
    writePackets: 0,
    writeBytes: 0,
    writeDrops: 0,
  };
  readonly #fd: number;
  readonly #wake: number;
  readonly #fds = Buffer.alloc(POLLFD_SIZE * 2);
  // A TUN never hands out more than its MTU, but the MTU can be raised under us; 64 KiB is safe.
  readonly #buffer = Buffer.alloc(65_536);
  #sink: ((packet: Uint8Array) => void) | undefined;
  #stopping = false;
  #polling = false;
  #stopped: (() => void) | undefined;

  private constructor(name: string, fd: number, wake: number) {
    this.name = name;
    this.#fd = fd;
    this.#wake = wake;
    this.#fds.writeInt32LE(fd, 0);
    this.#fds.writeInt16LE(POLLIN, 4);
    this.#fds.writeInt32LE(wake, POLLFD_SIZE);
    this.#fds.writeInt16LE(POLLIN, POLLFD_SIZE + 4);
  }

  /** Attaches to the TUN named `name` (created beforehand, IFF_TUN | IFF_NO_PI). */
  static attach(name: string): TunPacketIo {
    let fd: number;
    try {
      fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    } catch (err) {
      throw new ClientError(`cannot open /dev/net/tun: ${(err as NodeJS.ErrnoException).code}`);
    }
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(name, 0, IFNAMSIZ - 1, 'latin1');
    ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ);
    const c = libc();
    if (c.ioctlPointer(fd, TUNSETIFF, ifr) !== 0) {
      const errno = c.errno();
      fs.closeSync(fd);
      const why =
        errno === ERRNO.EBUSY
          ? 'another process holds it'
          : errno === ERRNO.EPERM || errno === ERRNO.EACCES
            ? 'not permitted (needs root)'
            : `errno ${errno}`;
      throw new ClientError(`cannot attach to TUN ${name}: ${why}`);
    }
    const wake = c.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake < 0) {
      fs.closeSync(fd);
      throw new ClientError(`eventfd failed: errno ${c.errno()}`);
    }
    return new TunPacketIo(name, fd, wake);
  }

  /** Starts reading; `sink` gets a view that is valid only during the call (the buffer is reused). */
  start(sink: (packet: Uint8Array) => void): void {
    this.#sink = sink;
    this.#arm();
  }

  write(packet: Uint8Array): boolean {
    try {
      fs.writeSync(this.#fd, packet);
      this.counters.writePackets++;
      this.counters.writeBytes += packet.length;
      return true;
    } catch {
      // EAGAIN (queue full) or EIO (link down): a dropped packet, as a full NIC queue would.
      this.counters.writeDrops++;
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#polling) {
      const stopped = new Promise<void>((resolve) => (this.#stopped = resolve));
      const one = Buffer.alloc(8);
      one.writeBigUInt64LE(1n);
      fs.writeSync(this.#wake, one);
      await stopped;
    }
    fs.closeSync(this.#fd);
    fs.closeSync(this.#wake);
  }

  #arm(): void {
    this.#polling = true;
    poll()(this.#fds, 2, 1000, (_err, ready) => {
      this.#polling = false;
      if (this.#stopping) {
        this.#stopped?.();
        return;
      }
      if (ready > 0 && (this.#fds.readInt16LE(6) & POLLIN) !== 0) this.#drain();
      this.#arm();
    });
  }

  #drain(): void {
    const sink = this.#sink;
    for (let i = 0; i < DRAIN_BATCH && !this.#stopping; i++) {
      let n: number;
      try {
        n = fs.readSync(this.#fd, this.#buffer, 0, this.#buffer.length, null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.counters.readErrors++;
        return;
      }
      if (n <= 0) return;
      this.counters.readPackets++;
      this.counters.readBytes += n;
      sink?.(this.#buffer.subarray(0, n));
    }
  }
}
