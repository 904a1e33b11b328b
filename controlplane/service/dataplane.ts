// DataPlane: what data planes call. Join (token → certificate), their configuration, Register,
// Authorize per tunnel, the Watch stream of changes, and session stats.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import {
  DataPlaneService,
  DenialReason,
  type AuthorizeResponse,
} from '../../proto/gen/masque/v1/dataplane.js';
import { PoolExhaustedError } from '../pool/index.js';
import { EMPTY_STATS, type CertificateRecord, type SessionStatsRecord } from '../store/store.js';
import { actionMessage, ruleMessage, type ControlPlane } from './control.js';
import type { Implementation, Caller } from './rpc.js';
import { invalidArgument, permissionDenied, unauthenticated } from './errors.js';
import { CertError } from './pki.js';
import { fingerprint } from '../../cert/index.js';
import type { SessionStats } from '../../proto/gen/masque/v1/sessions.js';
import * as valid from './validate.js';

const JOIN_CERT_DAYS = 365;

function denied(reason: DenialReason, message: string): AuthorizeResponse {
  return { allowed: undefined, denied: { reason, message } };
}

const CERT_DENIALS: Partial<Record<CertError['reason'], DenialReason>> = {
  malformed: DenialReason.DENIAL_REASON_BAD_CERTIFICATE,
  'unsupported-key': DenialReason.DENIAL_REASON_BAD_CERTIFICATE,
  'issuer-mismatch': DenialReason.DENIAL_REASON_UNTRUSTED_ISSUER,
  'bad-signature': DenialReason.DENIAL_REASON_UNTRUSTED_ISSUER,
  expired: DenialReason.DENIAL_REASON_CERTIFICATE_EXPIRED,
  'not-yet-valid': DenialReason.DENIAL_REASON_CERTIFICATE_NOT_YET_VALID,
  'wrong-purpose': DenialReason.DENIAL_REASON_WRONG_CERTIFICATE_KIND,
  revoked: DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED,
};

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function statsRecord(s: SessionStats | undefined): SessionStatsRecord {
  if (s === undefined) return { ...EMPTY_STATS };
  return {
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    packetsIn: s.packetsIn,
    packetsOut: s.packetsOut,
    rttMs: s.rttMs,
    loss: s.loss,
    fecRepairSent: s.fecRepairSent,
    fecRecovered: s.fecRecovered,
    droppedSpoofed: s.droppedSpoofed,
    droppedPolicy: s.droppedPolicy,
  };
}

/** The data plane's name: from its certificate over TCP, from the request over the socket. */
function dataplaneName(caller: Caller, requested: string): string {
  if (caller.role === 'dataplane') return caller.name;
  return requested === '' ? 'local' : valid.deviceName(requested);
}

