// The embedded store: one SQLite file under the data directory, through better-sqlite3.
//
// Durability: WAL with synchronous=FULL. In WAL mode NORMAL already survives kill -9 (a commit is
// in the WAL through write(2), and the kernel keeps it when the process dies) but may lose the last
// commits on power loss or a kernel crash; FULL fsyncs the WAL on every commit, so an acknowledged
// write survives those too. The cost is one fsync per transaction, which the control plane's write
// rate (people and devices, not packets) can afford. `synchronous: 'normal'` is an option for
// benchmarks on slow disks.
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { LeaseConflictError } from '../pool/lease-store.js';
import type { IpFamily } from '../pool/address.js';
import { MIGRATIONS } from './migrations.js';
import {
  EMPTY_STATS,
  StoreConflictError,
  StoreNotFoundError,
  type CaMaterial,
  type CertificateKind,
  type CertificateRecord,
  type DataPlaneRecord,
  type DeviceRecord,
  type GroupRecord,
  type LeaseRecord,
  type NewRule,
  type Revocation,
  type RuleAction,
  type RuleRecord,
  type SessionRecord,
  type SessionReportRecord,
  type SessionStatsRecord,
  type Store,
  type StoreLeases,
  type UserQuery,
  type UserRecord,
} from './store.js';

export interface SqliteStoreOptions {
  /** File path, or ':memory:' for tests. */
  path: string;
  synchronous?: 'full' | 'normal';
}

interface UserRow {
  id: number;
  name: string;
  display_name: string;
  disabled: number;
  created_at: number;
  groups: string | null;
}

interface DeviceRow {
  id: number;
  user_id: number;
  user_name: string;
  name: string;
  revoked: number;
  created_at: number;
  last_seen_at: number;
}

interface CertRow {
  serial: string;
  kind: CertificateKind;
  subject_cn: string;
  user_id: number | null;
  device_id: number | null;
  not_before: number;
  not_after: number;
  fingerprint: string;
  revoked_at: number | null;
  revocation_reason: string;
}

interface RuleRow {
  id: number;
  group_name: string | null;
  action: RuleAction;
  prefix: string;
  protocol: number;
  port_from: number;
  port_to: number;
  priority: number;
  description: string;
}

interface SessionRow {
  id: string;
  device_id: number;
  user_name: string;
  device_name: string;
  dataplane_id: string;
  remote_address: string;
  addresses: string;
  started_at: number;
  updated_at: number;
  ended_at: number | null;
  stats: string;
}

interface LeaseRow {
  id: number;
  address: string;
  family: IpFamily;
  device_id: number;
  device_name: string;
  user_name: string;
  allocated_at: number;
}

const USER_SELECT = `
  SELECT u.id, u.name, u.display_name, u.disabled, u.created_at,
    (SELECT json_group_array(g.name) FROM group_members m JOIN groups g ON g.id = m.group_id
      WHERE m.user_id = u.id) AS groups
  FROM users u`;

const DEVICE_SELECT = `
  SELECT d.id, d.user_id, u.name AS user_name, d.name, d.revoked, d.created_at, d.last_seen_at
  FROM devices d JOIN users u ON u.id = d.user_id`;

const RULE_SELECT = `
  SELECT r.id, g.name AS group_name, r.action, r.prefix, r.protocol, r.port_from, r.port_to,
    r.priority, r.description
  FROM policy_rules r LEFT JOIN groups g ON g.id = r.group_id`;

const SESSION_SELECT = `
  SELECT s.*, u.name AS user_name, d.name AS device_name
  FROM sessions s JOIN devices d ON d.id = s.device_id JOIN users u ON u.id = d.user_id`;

export class SqliteStore implements Store {
  readonly #db: Db;
  readonly leases: SqliteLeases;
  readonly #stmt: ReturnType<typeof prepare>;
  readonly #synchronous: 'FULL' | 'NORMAL';

