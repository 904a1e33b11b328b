// The whole client run (bundle → TUN → addresses/routes/DNS → status socket → shutdown) inside a
// network namespace, with a fake transport standing in for QUIC/HTTP-3/CONNECT-IP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ClientError } from './errors.js';
import { IpTool } from './ip.js';
import { bundleText, makePki, type Pki } from './pki-fixture.js';
import { parsePrefix, type IpRange } from './prefix.js';
import { runClient, type OpenedDevice, type RunOptions } from './run.js';
import { queryStatus } from './status.js';
import {
  TunnelDeniedError,
  type TransportSettings,
  type TunnelEvents,
  type TunnelHandle,
  type TunnelTransport,
} from './transport.js';

const isRoot = process.getuid?.() === 0;
const all4: IpRange = { version: 4, start: '0.0.0.0', end: '255.255.255.255', protocol: 0 };

class ScriptedTransport implements TunnelTransport {
  settings: TransportSettings | undefined;
  events: TunnelEvents[] = [];
  deny: string | undefined;
  async connect(events: TunnelEvents): Promise<TunnelHandle> {
    if (this.deny) throw new TunnelDeniedError(this.deny, 403);
    this.events.push(events);
    // As a server does (§10.1 item 8): ADDRESS_ASSIGN, then ROUTE_ADVERTISEMENT, right after the 2xx.
    queueMicrotask(() => {
      events.addresses([parsePrefix('10.77.0.2/32')]);
      events.routes([all4]);
    });
    return {
      send: () => true,
      stats: () => ({
        bytesSent: 10,
        bytesReceived: 20,
        packetsSent: 1,
        packetsReceived: 2,
        rttMs: 3,
        lossRatio: 0,
        fec: undefined,
      }),
      close: async () => {},
    };
  }
}

