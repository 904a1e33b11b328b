// Sessions: live tunnels as the data planes reported them, and kicking them.
import { SessionsService, type Session } from '../../proto/gen/masque/v1/sessions.js';
import type { SessionRecord } from '../store/store.js';
import type { ControlPlane } from './control.js';
import type { Implementation } from './rpc.js';
import { invalidArgument, notFound } from './errors.js';

export function sessionMessage(s: SessionRecord): Session {
  return {
    id: s.id,
    user: s.userName,
    device: s.deviceName,
    deviceId: s.deviceId,
    dataplane: s.dataplaneId,
    remoteAddress: s.remoteAddress,
    addresses: s.addresses,
    startedAtMs: s.startedAt,
    updatedAtMs: s.updatedAt,
    stats: { ...s.stats },
  };
}

export function sessionsService(cp: ControlPlane): Implementation<typeof SessionsService> {
  return {
    async listSessions(req) {
      if (req.user !== '') await cp.requireUser(req.user);
      const sessions = await cp.store.listSessions({
        userName: req.user === '' ? undefined : req.user,
      });
      return { sessions: sessions.map(sessionMessage) };
    },
    async kickSession(req) {
      const reason = req.reason === '' ? 'kicked by an administrator' : req.reason;
      if ((req.sessionId === '') === (req.user === '')) {
        throw invalidArgument('give either a session id or a user to kick');
      }
      if (req.sessionId !== '') {
        const s = await cp.store.getSession(req.sessionId);
        if (s === undefined || s.endedAt !== null) {
          throw notFound(
            `no live session ${req.sessionId}; list them with \`vpnctl session list\``,
          );
        }
        return { kicked: await cp.kick([s], reason) };
      }
      await cp.requireUser(req.user);
      return { kicked: await cp.kick(await cp.store.listSessions({ userName: req.user }), reason) };
    },
  };
}