  constructor(options: SqliteStoreOptions) {
    this.#db = new Database(options.path);
    const db = this.#db;
    this.#synchronous = options.synchronous === 'normal' ? 'NORMAL' : 'FULL';
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${this.#synchronous}`);
    db.pragma('foreign_keys = ON');
    // Another process holding the write lock (vpnctl never opens the DB, but a second control
    // plane by mistake might) is waited for rather than failed at once.
    db.pragma('busy_timeout = 5000');
    migrate(db);
    this.#stmt = prepare(db);
    this.leases = new SqliteLeases(db);
  }

  /**
   * Runs a write of live-only state (sessions, last-seen times, data-plane registrations) without
   * an fsync of its own. It still survives kill -9 (WAL mode writes the commit before returning);
   * only a power loss could drop it, and a power loss ends every session anyway. The next FULL
   * commit makes it durable too. This keeps Authorize, which writes a session each time, off the
   * disk's flush latency.
   */
  #relaxed<T>(write: () => T): T {
    if (this.#synchronous === 'NORMAL') return write();
    this.#db.pragma('synchronous = NORMAL');
    try {
      return write();
    } finally {
      this.#db.pragma('synchronous = FULL');
    }
  }

  /** Schema version after migrations (for tests and diagnostics). */
  get schemaVersion(): number {
    return this.#db.pragma('user_version', { simple: true }) as number;
  }

  // users and devices

  async createUser(
    user: { name: string; displayName: string; groups: string[] },
    deviceName: string,
    at: number,
  ): Promise<{ user: UserRecord; device: DeviceRecord }> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      const groupIds = user.groups.map((g) => {
        const row = s.groupId.get(g) as { id: number } | undefined;
        if (row === undefined) throw new StoreNotFoundError('group', g);
        return row.id;
      });
      let userId: number;
      try {
        userId = Number(s.insertUser.run(user.name, user.displayName, at).lastInsertRowid);
      } catch (err) {
        throw mapUnique(err, 'user', user.name);
      }
      for (const gid of new Set(groupIds)) s.insertMember.run(gid, userId);
      const deviceId = Number(s.insertDevice.run(userId, deviceName, at).lastInsertRowid);
      return {
        user: toUser(s.userById.get(userId) as UserRow),
        device: toDevice(s.deviceById.get(deviceId) as DeviceRow),
      };
    })();
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    const row = this.#stmt.userByName.get(name) as UserRow | undefined;
    return row && toUser(row);
  }

  async listUsers(q: UserQuery): Promise<{ users: UserRecord[]; total: number }> {
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    if (!q.includeDisabled) where.push('u.disabled = 0');
    if (q.nameContains !== '') {
      where.push('instr(u.name, @contains) > 0');
      params.contains = q.nameContains;
    }
    if (q.group !== '') {
      where.push(
        'EXISTS (SELECT 1 FROM group_members m JOIN groups g ON g.id = m.group_id WHERE m.user_id = u.id AND g.name = @group)',
      );
      params.group = q.group;
    }
    const filter = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    return this.#db.transaction(() => {
      const total = (
        this.#db.prepare(`SELECT count(*) AS n FROM users u ${filter}`).get(params) as { n: number }
      ).n;
      const page = [...where, 'u.name > @after'];
      const rows = this.#db
        .prepare(`${USER_SELECT} WHERE ${page.join(' AND ')} ORDER BY u.name LIMIT @limit`)
        .all({ ...params, after: q.after, limit: q.limit }) as UserRow[];
      return { users: rows.map(toUser), total };
    })();
  }

  async setUserDisabled(name: string, disabled: boolean): Promise<UserRecord | undefined> {
    const info = this.#stmt.setDisabled.run(disabled ? 1 : 0, name);
    if (info.changes === 0) return undefined;
    return toUser(this.#stmt.userByName.get(name) as UserRow);
  }

  async removeUser(name: string, at: number, reason: string): Promise<Revocation | undefined> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      const user = s.userByName.get(name) as UserRow | undefined;
      if (user === undefined) return undefined;
      const deviceIds = (s.deviceIdsOfUser.all(user.id) as { id: number }[]).map((r) => r.id);
      const serials = (s.liveSerialsOfUser.all(user.id) as { serial: string }[]).map(
        (r) => r.serial,
      );
      s.revokeUserCerts.run(at, reason, user.id);
      // Cascades: devices → leases and sessions; memberships. Certificates keep their rows.
      s.deleteUser.run(user.id);
      return { deviceIds, serials };
    })();
  }

  async countUsers(): Promise<number> {
    return (this.#stmt.countUsers.get() as { n: number }).n;
  }

  async createDevice(userId: number, name: string, at: number): Promise<DeviceRecord> {
    try {
      const id = Number(this.#stmt.insertDevice.run(userId, name, at).lastInsertRowid);
      return toDevice(this.#stmt.deviceById.get(id) as DeviceRow);
    } catch (err) {
      throw mapUnique(err, 'device', name);
    }
  }

  async getDevice(userName: string, deviceName: string): Promise<DeviceRecord | undefined> {
    const row = this.#stmt.deviceByName.get(userName, deviceName) as DeviceRow | undefined;
    return row && toDevice(row);
  }

  async getDeviceById(id: number): Promise<DeviceRecord | undefined> {
    const row = this.#stmt.deviceById.get(id) as DeviceRow | undefined;
    return row && toDevice(row);
  }

  async listDevices(
    userName: string | undefined,
    includeRevoked: boolean,
  ): Promise<DeviceRecord[]> {
    const rows = this.#stmt.listDevices.all({
      user: userName ?? null,
      revoked: includeRevoked ? 1 : 0,
    }) as DeviceRow[];
    return rows.map(toDevice);
  }

  async revokeDevice(id: number, at: number, reason: string): Promise<Revocation> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      const serials = (s.liveSerialsOfDevice.all(id) as { serial: string }[]).map((r) => r.serial);
      s.revokeDeviceCerts.run(at, reason, id);
      s.markDeviceRevoked.run(id);
      s.releaseLeases.run(id);
      s.endSessionsOfDevice.run(at, id);
      return { deviceIds: [id], serials };
    })();
  }

  async touchDevice(id: number, at: number): Promise<void> {
    this.#relaxed(() => this.#stmt.touchDevice.run(at, id));
  }

  async countDevices(): Promise<number> {
    return (this.#stmt.countDevices.get() as { n: number }).n;
  }

  // certificates

  async recordCertificate(
    cert: CertificateRecord,
    replaces?: { at: number; reason: string },
  ): Promise<string[]> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      let revoked: string[] = [];
      if (replaces !== undefined && cert.deviceId !== null) {
        revoked = (s.liveSerialsOfDevice.all(cert.deviceId) as { serial: string }[]).map(
          (r) => r.serial,
        );
        s.revokeDeviceCerts.run(replaces.at, replaces.reason, cert.deviceId);
      }
      try {
        s.insertCert.run(fromCert(cert));
      } catch (err) {
        throw mapUnique(err, 'certificate', cert.serial);
      }
      return revoked;
    })();
  }

  async getCertificate(serial: string): Promise<CertificateRecord | undefined> {
    const row = this.#stmt.certBySerial.get(serial) as CertRow | undefined;
    return row && toCert(row);
  }

  async getCertificateByFingerprint(fingerprint: string): Promise<CertificateRecord | undefined> {
    const row = this.#stmt.certByFingerprint.get(fingerprint) as CertRow | undefined;
    return row && toCert(row);
  }

  async listCertificates(q: {
    userName?: string;
    kind?: CertificateKind;
    includeRevoked: boolean;
  }): Promise<CertificateRecord[]> {
    const rows = this.#stmt.listCerts.all({
      user: q.userName ?? null,
      kind: q.kind ?? null,
      revoked: q.includeRevoked ? 1 : 0,
    }) as CertRow[];
    return rows.map(toCert);
  }

  async revokeCertificate(
    serial: string,
    at: number,
    reason: string,
  ): Promise<CertificateRecord | undefined> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      const row = s.certBySerial.get(serial) as CertRow | undefined;
      if (row === undefined) return undefined;
      if (row.revoked_at === null) s.revokeCert.run(at, reason, serial);
      return toCert(s.certBySerial.get(serial) as CertRow);
    })();
  }

  async listRevoked(): Promise<CertificateRecord[]> {
    return (this.#stmt.listRevoked.all() as CertRow[]).map(toCert);
  }

  async currentCertificate(deviceId: number): Promise<CertificateRecord | undefined> {
    const row = this.#stmt.currentCert.get(deviceId) as CertRow | undefined;
    return row && toCert(row);
  }

  // groups and policy

  async createGroup(name: string, description: string, at: number): Promise<GroupRecord> {
    try {
      this.#stmt.insertGroup.run(name, description, at);
    } catch (err) {
      throw mapUnique(err, 'group', name);
    }
    return (await this.getGroup(name)) as GroupRecord;
  }

  async getGroup(name: string): Promise<GroupRecord | undefined> {
    return this.#db.transaction(() => {
      const row = this.#stmt.groupByName.get(name) as
        { id: number; name: string; description: string; created_at: number } | undefined;
      if (row === undefined) return undefined;
      const members = (this.#stmt.membersOf.all(row.id) as { name: string }[]).map((r) => r.name);
      return {
        id: row.id,
        name: row.name,
        description: row.description,
        createdAt: row.created_at,
        members,
      };
    })();
  }

  async listGroups(): Promise<GroupRecord[]> {
    const rows = this.#stmt.listGroups.all() as {
      id: number;
      name: string;
      description: string;
      created_at: number;
      members: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      description: r.description,
      createdAt: r.created_at,
      members: (JSON.parse(r.members) as (string | null)[]).filter((m): m is string => m !== null),
    }));
  }

  async deleteGroup(name: string): Promise<boolean> {
    return this.#stmt.deleteGroup.run(name).changes > 0;
  }

  async addMember(group: string, user: string): Promise<GroupRecord> {
    const s = this.#stmt;
    this.#db.transaction(() => {
      const g = s.groupId.get(group) as { id: number } | undefined;
      if (g === undefined) throw new StoreNotFoundError('group', group);
      const u = s.userByName.get(user) as UserRow | undefined;
      if (u === undefined) throw new StoreNotFoundError('user', user);
      try {
        s.insertMember.run(g.id, u.id);
      } catch (err) {
        throw mapUnique(err, 'member', `${user} in ${group}`);
      }
    })();
    return (await this.getGroup(group)) as GroupRecord;
  }

  async removeMember(group: string, user: string): Promise<GroupRecord> {
    const s = this.#stmt;
    this.#db.transaction(() => {
      const g = s.groupId.get(group) as { id: number } | undefined;
      if (g === undefined) throw new StoreNotFoundError('group', group);
      const u = s.userByName.get(user) as UserRow | undefined;
      if (u === undefined) throw new StoreNotFoundError('user', user);
      if (s.deleteMember.run(g.id, u.id).changes === 0) {
        throw new StoreNotFoundError('member', `${user} in ${group}`);
      }
    })();
    return (await this.getGroup(group)) as GroupRecord;
  }

  async addRule(rule: NewRule): Promise<RuleRecord> {
    const s = this.#stmt;
    return this.#db.transaction(() => {
      let groupId: number | null = null;
      if (rule.group !== '*') {
        const g = s.groupId.get(rule.group) as { id: number } | undefined;
        if (g === undefined) throw new StoreNotFoundError('group', rule.group);
        groupId = g.id;
      }
      const id = Number(
        s.insertRule.run({
          group_id: groupId,
          action: rule.action,
          prefix: rule.prefix,
          protocol: rule.protocol,
          port_from: rule.portFrom,
          port_to: rule.portTo,
          priority: rule.priority,
          description: rule.description,
        }).lastInsertRowid,
      );
      return toRule(s.ruleById.get(id) as RuleRow);
    })();
  }

  async removeRule(id: number): Promise<boolean> {
    return this.#stmt.deleteRule.run(id).changes > 0;
  }

  async listRules(group?: string): Promise<RuleRecord[]> {
    const rows =
      group === undefined
        ? (this.#stmt.listRules.all() as RuleRow[])
        : group === '*'
          ? (this.#stmt.globalRules.all() as RuleRow[])
          : (this.#stmt.rulesOfGroup.all(group) as RuleRow[]);
    return rows.map(toRule);
  }

  async rulesForUser(userId: number): Promise<RuleRecord[]> {
    return (this.#stmt.rulesForUser.all(userId) as RuleRow[]).map(toRule);
  }

  // settings and CA

  async getSetting(key: string): Promise<string | undefined> {
    const row = this.#stmt.getSetting.get(key) as { value: string } | undefined;
    return row?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    this.#stmt.setSetting.run(key, value);
  }

  async loadCa(): Promise<CaMaterial | undefined> {
    const row = this.#stmt.loadCa.get() as { cert_pem: string; key_pem: string } | undefined;
    return row && { certPem: row.cert_pem, keyPem: row.key_pem };
  }

  async saveCa(ca: CaMaterial, at: number): Promise<boolean> {
    return this.#stmt.saveCa.run(ca.certPem, ca.keyPem, at).changes > 0;
  }

  // data planes, join tokens, sessions

  async upsertDataPlane(dp: DataPlaneRecord): Promise<void> {
    this.#stmt.upsertDataPlane.run({
      id: dp.id,
      name: dp.name,
      version: dp.version,
      listen: dp.listen,
      workers: dp.workers,
      registered_at: dp.registeredAt,
      last_seen_at: dp.lastSeenAt,
    });
  }

  async getDataPlane(id: string): Promise<DataPlaneRecord | undefined> {
    const r = this.#stmt.getDataPlane.get(id) as
      | {
          id: string;
          name: string;
          version: string;
          listen: string;
          workers: number;
          registered_at: number;
          last_seen_at: number;
        }
      | undefined;
    return (
      r && {
        id: r.id,
        name: r.name,
        version: r.version,
        listen: r.listen,
        workers: r.workers,
        registeredAt: r.registered_at,
        lastSeenAt: r.last_seen_at,
      }
    );
  }

  async endSessionsOfPrevious(name: string, currentId: string, at: number): Promise<number> {
    return this.#relaxed(() => this.#stmt.endPrevious.run(at, name, currentId).changes);
  }

  async createJoinToken(tokenHash: string, expiresAt: number): Promise<void> {
    this.#stmt.insertToken.run(tokenHash, expiresAt);
  }

  async consumeJoinToken(tokenHash: string, at: number): Promise<boolean> {
    return this.#stmt.useToken.run(at, tokenHash, at).changes > 0;
  }

  async startSession(
    session: Omit<SessionRecord, 'userName' | 'deviceName'>,
  ): Promise<SessionRecord[]> {
    const s = this.#stmt;
    try {
      return this.#relaxed(() =>
        this.#db.transaction(() => {
          const previous = (
            s.liveSessions.all({ user: null, device: session.deviceId }) as SessionRow[]
          ).map(toSession);
          s.endSessionsOfDevice.run(session.startedAt, session.deviceId);
          s.touchDevice.run(session.startedAt, session.deviceId);
          s.insertSession.run({
            id: session.id,
            device_id: session.deviceId,
            dataplane_id: session.dataplaneId,
            remote_address: session.remoteAddress,
            addresses: session.addresses.join(','),
            started_at: session.startedAt,
            updated_at: session.updatedAt,
            stats: JSON.stringify(session.stats),
          });
          return previous.map((p) => ({ ...p, endedAt: session.startedAt }));
        })(),
      );
    } catch (err) {
      throw mapUnique(err, 'session', session.id);
    }
  }

  async updateSessionStats(id: string, stats: SessionStatsRecord, at: number): Promise<boolean> {
    return this.#relaxed(
      () => this.#stmt.updateSession.run(JSON.stringify(stats), at, id).changes > 0,
    );
  }

  async applySessionReports(
    reports: readonly SessionReportRecord[],
    at: number,
  ): Promise<string[]> {
    const s = this.#stmt;
    // One commit for the whole report: with 10,000 tunnels a commit per row kept the event loop
    // (and every Authorize behind it) busy for a good part of a second every report.
    return this.#relaxed(() =>
      this.#db.transaction(() => {
        const unknown: string[] = [];
        for (const r of reports) {
          const updated =
            r.stats !== undefined &&
            s.updateSession.run(JSON.stringify(r.stats), at, r.id).changes > 0;
          if (r.ended) s.endSession.run(at, r.id);
          else if (!updated) unknown.push(r.id);
        }
        return unknown;
      })(),
    );
  }

  async endSession(id: string, at: number): Promise<boolean> {
    return this.#relaxed(() => this.#stmt.endSession.run(at, id).changes > 0);
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    const row = this.#stmt.sessionById.get(id) as SessionRow | undefined;
    return row && toSession(row);
  }

  async listSessions(q: { userName?: string; deviceId?: number }): Promise<SessionRecord[]> {
    const rows = this.#stmt.liveSessions.all({
      user: q.userName ?? null,
      device: q.deviceId ?? null,
    }) as SessionRow[];
    return rows.map(toSession);
  }

  async close(): Promise<void> {
    if (!this.#db.open) return;
    this.leases.flushCursors();
    this.#db.close();
  }
}

