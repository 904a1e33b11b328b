// The control plane's state and the operations several services share: who a device is, which
// addresses and certificate it has, what its user may reach, and telling the data planes when any
// of that changes. The gRPC services (one file each) are thin translations onto this.
import { randomUUID } from 'node:crypto';
import type { AddressPools } from '../pool/index.js';
import type {
  DeviceRecord,
  RuleAction,
  RuleRecord,
  SessionRecord,
  Store,
  UserRecord,
} from '../store/store.js';
import type { Device, PolicyRule, User } from '../../proto/gen/masque/v1/common.js';
import { PolicyAction } from '../../proto/gen/masque/v1/common.js';
import type { ConfigBundle } from '../../proto/gen/masque/v1/bundles.js';
import { bundleToml, bundleUri } from './bundle.js';
import { effectivePolicy, type EffectivePolicy } from './policy.js';
import { WatchHub } from './watch.js';
import type { Pki } from './pki.js';
import { failedPrecondition, notFound } from './errors.js';

export interface FecPreference {
  enabled: boolean;
  blockSize: number;
  redundancyPercent: number;
}

/** What the daemon configuration decides (controlplane/config.ts builds it). */
export interface ControlPlaneSettings {
  /** UDP endpoints of the data planes, HOST:PORT, as clients should dial them. */
  endpoints: string[];
  serverName: string;
  templatePath: string;
  mtu: number;
  fec: FecPreference;
  /** Used until an administrator sets one with SetDefaultAction (stored, then it wins). */
  defaultAction: RuleAction;
  clientCertDays: number;
  serverCertDays: number;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const SILENT: Logger = { info() {}, warn() {}, error() {} };

const DEFAULT_ACTION_KEY = 'policy.default_action';

export class ControlPlane {
  readonly hub = new WatchHub();

  constructor(
    readonly store: Store,
    readonly pools: AddressPools,
    readonly pki: Pki,
    readonly settings: ControlPlaneSettings,
    readonly log: Logger = SILENT,
    readonly now: () => number = Date.now,
  ) {}

  // --- views -------------------------------------------------------------------------------

  async deviceView(d: DeviceRecord): Promise<Device> {
    const addresses = d.revoked ? {} : await this.store.leases.ofDevice(d.id);
    const cert = d.revoked ? undefined : await this.store.currentCertificate(d.id);
    return {
      id: d.id,
      user: d.userName,
      name: d.name,
      ipv4: addresses.ipv4 ?? '',
      ipv6: addresses.ipv6 ?? '',
      revoked: d.revoked,
      createdAtMs: d.createdAt,
      certSerial: cert?.serial ?? '',
      certNotAfterMs: cert?.notAfter ?? 0,
      lastSeenMs: d.lastSeenAt,
    };
  }

  async userView(u: UserRecord, withDevices: boolean): Promise<User> {
    const devices = withDevices ? await this.store.listDevices(u.name, true) : [];
    return {
      id: u.id,
      name: u.name,
      displayName: u.displayName,
      disabled: u.disabled,
      groups: u.groups,
      createdAtMs: u.createdAt,
      devices: await Promise.all(devices.map((d) => this.deviceView(d))),
    };
  }

  async requireUser(name: string): Promise<UserRecord> {
    const user = await this.store.getUser(name);
    if (user === undefined) {
      throw notFound(`no user "${name}"; list users with \`vpnctl user list\``);
    }
    return user;
  }

  /** The named device, or the user's only live device when `deviceName` is empty. */
  async requireDevice(userName: string, deviceName: string): Promise<DeviceRecord> {
    await this.requireUser(userName);
    if (deviceName !== '') {
      const d = await this.store.getDevice(userName, deviceName);
      if (d === undefined) {
        throw notFound(
          `user "${userName}" has no device "${deviceName}"; see \`vpnctl device list ${userName}\``,
        );
      }
      return d;
    }
    const live = await this.store.listDevices(userName, false);
    if (live.length === 1) return live[0];
    if (live.length === 0) {
      throw failedPrecondition(
        `user "${userName}" has no live device; add one with \`vpnctl device add ${userName} NAME\``,
      );
    }
    throw failedPrecondition(
      `user "${userName}" has ${live.length} devices (${live.map((d) => d.name).join(', ')}); name one with --device`,
    );
  }

  // --- certificates and bundles ---------------------------------------------------------------

