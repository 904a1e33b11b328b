// The tunnels under test, each brought up on the shared two-namespace Topology and torn down
// before the next one starts, so no path's idle daemons steal CPU from another's measurement.
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Proc, Topology } from '../../test/e2e/netns.js';
import { addUser, startClient, startControlPlane, startDataplane } from '../../test/e2e/stack.js';
import type { PathName } from './report.js';

export interface TunnelPath {
  path: PathName;
  label: string;
  /** Address of the server end, reached from the client namespace. */
  target: string;
  /** PIDs we started for this path; CPU is summed over their process trees. */
  daemons: number[];
  /** The path's TUN devices (client side, server side), for per-hop captures. */
  tuns?: { client: string; server: string };
  stop(): Promise<void>;
}

function pids(procs: readonly Proc[]): number[] {
  return procs.map((p) => p.child.pid).filter((p): p is number => p !== undefined);
}

async function stopAll(procs: readonly Proc[]): Promise<void> {
  for (const p of [...procs].reverse()) await p.stop(5_000).catch(() => undefined);
}

async function until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function reachable(topo: Topology, target: string): Promise<void> {
  const r = await topo.exec(topo.cli, ['ping', '-n', '-c', '3', '-i', '0.2', '-W', '2', target], {
    allowFail: true,
    timeoutMs: 15_000,
  });
  if (!/ [1-9]\d* received/.test(r.stdout)) throw new Error(`${target} not reachable: ${r.stdout}`);
}

export function plainVeth(topo: Topology): TunnelPath {
  return {
    path: 'veth',
    label: 'plain veth',
    target: topo.srvAddr,
    daemons: [],
    stop: () => Promise.resolve(),
  };
}

/** controlplane + dataplane --workers N in srv, masque-client in cli, through their CLIs. */
export async function ourTunnel(topo: Topology, workers: number): Promise<TunnelPath> {
  const procs: Proc[] = [];
  try {
    const stack = await startControlPlane(topo);
    procs.push(stack.control);
    procs.push(await startDataplane(stack, workers));
    const user = await addUser(stack, 'bench');
    procs.push(await startClient(topo, topo.cli, user.bundle));
    // The server's end of the tunnel, as in the end-to-end tests.
    const target = '10.77.0.1';
    await reachable(topo, target);
    const serverTun = /^\d+: ([^:@]+)/m.exec(
      await topo.ip('-n', topo.srv, '-o', 'link', 'show', 'type', 'tun'),
    )?.[1];
    return {
      path: 'ours',
      label: `masque-vpn (--workers ${workers})`,
      target,
      daemons: pids(procs),
      tuns: serverTun === undefined ? undefined : { client: 'mq0', server: serverTun },
      stop: () => stopAll(procs),
    };
  } catch (err) {
    await stopAll(procs);
    throw err;
  }
}

/** wireguard-go on both ends, keys from wg(8), MTU 1420, tunnel 10.98.1.0/24. */
export async function wireguard(topo: Topology): Promise<TunnelPath> {
  const id = process.pid % 100000;
  const ifc = `mqbw${id}c`;
  const ifs = `mqbw${id}s`;
  const keys = (side: string) => {
    const priv = execFileSync('wg', ['genkey'], { encoding: 'utf8', timeout: 5_000 });
    const file = join(topo.dir, `wg-${side}.key`);
    writeFileSync(file, priv, { mode: 0o600 });
    const pub = execFileSync('wg', ['pubkey'], { input: priv, encoding: 'utf8', timeout: 5_000 });
    return { file, pub: pub.trim() };
  };
  const kc = keys('c');
  const ks = keys('s');
  const procs = [
    topo.startCmd(topo.cli, ['wireguard-go', '-f', ifc]),
    topo.startCmd(topo.srv, ['wireguard-go', '-f', ifs]),
  ];
  try {
    // wireguard-go's UAPI socket lives in /var/run, which namespaces share.
    for (const i of [ifc, ifs]) {
      await until(() => existsSync(`/var/run/wireguard/${i}.sock`), 10_000, `wireguard-go ${i}`);
    }
    const ends = [
      {
        ns: topo.cli,
        dev: ifc,
        key: kc.file,
        peer: ks.pub,
        ep: topo.srvAddr,
        me: '10.98.1.1',
        it: '10.98.1.2',
      },
      {
        ns: topo.srv,
        dev: ifs,
        key: ks.file,
        peer: kc.pub,
        ep: topo.cliAddr,
        me: '10.98.1.2',
        it: '10.98.1.1',
      },
    ];
    for (const e of ends) {
      await topo.exec(e.ns, [
        'wg', 'set', e.dev, 'listen-port', '51820', 'private-key', e.key,
        'peer', e.peer, 'endpoint', `${e.ep}:51820`, 'allowed-ips', `${e.it}/32`,
      ], { timeoutMs: 10_000 }); // prettier-ignore
      await topo.ip('-n', e.ns, 'addr', 'add', `${e.me}/24`, 'dev', e.dev);
      await topo.ip('-n', e.ns, 'link', 'set', e.dev, 'mtu', '1420', 'up');
    }
    await reachable(topo, '10.98.1.2');
    return {
      path: 'wg',
      label: `wireguard-go ${packageVersion('wireguard-go')}`,
      target: '10.98.1.2',
      daemons: pids(procs),
      tuns: { client: ifc, server: ifs },
      stop: () => stopAll(procs),
    };
  } catch (err) {
    await stopAll(procs);
    throw err;
  }
}