export class SqliteLeases implements StoreLeases {
  readonly #db: Db;
  readonly #pendingCursors = new Map<IpFamily, string>();
  readonly #find: Statement;
  readonly #taken: Statement;
  readonly #insert: Statement;
  readonly #release: Statement;
  readonly #releaseFamily: Statement;
  readonly #count: Statement;
  readonly #loadCursor: Statement;
  readonly #saveCursor: Statement;
  readonly #list: Statement;
  readonly #ofDevice: Statement;

  constructor(db: Db) {
    this.#db = db;
    this.#find = db.prepare('SELECT address FROM leases WHERE device_id = ? AND family = ?');
    this.#taken = db.prepare('SELECT 1 FROM leases WHERE address = ?');
    this.#insert = db.prepare(
      'INSERT INTO leases (device_id, family, address, allocated_at) VALUES (?, ?, ?, ?)',
    );
    this.#release = db.prepare('DELETE FROM leases WHERE device_id = ?');
    this.#releaseFamily = db.prepare('DELETE FROM leases WHERE device_id = ? AND family = ?');
    this.#count = db.prepare('SELECT count(*) AS n FROM leases WHERE family = ?');
    this.#loadCursor = db.prepare('SELECT next FROM pool_cursors WHERE family = ?');
    this.#saveCursor = db.prepare(
      'INSERT INTO pool_cursors (family, next) VALUES (?, ?) ON CONFLICT(family) DO UPDATE SET next = excluded.next',
    );
    this.#list = db.prepare(`
      SELECT l.id, l.address, l.family, l.device_id, d.name AS device_name, u.name AS user_name,
        l.allocated_at
      FROM leases l JOIN devices d ON d.id = l.device_id JOIN users u ON u.id = d.user_id
      WHERE l.id > @after AND (@family IS NULL OR l.family = @family)
      ORDER BY l.id LIMIT @limit`);
    this.#ofDevice = db.prepare('SELECT family, address FROM leases WHERE device_id = ?');
  }

  find(deviceId: string, family: IpFamily): string | undefined {
    const row = this.#find.get(Number(deviceId), family) as { address: string } | undefined;
    return row?.address;
  }

  isTaken(address: string): boolean {
    return this.#taken.get(address) !== undefined;
  }

  insert(deviceId: string, family: IpFamily, address: string): void {
    try {
      this.#db.transaction(() => {
        this.#insert.run(Number(deviceId), family, address, Date.now());
        this.#flushCursors();
      })();
    } catch (err) {
      if (isSqliteError(err) && err.code === 'SQLITE_CONSTRAINT_UNIQUE') {
        if (err.message.includes('leases.address')) {
          throw new LeaseConflictError('address', `address ${address} is already leased`);
        }
        throw new LeaseConflictError(
          'device',
          `device ${deviceId} already has an IPv${family} lease`,
        );
      }
      throw err;
    }
  }

  release(deviceId: string, family?: IpFamily): void {
    if (family === undefined) this.#release.run(Number(deviceId));
    else this.#releaseFamily.run(Number(deviceId), family);
  }

  count(family: IpFamily): number {
    return (this.#count.get(family) as { n: number }).n;
  }

  loadCursor(family: IpFamily): string | undefined {
    const pending = this.#pendingCursors.get(family);
    if (pending !== undefined) return pending;
    return (this.#loadCursor.get(family) as { next: string } | undefined)?.next;
  }

  /**
   * The cursor is a hint (a stale one costs probes, never correctness), so it is not worth a
   * commit and an fsync of its own: it rides along with the next lease insert, or with close().
   */
  saveCursor(family: IpFamily, address: string): void {
    this.#pendingCursors.set(family, address);
  }

  /** Writes pending cursors (inside the caller's transaction when there is one). */
  flushCursors(): void {
    this.#flushCursors();
  }

  #flushCursors(): void {
    for (const [family, next] of this.#pendingCursors) this.#saveCursor.run(family, next);
    this.#pendingCursors.clear();
  }

  async list(q: { family?: IpFamily; after: number; limit: number }): Promise<LeaseRecord[]> {
    const rows = this.#list.all({
      after: q.after,
      family: q.family ?? null,
      limit: q.limit,
    }) as LeaseRow[];
    return rows.map((r) => ({
      id: r.id,
      address: r.address,
      family: r.family,
      deviceId: r.device_id,
      deviceName: r.device_name,
      userName: r.user_name,
      allocatedAt: r.allocated_at,
    }));
  }

  async ofDevice(deviceId: number): Promise<{ ipv4?: string; ipv6?: string }> {
    const out: { ipv4?: string; ipv6?: string } = {};
    for (const r of this.#ofDevice.all(deviceId) as { family: number; address: string }[]) {
      if (r.family === 4) out.ipv4 = r.address;
      else out.ipv6 = r.address;
    }
    return out;
  }
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${version} is newer than this control plane knows (${MIGRATIONS.length}); upgrade the control plane`,
    );
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    // Schema change and version bump commit together: a crash leaves either the old or the new.
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

