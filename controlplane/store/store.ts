// The control plane's storage contract. Services see only these records and methods, never SQL:
// the SQLite implementation (sqlite.ts) is the embedded default, PostgreSQL will be the second one,
// which is why every method is async even though better-sqlite3 is synchronous.
//
// Each method is one transaction: a caller that got a result back knows the change is durable, and
// a crash can never leave half of a multi-row change behind.
import type { IpFamily } from '../pool/address.js';
import type { LeaseStore } from '../pool/lease-store.js';

export type CertificateKind = 'client' | 'server' | 'admin' | 'dataplane';
export type RuleAction = 'allow' | 'deny';

export interface UserRecord {
  id: number;
  name: string;
  displayName: string;
  disabled: boolean;
  createdAt: number;
  groups: string[];
}

export interface DeviceRecord {
  id: number;
  userId: number;
  userName: string;
  name: string;
  revoked: boolean;
  createdAt: number;
  lastSeenAt: number;
}

export interface CertificateRecord {
  serial: string;
  kind: CertificateKind;
  subjectCn: string;
  userId: number | null;
  deviceId: number | null;
  notBefore: number;
  notAfter: number;
  fingerprint: string;
  revokedAt: number | null;
  revocationReason: string;
}

export interface GroupRecord {
  id: number;
  name: string;
  description: string;
  createdAt: number;
  members: string[];
}

/** `group` is a group name, or '*' for a rule that applies to every user. */
export interface RuleRecord {
  id: number;
  group: string;
  action: RuleAction;
  prefix: string;
  protocol: number;
  portFrom: number;
  portTo: number;
  priority: number;
  description: string;
}

export type NewRule = Omit<RuleRecord, 'id'>;

export interface DataPlaneRecord {
  id: string;
  name: string;
  version: string;
  listen: string;
  workers: number;
  registeredAt: number;
  lastSeenAt: number;
}

export interface SessionReportRecord {
  id: string;
  /** Absent: no new figures (an ended session may carry none). */
  stats?: SessionStatsRecord;
  ended: boolean;
}

export interface SessionStatsRecord {
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
  rttMs: number;
  loss: number;
  fecRepairSent: number;
  fecRecovered: number;
  droppedSpoofed: number;
  droppedPolicy: number;
}

export interface SessionRecord {
  id: string;
  deviceId: number;
  userName: string;
  deviceName: string;
  dataplaneId: string;
  remoteAddress: string;
  addresses: string[];
  startedAt: number;
  updatedAt: number;
  endedAt: number | null;
  stats: SessionStatsRecord;
}

export interface LeaseRecord {
  id: number;
  address: string;
  family: IpFamily;
  deviceId: number;
  deviceName: string;
  userName: string;
  allocatedAt: number;
}

export interface UserQuery {
  /** Names strictly greater than this (keyset paging). */
  after: string;
  limit: number;
  nameContains: string;
  group: string;
  includeDisabled: boolean;
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

/** What removing a user or revoking a device took with it, for the live data planes. */
export interface Revocation {
  deviceIds: number[];
  serials: string[];
}

export type StoreEntity =
  'user' | 'device' | 'group' | 'member' | 'rule' | 'certificate' | 'session' | 'dataplane';

/** A unique constraint said no: `entity` named `key` exists already. */
export class StoreConflictError extends Error {
  constructor(
    readonly entity: StoreEntity,
    readonly key: string,
  ) {
    super(`${entity} ${JSON.stringify(key)} already exists`);
    this.name = 'StoreConflictError';
  }
}

/** A referenced row does not exist (e.g. a group named when creating a user). */
export class StoreNotFoundError extends Error {
  constructor(
    readonly entity: StoreEntity,
    readonly key: string,
  ) {
    super(`${entity} ${JSON.stringify(key)} does not exist`);
    this.name = 'StoreNotFoundError';
  }
}

export interface Store {
  /** Leases: the address pool's LeaseStore, plus listing for `pool show`. */
  readonly leases: StoreLeases;

  // users and devices
  /** User, its memberships and its first device together; StoreNotFoundError('group') if a group is missing. */
  createUser(
    user: { name: string; displayName: string; groups: string[] },
    deviceName: string,
    at: number,
  ): Promise<{ user: UserRecord; device: DeviceRecord }>;
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(query: UserQuery): Promise<{ users: UserRecord[]; total: number }>;
  setUserDisabled(name: string, disabled: boolean): Promise<UserRecord | undefined>;
  /** Deletes the user with devices, leases, memberships; revokes its certificates. */
  removeUser(name: string, at: number, reason: string): Promise<Revocation | undefined>;
  countUsers(): Promise<number>;

