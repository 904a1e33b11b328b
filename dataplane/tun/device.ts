// A Linux TUN device: opened with TUNSETIFF (IFF_TUN | IFF_NO_PI) through koffi, configured with
// `ip` (argument arrays, never a shell string), removed on close.
//
// The fd is opened O_NONBLOCK. Reads happen on a dedicated thread (`reader.ts`) that drains the
// device until EAGAIN and then poll()s the TUN fd together with a stop eventfd: a thread blocked
// in read(2) cannot be woken by closing the fd from another thread, but poll on an eventfd can.
// Writes never meaningfully block on a TUN device, so the non-blocking flag costs the writer
// nothing.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { ERRNO, IFF_NO_PI, IFF_TUN, IFNAMSIZ, IFREQ_SIZE, libc, TUNSETIFF } from './libc.js';

export interface TunOptions {
  /** Interface name (≤ 15 bytes); empty or absent lets the kernel pick (tun0, tun1, ...). */
  name?: string;
  /** Link MTU (default 1280, the IPv6 minimum and the tunnel's default). */
  mtu?: number;
  /** Addresses with prefix, IPv4 or IPv6: `10.77.0.1/16`, `fd77::1/64`. */
  addresses?: readonly string[];
  /** Routes (prefixes) to send into the device. */
  routes?: readonly string[];
  /** Bring the link up after configuring it (default true). */
  up?: boolean;
  /** The `ip` binary (default `ip` on PATH). */
  ipCommand?: string;
}

export const DEFAULT_TUN_MTU = 1280;

export class TunError extends Error {
  /** errno name from the failing call, when there is one. */
  readonly errno: string | undefined;
  constructor(message: string, errno?: string) {
    super(message);
    this.name = 'TunError';
    this.errno = errno;
  }
}

/** /dev/net/tun is missing (no tun module, or a container without the device). */
export class TunUnavailableError extends TunError {
  constructor(detail: string, errno?: string) {
    super(`/dev/net/tun is not available: ${detail}`, errno);
    this.name = 'TunUnavailableError';
  }
}

/** Creating or configuring the device needs CAP_NET_ADMIN (run as root). */
export class TunPermissionError extends TunError {
  constructor(detail: string, errno?: string) {
    super(`not permitted (needs root / CAP_NET_ADMIN): ${detail}`, errno);
    this.name = 'TunPermissionError';
  }
}

/** The requested name belongs to another device or to a TUN someone else holds open. */
export class TunNameInUseError extends TunError {
  readonly ifname: string;
  constructor(ifname: string, errno?: string) {
    super(`interface name ${JSON.stringify(ifname)} is in use`, errno);
    this.name = 'TunNameInUseError';
    this.ifname = ifname;
  }
}

/** An `ip` command failed; carries its arguments and stderr. */
export class TunConfigError extends TunError {
  readonly args: readonly string[];
  readonly stderr: string;
  constructor(args: readonly string[], stderr: string) {
    super(`ip ${args.join(' ')}: ${stderr.trim() || 'failed'}`);
    this.name = 'TunConfigError';
    this.args = args;
    this.stderr = stderr;
  }
}

const NAME = /^[A-Za-z0-9_.-]{1,15}$/;
const PREFIX = /^[0-9A-Fa-f.:]+\/\d{1,3}$/;

function checkPrefix(cidr: string): void {
  if (!PREFIX.test(cidr)) throw new TunError(`not an address/prefix: ${JSON.stringify(cidr)}`);
}

function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < 576 || mtu > 65535)
    throw new TunError(`MTU ${mtu} outside 576..65535`);
}

function errnoName(errno: number): string {
  const entry = Object.entries(ERRNO).find(([, n]) => n === errno);
  return entry ? entry[0] : `errno ${errno}`;
}

export class TunDevice {
  /** Non-blocking fd of the device; reader and writer threads use it with fs.readSync/writeSync. */
  readonly fd: number;
  /** Interface name as the kernel knows it. */
  readonly name: string;
  private readonly ip: string;
  private closed = false;

  private constructor(fd: number, name: string, ip: string) {
    this.fd = fd;
    this.name = name;
    this.ip = ip;
  }

