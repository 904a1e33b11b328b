// Users, Devices and ConfigBundles: people, the devices they connect with, and their bundles.
import { UsersService } from '../../proto/gen/masque/v1/users.js';
import { DevicesService } from '../../proto/gen/masque/v1/devices.js';
import { ConfigBundlesService } from '../../proto/gen/masque/v1/bundles.js';
import type { ControlPlane } from './control.js';
import type { Implementation } from './rpc.js';
import { failedPrecondition, invalidArgument } from './errors.js';
import * as valid from './validate.js';

const MAX_PAGE = 1000;

export function usersService(cp: ControlPlane): Implementation<typeof UsersService> {
  return {
    async addUser(req) {
      const name = valid.userName(req.name);
      const deviceName = valid.deviceName(req.deviceName === '' ? 'default' : req.deviceName);
      const groups = [...new Set(req.groups.map(valid.groupName))];
      if (req.displayName.length > 200) throw invalidArgument('display name longer than 200');
      const { user, device } = await cp.store.createUser(
        { name, displayName: req.displayName, groups },
        deviceName,
        cp.now(),
      );
      // Addresses come after the user's own transaction (the pool probes across awaits). If the
      // pool is full the user is taken back out, so a failed add leaves nothing behind. (A crash
      // between the two leaves a user without a lease; its next export or Authorize allocates.)
      try {
        await cp.pools.allocate(String(device.id));
      } catch (err) {
        await cp.store.removeUser(name, cp.now(), 'address allocation failed');
        throw err;
      }
      const bundle = req.bundle ? await cp.exportBundle(device, '') : undefined;
      cp.log.info({ user: name, device: deviceName }, 'user added');
      return {
        user: await cp.userView(user, true),
        device: await cp.deviceView(device),
        bundle,
      };
    },

    async getUser(req) {
      return cp.userView(await cp.requireUser(req.name), true);
    },

    async listUsers(req) {
      const limit = req.pageSize === 0 ? 100 : Math.min(req.pageSize, MAX_PAGE);
      let after = '';
      if (req.pageToken !== '') {
        after = Buffer.from(req.pageToken, 'base64url').toString('utf8');
        if (after === '') throw invalidArgument('invalid page token; start again without one');
      }
      const { users, total } = await cp.store.listUsers({
        after,
        limit: limit + 1,
        nameContains: req.nameContains,
        group: req.group,
        includeDisabled: req.includeDisabled,
      });
      const page = users.slice(0, limit);
      const more = users.length > limit;
      return {
        users: await Promise.all(page.map((u) => cp.userView(u, true))),
        nextPageToken: more ? Buffer.from(page[page.length - 1].name).toString('base64url') : '',
        total,
      };
    },

    async disableUser(req) {
      const user =
        (await cp.store.setUserDisabled(req.name, true)) ?? (await cp.requireUser(req.name));
      await cp.kick(await cp.store.listSessions({ userName: req.name }), 'user disabled');
      return cp.userView(user, true);
    },

    async enableUser(req) {
      const user =
        (await cp.store.setUserDisabled(req.name, false)) ?? (await cp.requireUser(req.name));
      return cp.userView(user, true);
    },

    async removeUser(req) {
      await cp.requireUser(req.name);
      const sessions = await cp.store.listSessions({ userName: req.name });
      const removed = await cp.store.removeUser(req.name, cp.now(), 'user removed');
      if (removed === undefined) await cp.requireUser(req.name);
      await cp.announceRevocation(removed?.serials ?? [], sessions);
      cp.log.info({ user: req.name }, 'user removed');
      return {};
    },
  };
}

export function devicesService(cp: ControlPlane): Implementation<typeof DevicesService> {
  return {
    async addDevice(req) {
      const user = await cp.requireUser(req.user);
      const name = valid.deviceName(req.name === '' ? 'default' : req.name);
      const device = await cp.store.createDevice(user.id, name, cp.now());
      await cp.pools.allocate(String(device.id));
      const bundle = req.bundle ? await cp.exportBundle(device, '') : undefined;
      return { device: await cp.deviceView(device), bundle };
    },

    async listDevices(req) {
      if (req.user !== '') await cp.requireUser(req.user);
      const devices = await cp.store.listDevices(
        req.user === '' ? undefined : req.user,
        req.includeRevoked,
      );
      return { devices: await Promise.all(devices.map((d) => cp.deviceView(d))) };
    },

    async revokeDevice(req) {
      if (req.device === '') throw invalidArgument('name the device to revoke');
      const device = await cp.requireDevice(req.user, req.device);
      if (device.revoked) {
        throw failedPrecondition(`device ${req.user}/${req.device} is already revoked`);
      }
      const sessions = await cp.store.listSessions({ deviceId: device.id });
      const rev = await cp.store.revokeDevice(
        device.id,
        cp.now(),
        req.reason === '' ? 'device revoked' : req.reason,
      );
      await cp.announceRevocation(rev.serials, sessions, device.id);
      return cp.deviceView((await cp.store.getDeviceById(device.id)) ?? device);
    },
  };
}

export function bundlesService(cp: ControlPlane): Implementation<typeof ConfigBundlesService> {
  return {
    async exportBundle(req) {
      const device = await cp.requireDevice(req.user, req.device);
      return cp.exportBundle(device, req.csrPem);
    },
  };
}
