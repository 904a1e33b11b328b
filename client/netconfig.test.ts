import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DnsControl } from './dns.js';
import { NetConfigError } from './errors.js';
import { IpTool, type CommandRunner } from './ip.js';
import { diffSets, NetConfig, splitDefault } from './netconfig.js';
import { formatPrefix, parsePrefix } from './prefix.js';
import { StateFile } from './statefile.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const isRoot = process.getuid?.() === 0;

describe('netconfig (pure parts)', () => {
  it('diffs sets both ways', () => {
    assert.deepEqual(diffSets(['a', 'b'], ['b', 'c']), { add: ['c'], remove: ['a'] });
    assert.deepEqual(diffSets([], []), { add: [], remove: [] });
  });

  it('splits only default routes into halves', () => {
    assert.deepEqual(splitDefault(parsePrefix('0.0.0.0/0')).map(formatPrefix), [
      '0.0.0.0/1',
      '128.0.0.0/1',
    ]);
    assert.deepEqual(splitDefault(parsePrefix('::/0')).map(formatPrefix), ['::/1', '8000::/1']);
    assert.deepEqual(splitDefault(parsePrefix('10.0.0.0/8')).map(formatPrefix), ['10.0.0.0/8']);
  });

  it('refuses a TUN another live client owns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mqc-state-'));
    try {
      const state = new StateFile(join(dir, 'mq0.json'));
      state.write({
        version: 1,
        pid: process.ppid,
        tun: 'mq0',
        createdTun: true,
        addresses: [],
        routes: ['10.0.0.0/8'],
        pins: [],
      });
      const calls: string[][] = [];
      const run: CommandRunner = async (_f, args) => {
        calls.push([...args]);
        return '';
      };
      const net = new NetConfig({
        ip: new IpTool(run),
        tun: 'mq0',
        mtu: 1280,
        servers: [],
        state,
        dns: new DnsControl({ run, resolvConf: join(dir, 'r'), backupPath: join(dir, 'b') }),
        log: quiet,
      });
      await assert.rejects(net.prepare(), (err: unknown) => {
        assert.ok(err instanceof NetConfigError);
        assert.match(err.message, new RegExp(`another masque-client \\(pid ${process.ppid}\\)`));
        return true;
      });
      assert.deepEqual(calls, [], 'nothing touched');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Runs `ip` inside the namespace and reads state back from it. */
function nsIp(ns: string, ...args: string[]): string {
  return execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
}

function routes(ns: string, version: 4 | 6): string[] {
  const out = nsIp(ns, `-${version}`, '-j', 'route', 'show');
  return (JSON.parse(out) as { dst: string; dev: string; gateway?: string }[]).map(
    (r) => `${r.dst} ${r.gateway ? `via ${r.gateway} ` : ''}dev ${r.dev}`,
  );
}

function linkExists(ns: string, dev: string): boolean {
  try {
    nsIp(ns, 'link', 'show', 'dev', dev);
    return true;
  } catch {
    return false;
  }
}

describe('netconfig in a network namespace', { skip: isRoot ? false : 'needs root' }, () => {
  const ns = `mqc-${process.pid}`;
  let dir: string;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mqc-net-'));
    execFileSync('ip', ['netns', 'add', ns]);
    nsIp(ns, 'link', 'set', 'lo', 'up');
    // No dummy module on every kernel; a veth pair inside the namespace does as well.
    nsIp(ns, 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p');
    nsIp(ns, 'link', 'set', 'up0p', 'up');
    nsIp(ns, 'link', 'set', 'up0', 'up');
    nsIp(ns, 'addr', 'add', '192.0.2.2/24', 'dev', 'up0');
    nsIp(ns, '-6', 'addr', 'add', '2001:db8:1::2/64', 'dev', 'up0', 'nodad');
    nsIp(ns, 'route', 'add', 'default', 'via', '192.0.2.1');
    nsIp(ns, '-6', 'route', 'add', 'default', 'via', '2001:db8:1::1');
  });

  after(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  function make(tun: string): NetConfig {
    return new NetConfig({
      ip: new IpTool(undefined, { netns: ns }),
      tun,
      mtu: 1280,
      servers: ['198.51.100.7', '2001:db8:9::7'],
      state: new StateFile(join(dir, `${tun}.json`)),
      dns: new DnsControl({
        run: async () => '',
        resolvConf: join(dir, 'resolv.conf'),
        backupPath: join(dir, 'resolv.bak'),
        useResolvectl: false,
      }),
      log: quiet,
    });
  }

  it('creates the TUN, applies address sets as differences and removes everything on teardown', async () => {
    const net = make('mqt0');
    await net.prepare();
    assert.ok(linkExists(ns, 'mqt0'));
    const mtu = JSON.parse(nsIp(ns, '-j', 'link', 'show', 'dev', 'mqt0'))[0].mtu;
    assert.equal(mtu, 1280);

    await net.setAddresses([parsePrefix('10.77.0.2/32'), parsePrefix('fd00:77::2/128')]);
    const addrs = (): string[] =>
      (
        JSON.parse(nsIp(ns, '-j', 'addr', 'show', 'dev', 'mqt0'))[0].addr_info as {
          local: string;
          prefixlen: number;
          scope: string;
        }[]
      )
        .filter((a) => a.scope !== 'link')
        .map((a) => `${a.local}/${a.prefixlen}`)
        .sort();
    assert.deepEqual(addrs(), ['10.77.0.2/32', 'fd00:77::2/128']);
    await net.setAddresses([parsePrefix('10.77.0.3/32'), parsePrefix('fd00:77::2/128')]);
    assert.deepEqual(addrs(), ['10.77.0.3/32', 'fd00:77::2/128']);

    await net.setRoutes([parsePrefix('10.77.0.0/16')]);
    assert.ok(routes(ns, 4).includes('10.77.0.0/16 dev mqt0'));
    assert.ok(!routes(ns, 4).some((r) => r.startsWith('198.51.100.7')), 'no pin without need');

    await net.teardown();
    assert.ok(!linkExists(ns, 'mqt0'));
    assert.ok(!routes(ns, 4).some((r) => r.includes('mqt0')));
    assert.ok(!existsSync(join(dir, 'mqt0.json')), 'state file removed');
  });

  it('full tunnel: pins the server via the current gateway, installs halves, keeps the default', async () => {
    const net = make('mqt1');
    await net.prepare();
    await net.setAddresses([parsePrefix('10.77.0.2/32')]);
    await net.setRoutes([parsePrefix('0.0.0.0/0'), parsePrefix('::/0')]);
    const r4 = routes(ns, 4);
    assert.ok(r4.includes('default via 192.0.2.1 dev up0'), 'original default stays');
    assert.ok(r4.includes('198.51.100.7 via 192.0.2.1 dev up0'), `pinned: ${r4.join('; ')}`);
    assert.ok(r4.includes('0.0.0.0/1 dev mqt1'));
    assert.ok(r4.includes('128.0.0.0/1 dev mqt1'));
    const r6 = routes(ns, 6);
    assert.ok(
      r6.includes('2001:db8:9::7 via 2001:db8:1::1 dev up0'),
      `pinned v6: ${r6.join('; ')}`,
    );
    assert.ok(r6.includes('::/1 dev mqt1'));
    assert.ok(r6.includes('8000::/1 dev mqt1'));
    // The server is still reached outside the tunnel; everything else goes in.
    assert.match(nsIp(ns, 'route', 'get', '198.51.100.7'), /dev up0/);
    assert.match(nsIp(ns, 'route', 'get', '203.0.113.1'), /dev mqt1/);

    // A new, narrower set: the halves and the pins go, the new route comes.
    await net.setRoutes([parsePrefix('10.78.0.0/16')]);
    const after4 = routes(ns, 4);
    assert.ok(after4.includes('10.78.0.0/16 dev mqt1'));
    assert.ok(!after4.some((r) => r.startsWith('0.0.0.0/1') || r.startsWith('128.0.0.0/1')));
    assert.ok(!after4.some((r) => r.startsWith('198.51.100.7')), 'pin removed when not needed');
    assert.ok(!routes(ns, 6).some((r) => r.startsWith('2001:db8:9::7')));
    await net.teardown();
    assert.ok(routes(ns, 4).includes('default via 192.0.2.1 dev up0'));
  });

  it('cleans up what a crashed run left behind, then starts afresh', async () => {
    const crashed = make('mqt2');
    await crashed.prepare();
    await crashed.setAddresses([parsePrefix('10.77.0.2/32')]);
    await crashed.setRoutes([parsePrefix('0.0.0.0/0')]);
    await crashed.setDns(['10.77.0.1']);
    // Pretend the process that wrote the state died: rewrite its pid to one that cannot exist.
    const path = join(dir, 'mqt2.json');
    const state = JSON.parse(readFileSync(path, 'utf8'));
    new StateFile(path).write({ ...state, pid: 2 ** 22 + 1 });
    assert.ok(routes(ns, 4).some((r) => r.startsWith('198.51.100.7')));

    const next = make('mqt2');
    await next.prepare();
    const r4 = routes(ns, 4);
    assert.ok(!r4.some((r) => r.startsWith('0.0.0.0/1')), `stale halves gone: ${r4.join('; ')}`);
    assert.ok(!r4.some((r) => r.startsWith('198.51.100.7')), 'stale pin gone');
    assert.ok(linkExists(ns, 'mqt2'), 'TUN recreated');
    assert.ok(!existsSync(join(dir, 'resolv.conf')), 'DNS restored (there was no file before)');
    await next.teardown();
    assert.ok(!linkExists(ns, 'mqt2'));
  });

  it('will not take over a device it did not create', async () => {
    nsIp(ns, 'link', 'add', 'mqt3', 'type', 'veth', 'peer', 'name', 'mqt3p');
    const net = make('mqt3');
    await assert.rejects(net.prepare(), /a network device named mqt3 already exists/);
    assert.ok(linkExists(ns, 'mqt3'), 'left alone');
  });
});
