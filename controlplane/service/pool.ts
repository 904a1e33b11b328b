// AddressPool: the pools, their usage, and who holds which address.
import { AddressPoolService } from '../../proto/gen/masque/v1/pool.js';
import type { ControlPlane } from './control.js';
import type { Implementation } from './rpc.js';
import { invalidArgument } from './errors.js';

export function poolService(cp: ControlPlane): Implementation<typeof AddressPoolService> {
  return {
    async showPools() {
      const usage = await cp.pools.usage();
      return {
        pools: usage.map((u) => ({
          cidr: u.cidr,
          family: u.family,
          serverAddress: u.serverAddress,
          capacity: u.capacity.toString(),
          allocated: String(u.leased),
          available: (u.capacity - BigInt(u.leased)).toString(),
        })),
      };
    },
    async listLeases(req) {
      const limit = req.pageSize === 0 ? 100 : Math.min(req.pageSize, 1000);
      const after = req.pageToken === '' ? 0 : Number(req.pageToken);
      if (!Number.isSafeInteger(after) || after < 0) {
        throw invalidArgument('invalid page token; start again without one');
      }
      let family: 4 | 6 | undefined;
      if (req.pool !== '') {
        const pool = [cp.pools.ipv4, cp.pools.ipv6].find((p) => p?.cidr.text === req.pool);
        if (pool === undefined) {
          throw invalidArgument(`no pool ${req.pool}; see \`vpnctl pool show\``);
        }
        family = pool.family;
      }
      const rows = await cp.store.leases.list({ family, after, limit: limit + 1 });
      const page = rows.slice(0, limit);
      return {
        leases: page.map((l) => ({
          address: l.address,
          pool: (l.family === 4 ? cp.pools.ipv4 : cp.pools.ipv6)?.cidr.text ?? '',
          user: l.userName,
          device: l.deviceName,
          deviceId: l.deviceId,
          allocatedAtMs: l.allocatedAt,
        })),
        nextPageToken: rows.length > limit ? String(page[page.length - 1].id) : '',
      };
    },
  };
}