const device: OpenedDevice = { start() {}, write: () => true, close: async () => {} };

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('runClient in a network namespace', { skip: isRoot ? false : 'needs root' }, () => {
  const ns = `mqc-run-${process.pid}`;
  let dir: string;
  let pki: Pki;
  const nsIp = (...args: string[]): string =>
    execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8', stdio: 'pipe' });
  const routes = (): string[] =>
    (JSON.parse(nsIp('-4', '-j', 'route', 'show')) as { dst: string; dev: string }[]).map(
      (r) => `${r.dst} ${r.dev}`,
    );
  const hasLink = (name: string): boolean => {
    try {
      nsIp('link', 'show', 'dev', name);
      return true;
    } catch {
      return false;
    }
  };

  before(() => {
    pki = makePki();
    dir = mkdtempSync(join(tmpdir(), 'mqc-run-'));
    execFileSync('ip', ['netns', 'add', ns]);
    nsIp('link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up0p');
    nsIp('link', 'set', 'up0', 'up');
    nsIp('link', 'set', 'up0p', 'up');
    nsIp('addr', 'add', '192.0.2.2/24', 'dev', 'up0');
    nsIp('route', 'add', 'default', 'via', '192.0.2.1');
  });
  after(() => {
    try {
      execFileSync('ip', ['netns', 'del', ns]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  function options(tun: string, extra: Partial<RunOptions> = {}): RunOptions {
    const config = join(dir, `${tun}.toml`);
    writeFileSync(config, bundleText(pki, { endpoint: '198.51.100.7:4433', dns: ['10.77.0.1'] }));
    return {
      config,
      tun,
      logLevel: 'debug',
      addressRequest: true,
      staticAddresses: [],
      staticRoutes: [],
      dns: true,
      stateDir: join(dir, 'state'),
      ...extra,
    };
  }

  it('brings the tunnel up, follows updates and outages, and leaves nothing behind', async () => {
    const transport = new ScriptedTransport();
    const stop = new AbortController();
    const resolvConf = join(dir, 'resolv.conf');
    writeFileSync(resolvConf, 'nameserver 192.0.2.53\n');
    let socket = '';
    const logs: string[] = [];
    const running = runClient(options('mqr0', { template: '/vpn' }), {
      createTransport: (s) => {
        transport.settings = s;
        return transport;
      },
      openDevice: async () => device,
      stop: stop.signal,
      ip: new IpTool(undefined, { netns: ns }),
      resolvConf,
      logStream: new Writable({ write: (c, _e, cb) => (logs.push(String(c)), cb()) }),
      onReady: (r) => (socket = r.controlSocket),
    });
    try {
      await until('the client to be ready', () => socket !== '');
      assert.equal(transport.settings?.templatePath, '/vpn');
      assert.equal(transport.settings?.addressRequest, true);
      assert.deepEqual(transport.settings?.endpoints, [
        { host: '198.51.100.7', port: 4433, addresses: ['198.51.100.7'] },
      ]);
      await until('routes', () => routes().includes('128.0.0.0/1 mqr0'));
      assert.ok(routes().includes('198.51.100.7 up0'), 'server pinned outside the tunnel');
      assert.ok(routes().includes('128.0.0.0/1 mqr0'));
      assert.ok(routes().includes('default up0'), 'original default kept');
      assert.match(readFileSync(resolvConf, 'utf8'), /nameserver 10\.77\.0\.1/);
      const up = await queryStatus(socket);
      assert.equal(up.state, 'up');
      assert.deepEqual(up.addresses, ['10.77.0.2/32']);
      assert.deepEqual(up.routes, ['0.0.0.0/0']);

      // The server advertises a new route set: the kernel follows.
      transport.events[0].routes([
        { version: 4, start: '10.78.0.0', end: '10.78.255.255', protocol: 0 },
      ]);
      // Applied add-first, then removals, then unpinning: wait for the last step.
      await until('new routes', () => !routes().includes('198.51.100.7 up0'));
      assert.ok(routes().includes('10.78.0.0/16 mqr0'));
      assert.ok(!routes().includes('0.0.0.0/1 mqr0'));

      // An outage: the TUN and its routes stay; the client reconnects by itself.
      transport.events[0].closed({ kind: 'lost', message: 'idle timeout' });
      assert.ok(hasLink('mqr0'));
      assert.ok(routes().includes('10.78.0.0/16 mqr0'));
      await until(
        'reconnect',
        async () => (await queryStatus(socket)).state === 'up' && transport.events.length === 2,
      );
      await until('routes of the new tunnel', () => routes().includes('128.0.0.0/1 mqr0'));
      const again = await queryStatus(socket);
      assert.equal(again.reconnects, 1);
      assert.deepEqual(again.addresses, ['10.77.0.2/32']);
    } finally {
      stop.abort();
      await running;
    }
    assert.ok(!hasLink('mqr0'), 'TUN removed');
    assert.ok(
      !routes().some((r) => r.includes('mqr0') || r.startsWith('198.51.100.7')),
      'routes removed',
    );
    assert.equal(readFileSync(resolvConf, 'utf8'), 'nameserver 192.0.2.53\n', 'DNS restored');
    assert.ok(!existsSync(socket), 'socket removed');
    assert.ok(!existsSync(join(dir, 'state', 'mqr0.json')), 'state file removed');
    assert.ok(logs.some((l) => l.includes('"msg":"tunnel up"')));
  });

  it('stops with the reason on a definitive denial, and cleans up', async () => {
    const transport = new ScriptedTransport();
    transport.deny = 'server denied the tunnel: 403 (device revoked)';
    await assert.rejects(
      runClient(options('mqr1', { dns: false }), {
        createTransport: () => transport,
        openDevice: async () => device,
        stop: new AbortController().signal,
        ip: new IpTool(undefined, { netns: ns }),
        logStream: new Writable({ write: (_c, _e, cb) => cb() }),
      }),
      (err: unknown) =>
        err instanceof ClientError &&
        err.message === 'denied by the server: server denied the tunnel: 403 (device revoked)',
    );
    assert.ok(!hasLink('mqr1'));
  });
});