export function dataplaneService(cp: ControlPlane): Implementation<typeof DataPlaneService> {
  return {
    async join(req) {
      if (req.token === '')
        throw unauthenticated('a join token is required (vpnctl dataplane token)');
      const name = valid.deviceName(req.name);
      if (req.csrPem === '')
        throw invalidArgument('a CSR (PEM) for the data plane key is required');
      if (!(await cp.store.consumeJoinToken(hashToken(req.token), cp.now()))) {
        throw permissionDenied(
          'join token unknown, already used or expired; create a new one with `vpnctl dataplane token`',
        );
      }
      const issued = await cp.pki.issueDataPlane(name, req.csrPem, JOIN_CERT_DAYS);
      await cp.store.recordCertificate({
        serial: issued.serial,
        kind: 'dataplane',
        subjectCn: name,
        userId: null,
        deviceId: null,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        fingerprint: issued.fingerprint,
        revokedAt: null,
        revocationReason: '',
      });
      cp.log.info({ dataplane: name, serial: issued.serial }, 'data plane joined');
      return { certPem: issued.certPem, caPem: cp.pki.caPem };
    },

    async getDataPlaneConfig(req, caller) {
      const s = cp.settings;
      const ips = [...new Set(s.endpoints.map(endpointHost).filter((h) => isIP(h) !== 0))];
      const issued = await cp.pki.issueServer(s.serverName, ips, req.csrPem, s.serverCertDays);
      await cp.store.recordCertificate({
        serial: issued.serial,
        kind: 'server',
        subjectCn: s.serverName,
        userId: null,
        deviceId: null,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        fingerprint: issued.fingerprint,
        revokedAt: null,
        revocationReason: '',
      });
      cp.log.info(
        { dataplane: dataplaneName(caller, req.name), serial: issued.serial },
        'server certificate issued',
      );
      const lifetime = issued.notAfter - issued.notBefore;
      return {
        serverCertPem: issued.certPem,
        serverKeyPem: issued.keyPem ?? '',
        caPem: cp.pki.caPem,
        serverName: s.serverName,
        endpoints: s.endpoints,
        pools: [cp.pools.ipv4, cp.pools.ipv6]
          .filter((p) => p !== undefined)
          .map((p) => ({ cidr: p.cidr.text, family: p.family, serverAddress: p.serverAddress })),
        mtu: s.mtu,
        fec: { ...s.fec },
        templatePath: s.templatePath,
        // Renew when two thirds of the lifetime are gone: ample margin for a data plane that is
        // down or cut off for a while.
        renewAtMs: issued.notBefore + Math.floor((lifetime * 2) / 3),
        certNotAfterMs: issued.notAfter,
      };
    },

    async register(req, caller) {
      const name = dataplaneName(caller, req.name);
      const id = randomUUID();
      const at = cp.now();
      await cp.store.upsertDataPlane({
        id,
        name,
        version: req.version,
        listen: req.listen,
        workers: req.workers,
        registeredAt: at,
        lastSeenAt: at,
      });
      const ended = await cp.store.endSessionsOfPrevious(name, id, at);
      cp.log.info({ dataplane: name, id, listen: req.listen, ended }, 'data plane registered');
      return { dataplaneId: id };
    },

    async authorize(req) {
      return authorize(cp, req.dataplaneId, req.clientCertDer, req.remoteAddress);
    },

    async watch(req, _caller, sink) {
      cp.hub.add(sink, req.dataplaneId);
      try {
        await sink.closed;
      } finally {
        cp.hub.remove(sink);
      }
    },

    async reportStats(req) {
      const unknown = await cp.store.applySessionReports(
        req.sessions.map((r) => ({
          id: r.sessionId,
          // A live session always gets its figures written (zeros when none came); an ended one
          // only those it carried, written before it is marked ended.
          ...(r.ended && r.stats === undefined ? {} : { stats: statsRecord(r.stats) }),
          ended: r.ended,
        })),
        cp.now(),
      );
      return { unknownSessionIds: unknown };
    },

    async createJoinToken(req) {
      const minutes = req.validMinutes === 0 ? 60 : Math.min(req.validMinutes, 7 * 24 * 60);
      const token = randomBytes(24).toString('base64url');
      const expiresAtMs = cp.now() + minutes * 60_000;
      await cp.store.createJoinToken(hashToken(token), expiresAtMs);
      return { token, expiresAtMs };
    },
  };
}

function endpointHost(endpoint: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(endpoint);
  if (m) return m[1];
  const i = endpoint.lastIndexOf(':');
  return i < 0 ? endpoint : endpoint.slice(0, i);
}

/**
 * The store's record of the client certificate, or the refusal. A certificate whose DER hashes to
 * a fingerprint we recorded when we signed it is ours byte for byte: one index probe and its
 * validity window stand in for the chain check, which in JavaScript cost ~4 ms of CPU per tunnel
 * setup. Anything else (a foreign or altered certificate) gets the full check, whose error names
 * the reason.
 */
