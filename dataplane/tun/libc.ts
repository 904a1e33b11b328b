// The few libc calls the packet plane makes through koffi: ioctl (TUNSETIFF), eventfd and poll.
// Bound lazily, once per thread (koffi bindings are per isolate). Byte layouts are spelled out
// here because koffi sees only pointers.

import koffi from 'koffi';

export const IFNAMSIZ = 16;
/** struct ifreq is 40 bytes on 64-bit Linux: name[16] then a 24-byte union (flags at its start). */
export const IFREQ_SIZE = 40;
/** _IOW('T', 202, int): the same number on x86-64 and arm64. */
export const TUNSETIFF = 0x400454ca;
export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;

export const EFD_NONBLOCK = 0o4000;
export const EFD_CLOEXEC = 0o2000000;

export const POLLIN = 0x0001;
/** struct pollfd { int fd; short events; short revents; } */
export const POLLFD_SIZE = 8;

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EBADF: 9,
  EAGAIN: 11,
  EACCES: 13,
  EBUSY: 16,
  ENODEV: 19,
  EINVAL: 22,
} as const;

export interface Libc {
  /** ioctl(fd, request, arg) with a pointer argument; returns -1 and sets errno on failure. */
  ioctlPointer(fd: number, request: number, arg: Uint8Array): number;
  eventfd(initval: number, flags: number): number;
  /** poll over a buffer of `count` struct pollfd. */
  poll(fds: Uint8Array, count: number, timeoutMs: number): number;
  errno(): number;
}

let bound: Libc | undefined;

export function libc(): Libc {
  if (bound) return bound;
  const lib = koffi.load('libc.so.6');
  const ioctl = lib.func('int ioctl(int fd, unsigned long request, ...)');
  const eventfd = lib.func('int eventfd(unsigned int initval, int flags)');
  const poll = lib.func('int poll(void *fds, unsigned long nfds, int timeout)');
  bound = {
    ioctlPointer: (fd, request, arg) => ioctl(fd, request, 'void *', arg) as number,
    eventfd: (initval, flags) => eventfd(initval, flags) as number,
    poll: (fds, count, timeoutMs) => poll(fds, count, timeoutMs) as number,
    errno: () => koffi.errno(),
  };
  return bound;
}

/**
 * Waits until one of a fixed set of fds is readable: the TUN reader's idle wait (TUN fd plus the
 * stop eventfd). The pollfd array is allocated once.
 */
export class ReadableWaiter {
  private readonly fds: Buffer;
  private readonly count: number;

  constructor(fds: readonly number[]) {
    this.count = fds.length;
    this.fds = Buffer.alloc(POLLFD_SIZE * fds.length);
    fds.forEach((fd, i) => {
      this.fds.writeInt32LE(fd, i * POLLFD_SIZE);
      this.fds.writeInt16LE(POLLIN, i * POLLFD_SIZE + 4);
    });
  }

  /** Block up to `timeoutMs`; returns the number of ready fds (0 on timeout, -1 on error). */
  wait(timeoutMs: number): number {
    return libc().poll(this.fds, this.count, timeoutMs);
  }

  /** Whether fd number `i` (in constructor order) was reported readable by the last wait. */
  readable(i: number): boolean {
    return (this.fds.readInt16LE(i * POLLFD_SIZE + 6) & POLLIN) !== 0;
  }
}