  createDevice(userId: number, name: string, at: number): Promise<DeviceRecord>;
  getDevice(userName: string, deviceName: string): Promise<DeviceRecord | undefined>;
  getDeviceById(id: number): Promise<DeviceRecord | undefined>;
  listDevices(userName: string | undefined, includeRevoked: boolean): Promise<DeviceRecord[]>;
  /** Marks the device revoked, revokes its certificates and releases its leases. */
  revokeDevice(id: number, at: number, reason: string): Promise<Revocation>;
  touchDevice(id: number, at: number): Promise<void>;
  countDevices(): Promise<number>;

  // certificates
  /**
   * Records a newly issued certificate; with `replaces`, revokes every other live certificate of
   * the same device in the same transaction and returns their serials.
   */
  recordCertificate(
    cert: CertificateRecord,
    replaces?: { at: number; reason: string },
  ): Promise<string[]>;
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  /** The certificate whose DER has this SHA-256 (lower-case hex), if this store recorded it. */
  getCertificateByFingerprint(fingerprint: string): Promise<CertificateRecord | undefined>;
  listCertificates(query: {
    userName?: string;
    kind?: CertificateKind;
    includeRevoked: boolean;
  }): Promise<CertificateRecord[]>;
  revokeCertificate(
    serial: string,
    at: number,
    reason: string,
  ): Promise<CertificateRecord | undefined>;
  listRevoked(): Promise<CertificateRecord[]>;
  /** The device's certificate that is not revoked (newest). */
  currentCertificate(deviceId: number): Promise<CertificateRecord | undefined>;

  // groups and policy
  createGroup(name: string, description: string, at: number): Promise<GroupRecord>;
  getGroup(name: string): Promise<GroupRecord | undefined>;
  listGroups(): Promise<GroupRecord[]>;
  deleteGroup(name: string): Promise<boolean>;
  /** StoreNotFoundError for a missing group or user, StoreConflictError('member') for a duplicate. */
  addMember(group: string, user: string): Promise<GroupRecord>;
  removeMember(group: string, user: string): Promise<GroupRecord>;
  addRule(rule: NewRule): Promise<RuleRecord>;
  removeRule(id: number): Promise<boolean>;
  listRules(group?: string): Promise<RuleRecord[]>;
  /** Rules of the user's groups and the '*' rules. */
  rulesForUser(userId: number): Promise<RuleRecord[]>;

  // settings and CA
  getSetting(key: string): Promise<string | undefined>;
  setSetting(key: string, value: string): Promise<void>;
  loadCa(): Promise<CaMaterial | undefined>;
  /** Stores the CA once; false if one exists already (the first writer wins). */
  saveCa(ca: CaMaterial, at: number): Promise<boolean>;

  // data planes, join tokens, sessions
  upsertDataPlane(dp: DataPlaneRecord): Promise<void>;
  getDataPlane(id: string): Promise<DataPlaneRecord | undefined>;
  /**
   * Ends the live sessions of earlier registrations of the data plane `name` (a restarted data
   * plane has lost them); returns how many.
   */
  endSessionsOfPrevious(name: string, currentId: string, at: number): Promise<number>;
  createJoinToken(tokenHash: string, expiresAt: number): Promise<void>;
  /** Marks the token used; false if unknown, used or expired. */
  consumeJoinToken(tokenHash: string, at: number): Promise<boolean>;

  /**
   * Starts a session: ends the device's live sessions (one live session per device), inserts the
   * new one and records the device as seen, in one transaction. Returns the sessions it ended.
   */
  startSession(session: Omit<SessionRecord, 'userName' | 'deviceName'>): Promise<SessionRecord[]>;
  updateSessionStats(id: string, stats: SessionStatsRecord, at: number): Promise<boolean>;
  /**
   * One data plane report of many sessions, applied in one transaction: stats first, then the
   * end of those that ended. Returns the ids of sessions reported live that the store does not
   * know (or knows as ended), which the data plane should close.
   */
  applySessionReports(reports: readonly SessionReportRecord[], at: number): Promise<string[]>;
  endSession(id: string, at: number): Promise<boolean>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  listSessions(query: { userName?: string; deviceId?: number }): Promise<SessionRecord[]>;

  close(): Promise<void>;
}

export interface StoreLeases extends LeaseStore {
  /** In allocation order; `after` is the last id of the previous page (0 for the first). */
  list(query: { family?: IpFamily; after: number; limit: number }): Promise<LeaseRecord[]>;
  ofDevice(deviceId: number): Promise<{ ipv4?: string; ipv6?: string }>;
}

export const EMPTY_STATS: SessionStatsRecord = Object.freeze({
  bytesIn: 0,
  bytesOut: 0,
  packetsIn: 0,
  packetsOut: 0,
  rttMs: 0,
  loss: 0,
  fecRepairSent: 0,
  fecRecovered: 0,
  droppedSpoofed: 0,
  droppedPolicy: 0,
});
