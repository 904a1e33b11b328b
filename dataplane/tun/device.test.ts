// TUN device + reader/writer threads, for real, inside a network namespace this test creates.
// Needs root. The outer test makes the namespace and re-runs this file inside it (`ip netns exec`)
// with TUNTEST_ROLE=netns; the inner run is an ordinary node:test file whose exit code and output
// the outer test checks. The namespace is deleted in `finally`, also on failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRingPlane } from '../ring/plane.js';
import { RouteTable, createRouteTable } from '../ring/route-table.js';
import { RingConsumer, RingProducer } from '../ring/spsc.js';
import { TunDevice, TunNameInUseError, TunPermissionError } from './device.js';
import { TunThreads } from './threads.js';

const self = fileURLToPath(import.meta.url);
const role = process.env.TUNTEST_ROLE;
const isRoot = process.getuid?.() === 0;

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, uid?: number) {
  return new Promise<RunResult>((resolve) => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
    delete childEnv.NODE_TEST_CONTEXT; // else the child speaks the runner's binary protocol
    const child = spawn(cmd, args, {
      env: childEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(uid === undefined ? {} : { uid, gid: uid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function exec(cmd: string, args: string[], timeout = 15_000) {
  return new Promise<RunResult>((resolve) => {
    execFile(cmd, args, { timeout }, (error, stdout, stderr) =>
      resolve({
        code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
        stdout,
        stderr,
      }),
    );
  });
}

// ---------------------------------------------------------------- packet helpers (test side)

function checksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  for (let i = start; i + 1 < end; i += 2) sum += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) & 1) sum += bytes[end - 1] << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function swap(bytes: Uint8Array, a: number, b: number, n: number): void {
  for (let i = 0; i < n; i++) {
    const t = bytes[a + i];
    bytes[a + i] = bytes[b + i];
    bytes[b + i] = t;
  }
}

/** Turn the ICMP/ICMPv6 echo request in `p[0..len)` into its reply, in place. */
function echoReply(p: Uint8Array, len: number): void {
  if (p[0] >> 4 === 4) {
    const ihl = (p[0] & 0x0f) * 4;
    swap(p, 12, 16, 4); // the IPv4 header checksum is unchanged by swapping two of its words
    p[ihl] = 0;
    p[ihl + 2] = p[ihl + 3] = 0;
    const c = checksum(p, ihl, len);
    p[ihl + 2] = c >> 8;
    p[ihl + 3] = c & 0xff;
  } else {
    swap(p, 8, 24, 16);
    p[40] = 129;
    p[42] = p[43] = 0;
    let pseudo = 0;
    for (let i = 8; i < 40; i += 2) pseudo += (p[i] << 8) | p[i + 1];
    pseudo += len - 40 + 58; // upper-layer length + next header (58)
    const c = checksum(p, 40, len, pseudo);
    p[42] = c >> 8;
    p[43] = c & 0xff;
  }
}

const isEchoRequest = (p: Uint8Array) =>
  p[0] >> 4 === 4 ? p[9] === 1 && p[(p[0] & 0x0f) * 4] === 8 : p[6] === 58 && p[40] === 128;

const dotted = (p: Uint8Array, at: number) => Array.from(p.subarray(at, at + 4)).join('.');

// ---------------------------------------------------------------- inside the namespace

if (role === 'netns') {
  test('echo request arrives through the reader thread; the reply through the writer', async () => {
    const device = await TunDevice.open({
      name: 'tt0',
      addresses: ['10.201.0.1/24', 'fd77::1/64'],
    });
    const plane = createRingPlane({ shards: 2, slotCount: 64 });
    const routesHandle = createRouteTable(64);
    const routes = new RouteTable(routesHandle);
    routes.set('10.201.0.2', 1, 7);
    routes.set('fd77::2', 0, 9);
    const threads = await TunThreads.start({ fd: device.fd, plane, routes: routesHandle });
    const seen: { shard: number; tag: number; v: number; dst: string }[] = [];
    let stopShards = false;
    const shard = async (s: number) => {
      const inbound = new RingConsumer(plane.toShard[s]);
      const outbound = new RingProducer(plane.toWriter[s]);
      while (!stopShards) {
        if (!(await inbound.waitAsync(50))) continue;
        const n = inbound.available();
        for (let i = 0; i < n; i++) {
          const pkt = inbound.slot(i);
          const len = inbound.length(i);
          const v = pkt[0] >> 4;
          seen.push({ shard: s, tag: inbound.tag(i), v, dst: v === 4 ? dotted(pkt, 16) : 'v6' });
          if (!isEchoRequest(pkt)) continue;
          const out = outbound.reserve();
          if (out === null) continue;
          out.set(pkt);
          echoReply(out, len);
          outbound.commit(len);
        }
        inbound.release(n);
      }
    };
    const shards = [shard(0), shard(1)];
    try {
      const ping4 = await exec('ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', '10.201.0.2']);
      assert.equal(ping4.code, 0, `ping 10.201.0.2 failed:\n${ping4.stdout}${ping4.stderr}`);
      assert.match(ping4.stdout, /2 received/);
      const ping6 = await exec('ping', ['-6', '-n', '-c', '2', '-i', '0.2', '-W', '2', 'fd77::2']);
      assert.equal(ping6.code, 0, `ping fd77::2 failed:\n${ping6.stdout}${ping6.stderr}`);

      const v4 = seen.filter((x) => x.v === 4 && x.dst === '10.201.0.2');
      assert.ok(v4.length >= 2, 'IPv4 echo requests reached a shard ring');
      assert.ok(
        v4.every((x) => x.shard === 1 && x.tag === 7),
        'owned by shard 1, session 7',
      );
      assert.ok(
        seen.some((x) => x.v === 6 && x.shard === 0 && x.tag === 9),
        'IPv6 on shard 0',
      );

      // No route entry: the reader drops and counts, ping gets nothing back.
      const before = threads.counters().dropNoRoute;
      const lost = await exec('ping', ['-n', '-c', '1', '-W', '1', '10.201.0.3']);
      assert.notEqual(lost.code, 0);
      assert.ok(threads.counters().dropNoRoute > before, 'unknown destination counted');

      const c = threads.counters();
      assert.ok(c.readPackets >= 5 && c.writePackets >= 4, JSON.stringify(c));
      assert.equal(c.writeErrors, 0);
    } finally {
      stopShards = true;
      await Promise.all(shards);
      const t0 = Date.now();
      await threads.stop();
      const stopMs = Date.now() - t0;
      await device.close();
      assert.ok(stopMs < 500, `threads stopped in ${stopMs} ms`);
    }
    const gone = await exec('ip', ['link', 'show', 'tt0']);
    assert.notEqual(gone.code, 0, 'device removed on close');
  });

  test('a name in use is a typed error; an empty name is assigned by the kernel', async () => {
    const first = await TunDevice.open({ name: 'tt1' });
    try {
      await assert.rejects(TunDevice.open({ name: 'tt1' }), TunNameInUseError);
      await assert.rejects(TunDevice.open({ name: 'lo' }), TunNameInUseError);
      const auto = await TunDevice.open({ addresses: ['10.202.0.1/30'] });
      assert.match(auto.name, /^tun\d+$/);
      const shown = await exec('ip', ['-4', 'addr', 'show', 'dev', auto.name]);
      assert.match(shown.stdout, /10\.202\.0\.1\/30/);
      assert.match(shown.stdout, /mtu 1280/);
      await auto.close();
      assert.notEqual((await exec('ip', ['link', 'show', auto.name])).code, 0);
    } finally {
      await first.close();
    }
  });

  test('routes are added and removed', async () => {
    const dev = await TunDevice.open({ name: 'tt2', routes: ['10.203.0.0/16', 'fd78::/48'] });
    try {
      assert.match(
        (await exec('ip', ['-4', 'route', 'show', 'dev', 'tt2'])).stdout,
        /10\.203\.0\.0\/16/,
      );
      assert.match((await exec('ip', ['-6', 'route', 'show', 'dev', 'tt2'])).stdout, /fd78::\/48/);
      await dev.removeRoute('10.203.0.0/16');
      assert.doesNotMatch(
        (await exec('ip', ['-4', 'route', 'show', 'dev', 'tt2'])).stdout,
        /10\.203/,
      );
    } finally {
      await dev.close();
    }
  });
} else if (role === 'unprivileged') {
  test('TUNSETIFF without CAP_NET_ADMIN is a TunPermissionError', async () => {
    await assert.rejects(TunDevice.open({ name: 'ttnope' }), TunPermissionError);
  });
} else {
  // ---------------------------------------------------------------- outer: make the namespace
  test('TUN in a private network namespace', async (t) => {
    if (!isRoot) return t.skip('needs root');
    const ns = `tuntest-${process.pid}`;
    const add = await exec('ip', ['netns', 'add', ns]);
    assert.equal(add.code, 0, add.stderr);
    try {
      await exec('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      const r = await run(
        'ip',
        ['netns', 'exec', ns, process.execPath, '--test-reporter=tap', self],
        {
          TUNTEST_ROLE: 'netns',
        },
      );
      assert.equal(r.code, 0, `inner run failed:\n${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /# pass 3/);
    } finally {
      await exec('ip', ['netns', 'del', ns]);
    }
  });

  test('not root: TunPermissionError', async (t) => {
    if (!isRoot) return t.skip('needs root (to drop to nobody)');
    const r = await run(process.execPath, [self], { TUNTEST_ROLE: 'unprivileged' }, 65534);
    if (/EACCES|Cannot find module|permission denied/i.test(r.stderr) && r.code !== 0)
      return t.skip(`nobody cannot read the build: ${r.stderr.split('\n')[0]}`);
    assert.equal(r.code, 0, `unprivileged run failed:\n${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /# pass 1/);
  });
}