function prepare(db: Db) {
  return {
    groupId: db.prepare('SELECT id FROM groups WHERE name = ?'),
    insertUser: db.prepare('INSERT INTO users (name, display_name, created_at) VALUES (?, ?, ?)'),
    insertMember: db.prepare('INSERT INTO group_members (group_id, user_id) VALUES (?, ?)'),
    deleteMember: db.prepare('DELETE FROM group_members WHERE group_id = ? AND user_id = ?'),
    insertDevice: db.prepare('INSERT INTO devices (user_id, name, created_at) VALUES (?, ?, ?)'),
    userById: db.prepare(`${USER_SELECT} WHERE u.id = ?`),
    userByName: db.prepare(`${USER_SELECT} WHERE u.name = ?`),
    setDisabled: db.prepare('UPDATE users SET disabled = ? WHERE name = ?'),
    deviceIdsOfUser: db.prepare('SELECT id FROM devices WHERE user_id = ?'),
    liveSerialsOfUser: db.prepare(
      'SELECT serial FROM certificates WHERE user_id = ? AND revoked_at IS NULL',
    ),
    revokeUserCerts: db.prepare(
      'UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE user_id = ? AND revoked_at IS NULL',
    ),
    deleteUser: db.prepare('DELETE FROM users WHERE id = ?'),
    countUsers: db.prepare('SELECT count(*) AS n FROM users'),
    countDevices: db.prepare('SELECT count(*) AS n FROM devices WHERE revoked = 0'),
    deviceById: db.prepare(`${DEVICE_SELECT} WHERE d.id = ?`),
    deviceByName: db.prepare(`${DEVICE_SELECT} WHERE u.name = ? AND d.name = ?`),
    listDevices: db.prepare(
      `${DEVICE_SELECT} WHERE (@user IS NULL OR u.name = @user) AND (@revoked = 1 OR d.revoked = 0) ORDER BY u.name, d.name`,
    ),
    liveSerialsOfDevice: db.prepare(
      'SELECT serial FROM certificates WHERE device_id = ? AND revoked_at IS NULL',
    ),
    revokeDeviceCerts: db.prepare(
      'UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE device_id = ? AND revoked_at IS NULL',
    ),
    markDeviceRevoked: db.prepare('UPDATE devices SET revoked = 1 WHERE id = ?'),
    releaseLeases: db.prepare('DELETE FROM leases WHERE device_id = ?'),
    endSessionsOfDevice: db.prepare(
      'UPDATE sessions SET ended_at = ? WHERE device_id = ? AND ended_at IS NULL',
    ),
    touchDevice: db.prepare('UPDATE devices SET last_seen_at = ? WHERE id = ?'),
    insertCert: db.prepare(`
      INSERT INTO certificates (serial, kind, subject_cn, user_id, device_id, not_before, not_after,
        fingerprint, revoked_at, revocation_reason)
      VALUES (@serial, @kind, @subject_cn, @user_id, @device_id, @not_before, @not_after,
        @fingerprint, @revoked_at, @revocation_reason)`),
    certBySerial: db.prepare('SELECT * FROM certificates WHERE serial = ?'),
    certByFingerprint: db.prepare('SELECT * FROM certificates WHERE fingerprint = ?'),
    listCerts: db.prepare(`
      SELECT c.* FROM certificates c LEFT JOIN users u ON u.id = c.user_id
      WHERE (@user IS NULL OR u.name = @user) AND (@kind IS NULL OR c.kind = @kind)
        AND (@revoked = 1 OR c.revoked_at IS NULL)
      ORDER BY c.not_before, c.serial`),
    revokeCert: db.prepare(
      'UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?',
    ),
    listRevoked: db.prepare(
      'SELECT * FROM certificates WHERE revoked_at IS NOT NULL ORDER BY revoked_at',
    ),
    currentCert: db.prepare(
      'SELECT * FROM certificates WHERE device_id = ? AND revoked_at IS NULL ORDER BY not_before DESC LIMIT 1',
    ),
    insertGroup: db.prepare('INSERT INTO groups (name, description, created_at) VALUES (?, ?, ?)'),
    groupByName: db.prepare('SELECT * FROM groups WHERE name = ?'),
    membersOf: db.prepare(
      'SELECT u.name FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = ? ORDER BY u.name',
    ),
    listGroups: db.prepare(`
      SELECT g.*, (SELECT json_group_array(u.name) FROM group_members m JOIN users u ON u.id = m.user_id
        WHERE m.group_id = g.id) AS members
      FROM groups g ORDER BY g.name`),
    deleteGroup: db.prepare('DELETE FROM groups WHERE name = ?'),
    insertRule: db.prepare(`
      INSERT INTO policy_rules (group_id, action, prefix, protocol, port_from, port_to, priority, description)
      VALUES (@group_id, @action, @prefix, @protocol, @port_from, @port_to, @priority, @description)`),
    ruleById: db.prepare(`${RULE_SELECT} WHERE r.id = ?`),
    deleteRule: db.prepare('DELETE FROM policy_rules WHERE id = ?'),
    listRules: db.prepare(`${RULE_SELECT} ORDER BY r.priority, r.id`),
    globalRules: db.prepare(`${RULE_SELECT} WHERE r.group_id IS NULL ORDER BY r.priority, r.id`),
    rulesOfGroup: db.prepare(`${RULE_SELECT} WHERE g.name = ? ORDER BY r.priority, r.id`),
    rulesForUser: db.prepare(`
      ${RULE_SELECT}
      WHERE r.group_id IS NULL
        OR r.group_id IN (SELECT group_id FROM group_members WHERE user_id = ?)
      ORDER BY r.priority, r.id`),
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
    setSetting: db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    ),
    loadCa: db.prepare('SELECT cert_pem, key_pem FROM ca WHERE id = 1'),
    saveCa: db.prepare(
      'INSERT INTO ca (id, cert_pem, key_pem, created_at) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO NOTHING',
    ),
    upsertDataPlane: db.prepare(`
      INSERT INTO dataplanes (id, name, version, listen, workers, registered_at, last_seen_at)
      VALUES (@id, @name, @version, @listen, @workers, @registered_at, @last_seen_at)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, version = excluded.version,
        listen = excluded.listen, workers = excluded.workers, last_seen_at = excluded.last_seen_at`),
    getDataPlane: db.prepare('SELECT * FROM dataplanes WHERE id = ?'),
    endPrevious: db.prepare(`
      UPDATE sessions SET ended_at = ?
      WHERE ended_at IS NULL AND dataplane_id IN (SELECT id FROM dataplanes WHERE name = ? AND id <> ?)`),
    insertToken: db.prepare('INSERT INTO join_tokens (token_hash, expires_at) VALUES (?, ?)'),
    useToken: db.prepare(
      'UPDATE join_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?',
    ),
    insertSession: db.prepare(`
      INSERT INTO sessions (id, device_id, dataplane_id, remote_address, addresses, started_at,
        updated_at, stats)
      VALUES (@id, @device_id, @dataplane_id, @remote_address, @addresses, @started_at,
        @updated_at, @stats)`),
    updateSession: db.prepare(
      'UPDATE sessions SET stats = ?, updated_at = ? WHERE id = ? AND ended_at IS NULL',
    ),
    endSession: db.prepare('UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL'),
    sessionById: db.prepare(`${SESSION_SELECT} WHERE s.id = ?`),
    liveSessions: db.prepare(`
      ${SESSION_SELECT}
      WHERE s.ended_at IS NULL AND (@user IS NULL OR u.name = @user)
        AND (@device IS NULL OR s.device_id = @device)
      ORDER BY s.started_at`),
  };
}