/** OpenVPN 2.6 point-to-point: UDP, TUN, TLS with self-signed certs pinned by fingerprint, AES-256-GCM, DCO off. */
export async function openvpn(topo: Topology): Promise<TunnelPath> {
  const id = process.pid % 100000;
  const fingerprint: Record<string, string> = {};
  for (const side of ['c', 's']) {
    const base = join(topo.dir, `ovpn-${side}`);
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-days', '2', '-subj', `/CN=mq-bench-${side}`, '-keyout', `${base}.key`, '-out', `${base}.crt`,
    ], { stdio: 'ignore', timeout: 10_000 }); // prettier-ignore
    const fp = execFileSync(
      'openssl',
      ['x509', '-in', `${base}.crt`, '-noout', '-fingerprint', '-sha256'],
      {
        encoding: 'utf8',
        timeout: 5_000,
      },
    );
    fingerprint[side] = fp.trim().split('=')[1];
  }
  const conf = (side: 'c' | 's') => {
    const me = side === 'c' ? topo.cliAddr : topo.srvAddr;
    const other = side === 'c' ? topo.srvAddr : topo.cliAddr;
    const [tunMe, tunOther] =
      side === 'c' ? ['10.98.2.1', '10.98.2.2'] : ['10.98.2.2', '10.98.2.1'];
    const base = join(topo.dir, `ovpn-${side}`);
    const lines = [
      `dev mqbo${id}${side}`,
      'dev-type tun',
      'disable-dco',
      'proto udp',
      `local ${me}`,
      'port 1194',
      ...(side === 'c' ? [`remote ${other} 1194`, 'tls-client'] : ['tls-server', 'dh none']),
      `ifconfig ${tunMe} ${tunOther}`,
      `cert ${base}.crt`,
      `key ${base}.key`,
      `peer-fingerprint ${fingerprint[side === 'c' ? 's' : 'c']}`,
      'data-ciphers AES-256-GCM',
      'verb 3',
    ];
    const file = `${base}.conf`;
    writeFileSync(file, lines.join('\n') + '\n', { mode: 0o600 });
    return file;
  };
  const procs = [
    topo.startCmd(topo.srv, ['openvpn', '--config', conf('s')]),
    topo.startCmd(topo.cli, ['openvpn', '--config', conf('c')]),
  ];
  try {
    for (const p of procs) await p.waitFor(/Initialization Sequence Completed/, 30_000);
    await reachable(topo, '10.98.2.2');
    const cipher = /Data Channel: cipher '([^']+)'/.exec(procs[1].output())?.[1] ?? 'AES-256-GCM';
    return {
      path: 'ovpn',
      label: `OpenVPN ${packageVersion('openvpn')} ${cipher}`,
      target: '10.98.2.2',
      daemons: pids(procs),
      stop: () => stopAll(procs),
    };
  } catch (err) {
    await stopAll(procs);
    throw err;
  }
}

/** Debian package version, or '?' (for labels only). */
export function packageVersion(pkg: string): string {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], {
      encoding: 'utf8',
      timeout: 5_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '?';
  }
}
