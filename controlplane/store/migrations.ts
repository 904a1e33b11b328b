// Versioned schema for the SQLite store. Migration N brings `PRAGMA user_version` from N-1 to N;
// a released migration is never edited, only followed by a new one.

export const MIGRATIONS: readonly string[] = [
  // 1: the initial schema
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL DEFAULT '',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL DEFAULT 0,
    UNIQUE (user_id, name)
  );
  -- Certificates outlive their devices (the serial must stay revoked), so no cascade.
  CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('client', 'server', 'admin', 'dataplane')),
    subject_cn TEXT NOT NULL,
    user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,
    not_before INTEGER NOT NULL,
    not_after INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    revoked_at INTEGER,
    revocation_reason TEXT NOT NULL DEFAULT ''
  );
  CREATE INDEX certificates_device ON certificates(device_id);
  CREATE INDEX certificates_revoked ON certificates(revoked_at) WHERE revoked_at IS NOT NULL;
  -- A lease goes with its device: deleting the device releases the address.
  CREATE TABLE leases (
    id INTEGER PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    family INTEGER NOT NULL CHECK (family IN (4, 6)),
    address TEXT NOT NULL,
    allocated_at INTEGER NOT NULL,
    CONSTRAINT leases_address UNIQUE (address),
    CONSTRAINT leases_device_family UNIQUE (device_id, family)
  );
  CREATE INDEX leases_family ON leases(family);
  CREATE TABLE pool_cursors (
    family INTEGER PRIMARY KEY,
    next TEXT NOT NULL
  );
  CREATE TABLE groups (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  );
  CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
  );
  CREATE INDEX group_members_user ON group_members(user_id);
  -- group_id NULL: the rule applies to every user ('*').
  CREATE TABLE policy_rules (
    id INTEGER PRIMARY KEY,
    group_id INTEGER REFERENCES groups(id) ON DELETE CASCADE,
    action TEXT NOT NULL CHECK (action IN ('allow', 'deny')),
    prefix TEXT NOT NULL,
    protocol INTEGER NOT NULL DEFAULT 0,
    port_from INTEGER NOT NULL DEFAULT 0,
    port_to INTEGER NOT NULL DEFAULT 0,
    priority INTEGER NOT NULL DEFAULT 100,
    description TEXT NOT NULL DEFAULT ''
  );
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  CREATE TABLE ca (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cert_pem TEXT NOT NULL,
    key_pem TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE dataplanes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL DEFAULT '',
    listen TEXT NOT NULL DEFAULT '',
    workers INTEGER NOT NULL DEFAULT 0,
    registered_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
  );
  CREATE TABLE join_tokens (
    token_hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    used_at INTEGER
  );
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    dataplane_id TEXT NOT NULL,
    remote_address TEXT NOT NULL DEFAULT '',
    addresses TEXT NOT NULL DEFAULT '',
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    ended_at INTEGER,
    stats TEXT NOT NULL DEFAULT '{}'
  );
  CREATE INDEX sessions_live ON sessions(device_id) WHERE ended_at IS NULL;
  `,
  // 2: Authorize recognizes a certificate it issued by the SHA-256 of its DER (one index probe
  // instead of a chain check in JavaScript per tunnel setup).
  `
  CREATE INDEX certificates_fingerprint ON certificates(fingerprint);
  `,
];