function toUser(r: UserRow): UserRecord {
  const groups = r.groups === null ? [] : (JSON.parse(r.groups) as (string | null)[]);
  return {
    id: r.id,
    name: r.name,
    displayName: r.display_name,
    disabled: r.disabled !== 0,
    createdAt: r.created_at,
    groups: groups.filter((g): g is string => g !== null).sort(),
  };
}

function toDevice(r: DeviceRow): DeviceRecord {
  return {
    id: r.id,
    userId: r.user_id,
    userName: r.user_name,
    name: r.name,
    revoked: r.revoked !== 0,
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
  };
}

function toCert(r: CertRow): CertificateRecord {
  return {
    serial: r.serial,
    kind: r.kind,
    subjectCn: r.subject_cn,
    userId: r.user_id,
    deviceId: r.device_id,
    notBefore: r.not_before,
    notAfter: r.not_after,
    fingerprint: r.fingerprint,
    revokedAt: r.revoked_at,
    revocationReason: r.revocation_reason,
  };
}

function fromCert(c: CertificateRecord): CertRow {
  return {
    serial: c.serial,
    kind: c.kind,
    subject_cn: c.subjectCn,
    user_id: c.userId,
    device_id: c.deviceId,
    not_before: c.notBefore,
    not_after: c.notAfter,
    fingerprint: c.fingerprint,
    revoked_at: c.revokedAt,
    revocation_reason: c.revocationReason,
  };
}

function toRule(r: RuleRow): RuleRecord {
  return {
    id: r.id,
    group: r.group_name ?? '*',
    action: r.action,
    prefix: r.prefix,
    protocol: r.protocol,
    portFrom: r.port_from,
    portTo: r.port_to,
    priority: r.priority,
    description: r.description,
  };
}

function toSession(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    userName: r.user_name,
    deviceName: r.device_name,
    dataplaneId: r.dataplane_id,
    remoteAddress: r.remote_address,
    addresses: r.addresses === '' ? [] : r.addresses.split(','),
    startedAt: r.started_at,
    updatedAt: r.updated_at,
    endedAt: r.ended_at,
    stats: { ...EMPTY_STATS, ...(JSON.parse(r.stats) as Partial<SessionStatsRecord>) },
  };
}

interface SqliteError extends Error {
  code: string;
}

function isSqliteError(err: unknown): err is SqliteError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}

function mapUnique(err: unknown, entity: StoreConflictError['entity'], key: string): unknown {
  if (
    isSqliteError(err) &&
    (err.code === 'SQLITE_CONSTRAINT_UNIQUE' || err.code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
  ) {
    return new StoreConflictError(entity, key);
  }
  return err;
}
