// The whole system in a Topology: control plane and data plane in `srv`, clients in `cli` (or
// further namespaces), each started through its real CLI exactly as an operator would.
import { join } from 'node:path';
import { ROOT, Topology, type Proc } from './netns.js';

export interface Stack {
  topo: Topology;
  dataDir: string;
  socket: string;
  control: Proc;
  dataplane?: Proc;
}

export async function startControlPlane(topo: Topology): Promise<Stack> {
  const dataDir = join(topo.dir, 'mq');
  const socket = join(dataDir, 'control.sock');
  const control = topo.start(topo.srv, 'controlplane', [
    '--data-dir',
    dataDir,
    '--endpoint',
    `${topo.srvAddr}:4433`,
    '--server-name',
    'vpn.test',
  ]);
  await control.waitFor(/control plane ready/, 30_000);
  return { topo, dataDir, socket, control };
}

export async function startDataplane(
  stack: Stack,
  workers: number,
  extra: string[] = [],
): Promise<Proc> {
  const dp = stack.topo.start(stack.topo.srv, 'dataplane', [
    '--control',
    `unix:${stack.socket}`,
    '--listen',
    '0.0.0.0:4433',
    '--workers',
    String(workers),
    ...extra,
  ]);
  await dp.waitFor(/data plane ready/, 30_000);
  stack.dataplane = dp;
  return dp;
}

/** Runs vpnctl against the stack's control plane (from the host: the socket is a file). */
export async function vpnctl(stack: Stack, args: string[]): Promise<string> {
  const r = await stack.topo.exec(stack.topo.srv, [
    process.execPath,
    join(ROOT, 'bin', 'vpnctl.js'),
    '--control',
    `unix:${stack.socket}`,
    ...args,
  ]);
  return r.stdout;
}

/** Adds a user and returns its bundle path and addresses. */
export async function addUser(
  stack: Stack,
  name: string,
  extra: string[] = [],
): Promise<{ bundle: string; ipv4: string; ipv6: string }> {
  const bundle = join(stack.topo.dir, `${name}.toml`);
  const out = await vpnctl(stack, ['--json', 'user', 'add', name, '--out', bundle, ...extra]);
  const parsed = JSON.parse(out) as Record<string, unknown>;
  const text = JSON.stringify(parsed);
  const ipv4 = /"(10\.77\.\d+\.\d+)"/.exec(text)?.[1];
  const ipv6 = /"(fd77::[0-9a-f:]+)"/.exec(text)?.[1];
  if (ipv4 === undefined || ipv6 === undefined) throw new Error(`no addresses in ${out}`);
  return { bundle, ipv4, ipv6 };
}

export async function startClient(
  topo: Topology,
  ns: string,
  bundle: string,
  tun = 'mq0',
  extra: string[] = [],
): Promise<Proc> {
  const client = topo.start(ns, 'masque-client', [
    '--config',
    bundle,
    '--tun',
    tun,
    '--state-dir',
    join(topo.dir, `state-${ns}-${tun}`),
    ...extra,
  ]);
  await client.waitFor(/routes applied/, 30_000);
  return client;
}

export async function ping(
  topo: Topology,
  ns: string,
  target: string,
  count = 3,
): Promise<{ received: number; output: string }> {
  const r = await topo.exec(ns, ['ping', '-c', String(count), '-W', '2', '-i', '0.2', target], {
    allowFail: true,
  });
  const m = /(\d+) received/.exec(r.stdout);
  return { received: m ? Number(m[1]) : 0, output: r.stdout + r.stderr };
}

/** Fetches a Prometheus endpoint from inside a namespace (metrics listen on its loopback). */
export async function scrape(topo: Topology, ns: string, address: string): Promise<string> {
  const r = await topo.exec(ns, ['curl', '-sf', '--max-time', '5', `http://${address}/metrics`]);
  return r.stdout;
}

/**
 * The value of one sample in Prometheus text format, or undefined when absent. `labels` must all
 * match (other labels on the sample are ignored).
 */
export function metric(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      have.set(l[1], l[2]);
    }
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** Polls `probe` every 200 ms until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Runs tunnel-child.js (the client library without a TUN) in a namespace; returns its JSON. */
export async function tunnelChild<T>(
  topo: Topology,
  ns: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<T> {
  const script = join(ROOT, 'dist', 'test', 'e2e', 'tunnel-child.js');
  const r = await topo.exec(ns, [process.execPath, script, ...args], { timeoutMs });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as T;
}