async function recognize(
  cp: ControlPlane,
  der: Uint8Array,
): Promise<CertificateRecord | AuthorizeResponse> {
  const now = new Date(cp.now());
  const recorded = await cp.store.getCertificateByFingerprint(fingerprint(der));
  try {
    if (recorded !== undefined) {
      cp.pki.checkIssuedWindow(recorded, now);
      return recorded;
    }
    const info = await cp.pki.verifyClient(der, now);
    const cert = await cp.store.getCertificate(info.serial);
    if (cert === undefined) {
      return denied(
        DenialReason.DENIAL_REASON_UNKNOWN_CERTIFICATE,
        `certificate ${info.serial} was not issued by this control plane`,
      );
    }
    return cert;
  } catch (err) {
    if (err instanceof CertError) {
      const reason = CERT_DENIALS[err.reason] ?? DenialReason.DENIAL_REASON_BAD_CERTIFICATE;
      return denied(reason, `client certificate rejected: ${err.message}`);
    }
    throw err;
  }
}

/**
 * One tunnel's decision, in the order a person debugging a refusal would check: is the certificate
 * ours and valid, is it the device's current one, is the device live, is the user enabled, is there
 * an address. Each refusal names its reason; nothing secret goes into the message.
 */
export async function authorize(
  cp: ControlPlane,
  dataplaneId: string,
  der: Uint8Array,
  remoteAddress: string,
): Promise<AuthorizeResponse> {
  if (der.length === 0) {
    return denied(DenialReason.DENIAL_REASON_BAD_CERTIFICATE, 'no client certificate presented');
  }
  const cert = await recognize(cp, der);
  if ('denied' in cert) return cert;
  if (cert.kind !== 'client' || cert.deviceId === null) {
    if (cert.revokedAt !== null) {
      return denied(
        DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED,
        `certificate ${cert.serial} is revoked`,
      );
    }
    return denied(
      DenialReason.DENIAL_REASON_WRONG_CERTIFICATE_KIND,
      `certificate ${cert.serial} is a ${cert.kind} certificate, not a device's`,
    );
  }
  if (cert.revokedAt !== null) {
    return denied(
      DenialReason.DENIAL_REASON_CERTIFICATE_REVOKED,
      `certificate ${cert.serial} of ${cert.subjectCn} is revoked (${cert.revocationReason})`,
    );
  }
  const device = await cp.store.getDeviceById(cert.deviceId);
  if (device === undefined || device.revoked) {
    return denied(DenialReason.DENIAL_REASON_DEVICE_REVOKED, `device ${cert.subjectCn} is revoked`);
  }
  const user = await cp.store.getUser(device.userName);
  if (user === undefined) {
    return denied(DenialReason.DENIAL_REASON_DEVICE_REVOKED, `device ${cert.subjectCn} is removed`);
  }
  if (user.disabled) {
    return denied(DenialReason.DENIAL_REASON_USER_DISABLED, `user ${user.name} is disabled`);
  }
  let addresses;
  try {
    addresses = await cp.pools.allocate(String(device.id));
  } catch (err) {
    if (err instanceof PoolExhaustedError) {
      return denied(DenialReason.DENIAL_REASON_NO_ADDRESS, err.message);
    }
    throw err;
  }
  const policy = await cp.effectivePolicy(user.id);
  const at = cp.now();
  const sessionId = cp.newSessionId();
  // One live session per device: a reconnect replaces the previous session wherever it lives.
  const replaced = await cp.store.startSession({
    id: sessionId,
    deviceId: device.id,
    dataplaneId,
    remoteAddress,
    addresses: [addresses.ipv4, addresses.ipv6].filter((a): a is string => a !== undefined),
    startedAt: at,
    updatedAt: at,
    endedAt: null,
    stats: { ...EMPTY_STATS },
  });
  if (replaced.length > 0) cp.announceKick(replaced, 'replaced by a new connection of the device');
  return {
    allowed: {
      sessionId,
      user: user.name,
      device: device.name,
      deviceId: device.id,
      certSerial: cert.serial,
      ipv4: addresses.ipv4 ?? '',
      ipv6: addresses.ipv6 ?? '',
      routes: policy.routes,
      rules: policy.rules.map(ruleMessage),
      defaultAction: actionMessage(policy.defaultAction),
      mtu: cp.settings.mtu,
    },
    denied: undefined,
  };
}
