// The pools a control plane serves from: at most one per family, allocated together per device.

import { InvalidCidrError, parseCidr, type IpFamily } from './address.js';
import type { LeaseStore } from './lease-store.js';
import { AddressPool, type PoolUsage } from './pool.js';

export interface PoolConfig {
  readonly ipv4?: string;
  readonly ipv6?: string;
}

export interface DeviceAddresses {
  ipv4?: string;
  ipv6?: string;
}

export class AddressPools {
  readonly ipv4: AddressPool | undefined;
  readonly ipv6: AddressPool | undefined;
  readonly #store: LeaseStore;

  constructor(config: PoolConfig, store: LeaseStore) {
    this.#store = store;
    this.ipv4 = config.ipv4 === undefined ? undefined : poolOf(config.ipv4, 4, store);
    this.ipv6 = config.ipv6 === undefined ? undefined : poolOf(config.ipv6, 6, store);
    if (this.ipv4 === undefined && this.ipv6 === undefined) {
      throw new InvalidCidrError('', 'configure at least one address pool (IPv4 or IPv6)');
    }
  }

  /**
   * Both addresses of a device, each sticky. Not atomic across families: if IPv6 is exhausted the
   * IPv4 lease stays (the device gets it back next time), and the error propagates.
   */
  async allocate(deviceId: string): Promise<DeviceAddresses> {
    const addresses: DeviceAddresses = {};
    if (this.ipv4 !== undefined) addresses.ipv4 = await this.ipv4.allocate(deviceId);
    if (this.ipv6 !== undefined) addresses.ipv6 = await this.ipv6.allocate(deviceId);
    return addresses;
  }

  async lookup(deviceId: string): Promise<DeviceAddresses> {
    const addresses: DeviceAddresses = {};
    const v4 = await this.ipv4?.lookup(deviceId);
    const v6 = await this.ipv6?.lookup(deviceId);
    if (v4 !== undefined) addresses.ipv4 = v4;
    if (v6 !== undefined) addresses.ipv6 = v6;
    return addresses;
  }

  /** Frees every lease of the device, including ones left over from an earlier pool configuration. */
  async release(deviceId: string): Promise<void> {
    // The family-less release drops both families in one call (one statement in SQL).
    await this.#store.release(deviceId);
  }

  async usage(): Promise<PoolUsage[]> {
    const usage: PoolUsage[] = [];
    for (const pool of [this.ipv4, this.ipv6])
      if (pool !== undefined) usage.push(await pool.usage());
    return usage;
  }
}

function poolOf(cidr: string, family: IpFamily, store: LeaseStore): AddressPool {
  if (parseCidr(cidr).family !== family) {
    throw new InvalidCidrError(cidr, `expected an IPv${family} prefix for the IPv${family} pool`);
  }
  return new AddressPool(cidr, store);
}