  /** Create the device and apply `options` (MTU, addresses, routes, link up). */
  static async open(options: TunOptions = {}): Promise<TunDevice> {
    const requested = options.name ?? '';
    if (requested !== '' && !NAME.test(requested))
      throw new TunError(`invalid interface name ${JSON.stringify(requested)}`);
    const mtu = options.mtu ?? DEFAULT_TUN_MTU;
    checkMtu(mtu);
    for (const a of options.addresses ?? []) checkPrefix(a);
    for (const r of options.routes ?? []) checkPrefix(r);

    let fd: number;
    try {
      fd = fs.openSync('/dev/net/tun', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EACCES' || err.code === 'EPERM')
        throw new TunPermissionError('open /dev/net/tun', err.code);
      throw new TunUnavailableError(err.message, err.code);
    }
    let name: string;
    try {
      name = TunDevice.setIff(fd, requested);
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    const device = new TunDevice(fd, name, options.ipCommand ?? 'ip');
    try {
      await device.setMtu(mtu);
      for (const a of options.addresses ?? []) await device.addAddress(a);
      if (options.up ?? true) await device.setUp(true);
      for (const r of options.routes ?? []) await device.addRoute(r);
    } catch (e) {
      await device.close();
      throw e;
    }
    return device;
  }

  private static setIff(fd: number, requested: string): string {
    const ifr = Buffer.alloc(IFREQ_SIZE);
    ifr.write(requested, 0, IFNAMSIZ - 1, 'latin1');
    ifr.writeUInt16LE(IFF_TUN | IFF_NO_PI, IFNAMSIZ);
    const c = libc();
    if (c.ioctlPointer(fd, TUNSETIFF, ifr) !== 0) {
      const errno = c.errno();
      const code = errnoName(errno);
      if (errno === ERRNO.EPERM || errno === ERRNO.EACCES)
        throw new TunPermissionError('TUNSETIFF', code);
      // EBUSY: a TUN of that name is attached elsewhere; EINVAL: the name is a non-TUN device.
      if (requested !== '' && (errno === ERRNO.EBUSY || errno === ERRNO.EINVAL))
        throw new TunNameInUseError(requested, code);
      throw new TunError(`TUNSETIFF failed: ${code}`, code);
    }
    const end = ifr.indexOf(0);
    return ifr.toString('latin1', 0, end < 0 || end > IFNAMSIZ ? IFNAMSIZ : end);
  }

  async setMtu(mtu: number): Promise<void> {
    checkMtu(mtu);
    await this.run(['link', 'set', 'dev', this.name, 'mtu', String(mtu)]);
  }

  async setUp(up: boolean): Promise<void> {
    await this.run(['link', 'set', 'dev', this.name, up ? 'up' : 'down']);
  }

  /** Add `address/prefix`. IPv6 skips duplicate address detection (a TUN has no neighbours). */
  async addAddress(cidr: string): Promise<void> {
    checkPrefix(cidr);
    const v6 = cidr.includes(':');
    await this.run(
      v6
        ? ['-6', 'addr', 'add', cidr, 'dev', this.name, 'nodad']
        : ['addr', 'add', cidr, 'dev', this.name],
    );
  }

  async removeAddress(cidr: string): Promise<void> {
    checkPrefix(cidr);
    await this.run([cidr.includes(':') ? '-6' : '-4', 'addr', 'del', cidr, 'dev', this.name]);
  }

  /** Route `prefix` into the device (`ip route replace`, so re-adding is not an error). */
  async addRoute(prefix: string, options: { metric?: number } = {}): Promise<void> {
    checkPrefix(prefix);
    const args = [prefix.includes(':') ? '-6' : '-4', 'route', 'replace', prefix, 'dev', this.name];
    if (options.metric !== undefined) args.push('metric', String(options.metric));
    await this.run(args);
  }

  async removeRoute(prefix: string): Promise<void> {
    checkPrefix(prefix);
    await this.run([prefix.includes(':') ? '-6' : '-4', 'route', 'del', prefix, 'dev', this.name]);
  }

  /**
   * Close the fd, which removes the (non-persistent) device with its addresses and routes; then
   * make sure it is gone. Stop the reader and writer threads first: a thread still using the fd
   * would see EBADF, or worse, a reused fd number.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    fs.closeSync(this.fd);
    try {
      await this.run(['link', 'delete', 'dev', this.name]);
    } catch (e) {
      // Expected: closing the last fd already removed it.
      if (!(e instanceof TunConfigError && /does not exist|Cannot find/.test(e.stderr))) throw e;
    }
  }

  private run(args: string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      execFile(this.ip, args, { timeout: 10_000 }, (error, _stdout, stderr) => {
        if (!error) return resolve();
        const text = String(stderr);
        if (/Operation not permitted/.test(text))
          return reject(new TunPermissionError(`ip ${args.join(' ')}`, 'EPERM'));
        reject(new TunConfigError(args, text || error.message));
      });
    });
  }
}