  /**
   * A new client certificate for the device (fresh key, or the caller's CSR), recorded and
   * replacing (revoking) the previous one in one transaction; the revocation goes out at once.
   */
  async exportBundle(device: DeviceRecord, csrPem: string): Promise<ConfigBundle> {
    if (device.revoked) {
      throw failedPrecondition(
        `device ${device.userName}/${device.name} is revoked; add a new device with \`vpnctl device add ${device.userName} NAME\``,
      );
    }
    const addresses = await this.pools.allocate(String(device.id));
    const identity = `${device.userName}/${device.name}`;
    const issued = await this.pki.issueClient(identity, csrPem, this.settings.clientCertDays);
    const revoked = await this.store.recordCertificate(
      {
        serial: issued.serial,
        kind: 'client',
        subjectCn: identity,
        userId: device.userId,
        deviceId: device.id,
        notBefore: issued.notBefore,
        notAfter: issued.notAfter,
        fingerprint: issued.fingerprint,
        revokedAt: null,
        revocationReason: '',
      },
      { at: this.now(), reason: 'superseded by a new export' },
    );
    if (revoked.length > 0) {
      const sessions = await this.store.listSessions({ deviceId: device.id });
      await this.announceRevocation(revoked, sessions, device.id);
    }
    const s = this.settings;
    const toml = bundleToml({
      user: device.userName,
      device: device.name,
      endpoints: s.endpoints,
      serverName: s.serverName,
      templatePath: s.templatePath,
      mtu: s.mtu,
      ipv4: addresses.ipv4,
      ipv6: addresses.ipv6,
      fec: s.fec,
      caPem: this.pki.caPem,
      certPem: issued.certPem,
      keyPem: issued.keyPem,
    });
    return {
      user: device.userName,
      device: device.name,
      toml,
      uri: bundleUri(s.serverName, toml),
      fileName: `${device.userName}${device.name === 'default' ? '' : `-${device.name}`}.toml`,
      certSerial: issued.serial,
      ipv4: addresses.ipv4 ?? '',
      ipv6: addresses.ipv6 ?? '',
      revokedSerial: revoked.join(','),
    };
  }

  // --- telling the data planes ------------------------------------------------------------------

  /**
   * Certificates revoked (and the sessions that used them, fetched by the caller before the store
   * ended or deleted them): every data plane closes those sessions and forgets those serials now.
   */
  async announceRevocation(
    serials: string[],
    sessions: SessionRecord[],
    deviceId = 0,
  ): Promise<void> {
    await this.#endSessions(sessions);
    this.hub.publish({ revoked: { serials, deviceId, sessionIds: sessions.map((s) => s.id) } });
    this.log.info({ serials, sessions: sessions.length }, 'revocation announced');
  }

  /** Ends sessions and tells the data planes to close them. */
  async kick(sessions: SessionRecord[], reason: string): Promise<number> {
    if (sessions.length === 0) return 0;
    await this.#endSessions(sessions);
    this.hub.publish({ kick: { sessionIds: sessions.map((s) => s.id), reason } });
    this.log.info({ sessions: sessions.map((s) => s.id), reason }, 'sessions kicked');
    return sessions.length;
  }

  /** Tells the data planes to close sessions the store has already ended. */
  announceKick(sessions: SessionRecord[], reason: string): void {
    this.hub.publish({ kick: { sessionIds: sessions.map((s) => s.id), reason } });
  }

  async #endSessions(sessions: SessionRecord[]): Promise<void> {
    const at = this.now();
    for (const s of sessions) await this.store.endSession(s.id, at);
  }

  /**
   * After any change to rules, groups, memberships or the default: every live session gets its
   * user's new rules and routes. Computed per user, sent per session.
   */
  async pushPolicy(): Promise<void> {
    const sessions = await this.store.listSessions({});
    const byUser = new Map<string, EffectivePolicy>();
    for (const s of sessions) {
      let policy = byUser.get(s.userName);
      if (policy === undefined) {
        const user = await this.store.getUser(s.userName);
        if (user === undefined) continue;
        policy = await this.effectivePolicy(user.id);
        byUser.set(s.userName, policy);
      }
      this.hub.publish({
        policy: {
          sessionId: s.id,
          rules: policy.rules.map(ruleMessage),
          defaultAction: actionMessage(policy.defaultAction),
          routes: policy.routes,
        },
      });
    }
  }

  // --- policy ---------------------------------------------------------------------------------

  async defaultAction(): Promise<RuleAction> {
    const stored = await this.store.getSetting(DEFAULT_ACTION_KEY);
    return stored === 'allow' || stored === 'deny' ? stored : this.settings.defaultAction;
  }

  async setDefaultAction(action: RuleAction): Promise<void> {
    await this.store.setSetting(DEFAULT_ACTION_KEY, action);
  }

  async effectivePolicy(userId: number): Promise<EffectivePolicy> {
    return effectivePolicy(await this.store.rulesForUser(userId), await this.defaultAction(), {
      ipv4: this.pools.ipv4 !== undefined,
      ipv6: this.pools.ipv6 !== undefined,
    });
  }

  newSessionId(): string {
    return randomUUID();
  }
}

export function ruleMessage(r: RuleRecord): PolicyRule {
  return {
    id: r.id,
    group: r.group,
    action: actionMessage(r.action),
    prefix: r.prefix,
    protocol: r.protocol,
    portFrom: r.portFrom,
    portTo: r.portTo,
    priority: r.priority,
    description: r.description,
  };
}

export function actionMessage(a: RuleAction): PolicyAction {
  return a === 'allow' ? PolicyAction.POLICY_ACTION_ALLOW : PolicyAction.POLICY_ACTION_DENY;
}
