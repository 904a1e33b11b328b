// Where leases live. The pool decides which address to try; the store decides, atomically, whether
// the try wins: uniqueness is the store's constraint, not the pool's bookkeeping.

import type { IpFamily } from './address.js';

export type MaybePromise<T> = T | Promise<T>;

export type LeaseConflict = 'address' | 'device';

/** An insert lost against a unique constraint: the address is taken, or the device already has a lease. */
export class LeaseConflictError extends Error {
  override readonly name = 'LeaseConflictError';
  constructor(
    readonly conflict: LeaseConflict,
    message: string,
  ) {
    super(message);
  }
}

export interface LeaseStore {
  /** The device's lease in this family (canonical address), if any. */
  find(deviceId: string, family: IpFamily): MaybePromise<string | undefined>;
  isTaken(address: string): MaybePromise<boolean>;
  /**
   * Records a lease atomically under two unique constraints, (address) and (deviceId, family).
   * Throws LeaseConflictError on either violation; any other error propagates unchanged.
   */
  insert(deviceId: string, family: IpFamily, address: string): MaybePromise<void>;
  /** Drops the device's lease in `family`, or all its leases when no family is given. */
  release(deviceId: string, family?: IpFamily): MaybePromise<void>;
  count(family: IpFamily): MaybePromise<number>;
  /** The address the next search starts from. A hint: losing or rewinding it costs probes only. */
  loadCursor(family: IpFamily): MaybePromise<string | undefined>;
  saveCursor(family: IpFamily, address: string): MaybePromise<void>;
}

/** Leases in Maps: for tests, the benchmark and single-process use without a database. */
export class MemoryLeaseStore implements LeaseStore {
  readonly #byAddress = new Map<string, string>();
  readonly #byDevice = new Map<string, string>();
  readonly #count: Record<IpFamily, number> = { 4: 0, 6: 0 };
  readonly #cursors = new Map<IpFamily, string>();

  find(deviceId: string, family: IpFamily): string | undefined {
    return this.#byDevice.get(deviceKey(deviceId, family));
  }

  isTaken(address: string): boolean {
    return this.#byAddress.has(address);
  }

  insert(deviceId: string, family: IpFamily, address: string): void {
    const key = deviceKey(deviceId, family);
    if (this.#byAddress.has(address)) {
      throw new LeaseConflictError('address', `address ${address} is already leased`);
    }
    if (this.#byDevice.has(key)) {
      throw new LeaseConflictError(
        'device',
        `device ${deviceId} already has an IPv${family} lease`,
      );
    }
    this.#byAddress.set(address, key);
    this.#byDevice.set(key, address);
    this.#count[family]++;
  }

  release(deviceId: string, family?: IpFamily): void {
    for (const f of family === undefined ? ([4, 6] as const) : [family]) {
      const key = deviceKey(deviceId, f);
      const address = this.#byDevice.get(key);
      if (address === undefined) continue;
      this.#byDevice.delete(key);
      this.#byAddress.delete(address);
      this.#count[f]--;
    }
  }

  count(family: IpFamily): number {
    return this.#count[family];
  }

  loadCursor(family: IpFamily): string | undefined {
    return this.#cursors.get(family);
  }

  saveCursor(family: IpFamily, address: string): void {
    this.#cursors.set(family, address);
  }
}

function deviceKey(deviceId: string, family: IpFamily): string {
  return `${family}|${deviceId}`;
}
