// One address pool (one CIDR, one family): sticky next-fit allocation over a LeaseStore. The pool
// keeps four bigints whatever its size; leases live only in the store.

import {
  type Cidr,
  type IpFamily,
  addressBits,
  cidrSize,
  formatAddress,
  InvalidAddressError,
  InvalidCidrError,
  parseAddress,
  parseCidr,
} from './address.js';
import { LeaseConflictError, type LeaseStore } from './lease-store.js';

export class PoolExhaustedError extends Error {
  override readonly name = 'PoolExhaustedError';
  constructor(
    readonly pool: string,
    capacity: bigint,
  ) {
    super(`address pool ${pool} is exhausted: all ${capacity} client addresses are leased`);
  }
}

export interface PoolUsage {
  readonly cidr: string;
  readonly family: IpFamily;
  readonly serverAddress: string;
  /** Addresses a device can get. */
  readonly capacity: bigint;
  readonly leased: number;
}

// A pool needs room for the server and at least one client besides network (and broadcast).
const LONGEST_PREFIX: Record<IpFamily, number> = { 4: 30, 6: 126 };

export class AddressPool {
  readonly family: IpFamily;
  readonly cidr: Cidr;
  readonly serverAddress: string;
  /** A client's address is ADDRESS/hostPrefixLength. */
  readonly hostPrefixLength: number;
  readonly capacity: bigint;

  readonly #store: LeaseStore;
  readonly #first: bigint;
  readonly #last: bigint;
  #cursor: bigint | undefined;
  #cursorLoad: Promise<void> | undefined;
  readonly #pending = new Map<string, Promise<string>>();

  constructor(cidr: string, store: LeaseStore) {
    this.cidr = parseCidr(cidr);
    this.family = this.cidr.family;
    if (this.cidr.prefixLength > LONGEST_PREFIX[this.family]) {
      throw new InvalidCidrError(
        cidr,
        `too small for a pool: IPv${this.family} pools need a prefix of /${LONGEST_PREFIX[this.family]} or shorter`,
      );
    }
    this.hostPrefixLength = addressBits(this.family);
    const size = cidrSize(this.cidr);
    this.serverAddress = formatAddress(this.family, this.cidr.network + 1n);
    this.#first = this.cidr.network + 2n;
    // IPv4 keeps its broadcast address out; IPv6 has none (only the subnet-router anycast at the bottom).
    this.#last = this.cidr.network + size - (this.family === 4 ? 2n : 1n);
    this.capacity = this.#last - this.#first + 1n;
    this.#store = store;
  }

  /** The address is inside the pool's prefix (including network, server and broadcast). */
  contains(address: string): boolean {
    const parsed = tryParse(address);
    if (parsed === undefined || parsed.family !== this.family) return false;
    return (
      parsed.value >= this.cidr.network && parsed.value < this.cidr.network + cidrSize(this.cidr)
    );
  }

  /** The address is one the pool could hand to a device. */
  isAssignable(address: string): boolean {
    const parsed = tryParse(address);
    if (parsed === undefined || parsed.family !== this.family) return false;
    return parsed.value >= this.#first && parsed.value <= this.#last;
  }

  /** The device's address in this pool: its existing lease, or a new one. */
  allocate(deviceId: string): Promise<string> {
    if (typeof deviceId !== 'string' || deviceId.length === 0) {
      return Promise.reject(new TypeError('deviceId must be a non-empty string'));
    }
    // Concurrent calls for one device share the work, so they cannot race each other for two leases.
    const pending = this.#pending.get(deviceId);
    if (pending !== undefined) return pending;
    const allocation = this.#allocate(deviceId).finally(() => this.#pending.delete(deviceId));
    this.#pending.set(deviceId, allocation);
    return allocation;
  }

  async lookup(deviceId: string): Promise<string | undefined> {
    const address = await this.#store.find(deviceId, this.family);
    return address !== undefined && this.isAssignable(address) ? address : undefined;
  }

  async release(deviceId: string): Promise<void> {
    await this.#store.release(deviceId, this.family);
  }

  async usage(): Promise<PoolUsage> {
    return {
      cidr: this.cidr.text,
      family: this.family,
      serverAddress: this.serverAddress,
      capacity: this.capacity,
      leased: await this.#store.count(this.family),
    };
  }

  async #allocate(deviceId: string): Promise<string> {
    const store = this.#store;
    const current = await store.find(deviceId, this.family);
    if (current !== undefined) {
      if (this.isAssignable(current)) return current;
      // Left over from a different pool configuration: the device moves into the current pool.
      await store.release(deviceId, this.family);
    }
    await this.#loadCursor();

    // A concurrent release can free an address behind probes already made; one more round
    // after a failed one catches that without looping forever on a pool that is really full.
    for (let round = 0; round < 2; round++) {
      if (BigInt(await store.count(this.family)) >= this.capacity) break;
      for (let probe = 0n; probe < this.capacity; probe++) {
        const address = formatAddress(this.family, this.#nextCandidate());
        if (await store.isTaken(address)) continue;
        try {
          await store.insert(deviceId, this.family, address);
        } catch (err) {
          if (!(err instanceof LeaseConflictError)) throw err;
          if (err.conflict === 'address') continue;
          // Another allocation for this device (another process) won: that lease is the answer.
          const winner = await store.find(deviceId, this.family);
          if (winner !== undefined) return winner;
          continue;
        }
        await store.saveCursor(
          this.family,
          formatAddress(this.family, this.#cursor ?? this.#first),
        );
        return address;
      }
    }
    throw new PoolExhaustedError(this.cidr.text, this.capacity);
  }

  /** Hands out the cursor and advances it synchronously, so interleaved callers probe different addresses. */
  #nextCandidate(): bigint {
    const candidate = this.#cursor ?? this.#first;
    this.#cursor = candidate >= this.#last ? this.#first : candidate + 1n;
    return candidate;
  }

  #loadCursor(): Promise<void> {
    this.#cursorLoad ??= (async () => {
      const saved = await this.#store.loadCursor(this.family);
      // Another caller may have started probing while the load was in flight; its cursor wins.
      if (this.#cursor !== undefined) return;
      const parsed = saved === undefined ? undefined : tryParse(saved);
      this.#cursor =
        parsed !== undefined &&
        parsed.family === this.family &&
        parsed.value >= this.#first &&
        parsed.value <= this.#last
          ? parsed.value
          : this.#first;
    })().catch((err: unknown) => {
      this.#cursorLoad = undefined; // a failed read is retried by the next allocation
      throw err;
    });
    return this.#cursorLoad;
  }
}

function tryParse(address: string): { family: IpFamily; value: bigint } | undefined {
  try {
    return parseAddress(address);
  } catch (err) {
    if (err instanceof InvalidAddressError) return undefined;
    throw err;
  }
}
