// The daemons as users run them: `node bin/controlplane.js` and `node bin/vpnctl.js` as child
// processes. The done-when of the control plane issue, the exit-code convention, kill -9 in the
// middle of a bulk import, and graceful shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { parse as parseToml } from 'smol-toml';
import { ControlClient } from './client.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN_CP = join(root, 'bin', 'controlplane.js');
const BIN_CTL = join(root, 'bin', 'vpnctl.js');

function startDaemon(dataDir: string, extra: string[] = []): ChildProcess {
  const child = spawn(
    process.execPath,
    [BIN_CP, '--data-dir', dataDir, '--log-level', 'warn', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout?.resume();
  child.stderr?.resume();
  return child;
}

async function waitReady(dataDir: string, child: ChildProcess): Promise<void> {
  const sock = join(dataDir, 'control.sock');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`controlplane exited with ${child.exitCode}`);
    if (existsSync(sock)) {
      const c = new ControlClient({ address: `unix:${sock}`, deadlineMs: 2_000 });
      try {
        await c.pool.showPools({});
        return;
      } catch {
        // not serving yet
      } finally {
        c.close();
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('controlplane did not become ready');
}

function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function vpnctl(
  cwd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN_CTL, ...args], { cwd }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

test('vpnctl end to end: user add writes a verifiable bundle; duplicate → exit 1; usage → exit 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-e2e-'));
  const data = join(dir, 'var', 'mq');
  const child = startDaemon(data, ['--endpoint', '10.200.0.1:4433', '--server-name', 'vpn.test']);
  try {
    await waitReady(data, child);
    assert.equal(statSync(join(data, 'control.sock')).mode & 0o777, 0o600);
    assert.equal(statSync(data).mode & 0o777, 0o700);
    assert.equal(statSync(join(data, 'control.db')).mode & 0o777, 0o600);
    assert.equal(statSync(join(data, 'control.db-wal')).mode & 0o777, 0o600);
    // The default --control is unix:./var/mq/control.sock, relative to the working directory.
    const add = await vpnctl(dir, ['user', 'add', 'alice', '--out', 'alice.toml']);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /alice\.toml/);
    assert.match(add.stdout, /10\.77\.0\.\d+/);
    const file = join(dir, 'alice.toml');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const bundle = parseToml(readFileSync(file, 'utf8')) as {
      server: { endpoints: string[]; server_name: string };
      tunnel: { ipv4: string; ipv6: string };
      tls: { ca: string; cert: string; key: string };
    };
    const ca = new X509Certificate(bundle.tls.ca);
    assert.equal(new X509Certificate(bundle.tls.cert).verify(ca.publicKey), true);
    assert.match(bundle.tunnel.ipv4, /^10\.77\./);
    assert.match(bundle.tunnel.ipv6, /^fd77::/);
    assert.deepEqual(bundle.server.endpoints, ['10.200.0.1:4433']);
    assert.equal(bundle.server.server_name, 'vpn.test');

    const dup = await vpnctl(dir, ['user', 'add', 'alice', '--out', 'alice2.toml']);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /user "alice" already exists/);
    assert.equal(existsSync(join(dir, 'alice2.toml')), false);

    const unknown = await vpnctl(dir, ['user', 'show', 'bob']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no user "bob"/);
    const cidr = await vpnctl(dir, ['policy', 'add', '*', 'allow', '10.0.0.1/8']);
    assert.equal(cidr.code, 1);
    assert.match(cidr.stderr, /invalid CIDR "10\.0\.0\.1\/8".*host bits/);
    assert.equal((await vpnctl(dir, ['user', 'frobnicate'])).code, 2);
    assert.equal((await vpnctl(dir, ['policy', 'add', '*', 'maybe', '10.0.0.0/8'])).code, 2);
    const help = await vpnctl(dir, ['device', 'revoke', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: vpnctl device revoke/);

    const list = await vpnctl(dir, ['--json', 'user', 'list']);
    assert.equal(list.code, 0);
    const users = JSON.parse(list.stdout) as { name: string }[];
    assert.deepEqual(
      users.map((u) => u.name),
      ['alice'],
    );
    const pool = await vpnctl(dir, ['pool', 'show']);
    assert.match(pool.stdout, /10\.77\.0\.0\/16\s+10\.77\.0\.1\s+1\s/);
    const png = await vpnctl(dir, [
      'config',
      'export',
      'alice',
      '--out',
      'a2.toml',
      '--qr-png',
      'a.png',
    ]);
    assert.equal(png.code, 0, png.stderr);
    assert.deepEqual([...readFileSync(join(dir, 'a.png')).subarray(1, 4)], [0x50, 0x4e, 0x47]);
    // The re-export revoked the first bundle's certificate.
    const certs = await vpnctl(dir, ['--json', 'cert', 'list', '--user', 'alice', '--all']);
    const listed = JSON.parse(certs.stdout) as { revoked: boolean }[];
    assert.deepEqual(
      listed.map((x) => x.revoked),
      [true, false],
    );

    child.kill('SIGTERM');
    const { code } = await exited(child);
    assert.equal(code, 0);
    assert.equal(existsSync(join(data, 'control.sock')), false, 'socket removed on shutdown');
    const down = await vpnctl(dir, ['user', 'list']);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /control plane not reachable at unix:\.\/var\/mq\/control\.sock/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 in the middle of a bulk import: restart finds every acknowledged user, DB consistent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-crash-'));
  let child = startDaemon(dir);
  try {
    await waitReady(dir, child);
    const client = new ControlClient({
      address: `unix:${join(dir, 'control.sock')}`,
      deadlineMs: 10_000,
    });
    const acked = new Set<string>();
    let n = 0;
    let killed = false;
    const worker = async () => {
      while (!killed) {
        const name = `u${n++}`;
        try {
          await client.users.addUser({ name });
          acked.add(name);
          if (acked.size >= 60 && !killed) {
            killed = true;
            child.kill('SIGKILL');
          }
        } catch {
          // calls in flight when the process died fail; they were never acknowledged
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    client.close();
    assert.equal((await exited(child)).signal, 'SIGKILL');
    assert.ok(acked.size >= 60);

    const db = new Database(join(dir, 'control.db'), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.deepEqual(db.pragma('foreign_key_check'), []);
    } finally {
      db.close();
    }

    child = startDaemon(dir);
    await waitReady(dir, child);
    const after = new ControlClient({ address: `unix:${join(dir, 'control.sock')}` });
    try {
      const users = new Map<string, { ipv4: string; ipv6: string }>();
      let pageToken = '';
      do {
        const page = await after.users.listUsers({ pageSize: 1000, pageToken });
        for (const u of page.users) {
          users.set(u.name, { ipv4: u.devices[0]?.ipv4 ?? '', ipv6: u.devices[0]?.ipv6 ?? '' });
        }
        pageToken = page.nextPageToken;
      } while (pageToken !== '');
      for (const name of acked) {
        const u = users.get(name);
        assert.ok(u, `acknowledged user ${name} survived`);
        assert.match(u.ipv4, /^10\.77\./, `${name} kept its IPv4 lease`);
        assert.match(u.ipv6, /^fd77::/, `${name} kept its IPv6 lease`);
      }
      const v4 = [...users.values()].map((u) => u.ipv4).filter((a) => a !== '');
      assert.equal(new Set(v4).size, v4.length, 'no address twice');
      // New work continues where the old left off, with no collision.
      const more = await after.users.addUser({ name: 'after-crash' });
      assert.ok(!v4.includes(more.device?.ipv4 ?? ''));
    } finally {
      after.close();
    }
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('controlplane: a config file with an unknown key is rejected naming the key (exit 2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cp-cfg-'));
  try {
    const cfg = join(dir, 'cp.toml');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(cfg, '[pools]\nipv4 = "10.1.0.0/16"\nipv9 = "x"\n');
    const child = spawn(process.execPath, [BIN_CP, '--config', cfg, '--data-dir', join(dir, 'd')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const { code } = await exited(child);
    assert.equal(code, 2);
    assert.match(stderr, /unknown key 'ipv9' in \[pools\]/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
