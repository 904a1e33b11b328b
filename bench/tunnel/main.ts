// `masque-bench tunnel`: on the acceptance topology (two namespaces joined by a veth), one run
// measures plain veth, our tunnel (controlplane + dataplane + masque-client through real TUNs),
// wireguard-go and OpenVPN: iperf3 TCP 1 and 4 streams, UDP, ping RTT, and the CPU the tunnel
// daemons spent per gigabit. Peers are measured in the same run because this machine kind varies
// ±10% between runs: only ratios within one run mean something.
import { loadavg, cpus } from 'node:os';

import { isRoot, Topology } from '../../test/e2e/netns.js';
import { cpuPerGbit, cpuSeconds } from './cpu.js';
import { captureHops, HOPS } from './hops.js';
import { ForeignCpu, waitForQuiet } from './quiet.js';
import { IperfResultError, parseIperf3 } from './iperf.js';
import { installPeerPackages } from './packages.js';
import { parsePing } from './ping.js';
import { computeRatios, formatTable, targets, type FlowResult, type PathResult } from './report.js';
import { openvpn, ourTunnel, plainVeth, wireguard, type TunnelPath } from './tunnels.js';

type Peer = 'wg' | 'ovpn';

export interface TunnelBenchOptions {
  seconds: number;
  workers: number;
  peers: Peer[];
  pings: number;
  json: boolean;
  /** Wait for others' CPU below this (% of one core) before each measurement; 0: do not wait. */
  gatePercent: number;
  /** Longest wait for a quiet machine before a measurement runs anyway. */
  gateWaitSeconds: number;
  /** Echoes captured per path for the per-hop latency breakdown (0: none). */
  hops: number;
}

const IPERF_PORT = 5301;
const UDP_PAYLOAD = 1200; // fits every path's MTU (ours 1280), so no path fragments
/**
 * UDP payload below which a packet cannot carry the 84-byte tunnelled echo: ACK-only QUIC packets
 * and WireGuard keep-alives (32 bytes) are smaller, both tunnels' echo packets larger.
 */
const MIN_TUNNELLED_ECHO = 84;

function usage(): string {
  return [
    'usage: masque-bench tunnel [--seconds S] [--workers N] [--peers wg,ovpn] [--quick] [--json]',
    '  --seconds S   iperf3 duration per flow, 1..10 (default 5; --quick: 2)',
    '  --workers N   data plane workers (default 2)',
    '  --peers LIST  peers to compare against, subset of wg,ovpn (default both; "" for none)',
    '  --quick       short flows and 20 pings, for a smoke run',
    "  --gate PCT    before each measurement wait until others' CPU is below PCT% of a core",
    '                for a whole second (default 10; 0: never wait)',
    '  --gate-wait S ...but at most S seconds, then measure anyway (default 60; --quick: 10)',
    '  --hops N      also split the RTT of N pings into hops with tcpdump on both TUNs and',
    '                both veths (ours and wireguard-go; needs tcpdump; default 0: off)',
    '  --json        print the results as JSON instead of tables',
    'Needs root; installs wireguard-go, wireguard-tools and openvpn with apt-get when missing.',
    '',
  ].join('\n');
}

export function parseArgs(argv: readonly string[]): TunnelBenchOptions | string {
  const o: TunnelBenchOptions = {
    seconds: 5,
    workers: 2,
    peers: ['wg', 'ovpn'],
    pings: 50,
    json: false,
    gatePercent: 10,
    gateWaitSeconds: 60,
    hops: 0,
  };
  let quick = false;
  let secondsGiven = false;
  let gateWaitGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    try {
      if (a === '--seconds') {
        o.seconds = Number(value());
        secondsGiven = true;
        if (!Number.isInteger(o.seconds) || o.seconds < 1 || o.seconds > 10) {
          return '--seconds must be an integer 1..10';
        }
      } else if (a === '--workers') {
        o.workers = Number(value());
        if (!Number.isInteger(o.workers) || o.workers < 1 || o.workers > 64) {
          return '--workers must be an integer 1..64';
        }
      } else if (a === '--peers') {
        const list = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        for (const p of list)
          if (p !== 'wg' && p !== 'ovpn') return `unknown peer '${p}' (wg, ovpn)`;
        o.peers = [...new Set(list as Peer[])];
      } else if (a === '--gate') {
        o.gatePercent = Number(value());
        if (!Number.isFinite(o.gatePercent) || o.gatePercent < 0 || o.gatePercent > 200)
          return '--gate must be a number 0..200 (% of one core)';
      } else if (a === '--gate-wait') {
        o.gateWaitSeconds = Number(value());
        gateWaitGiven = true;
        if (
          !Number.isInteger(o.gateWaitSeconds) ||
          o.gateWaitSeconds < 1 ||
          o.gateWaitSeconds > 600
        )
          return '--gate-wait must be an integer 1..600';
      } else if (a === '--hops') {
        o.hops = Number(value());
        if (!Number.isInteger(o.hops) || o.hops < 0 || o.hops > 1000)
          return '--hops must be an integer 0..1000';
      } else if (a === '--quick') quick = true;
      else if (a === '--json') o.json = true;
      else if (a === '--help' || a === '-h') return '';
      else return `unknown option ${a}`;
    } catch (e) {
      return (e as Error).message;
    }
  }
  if (quick) {
    if (!secondsGiven) o.seconds = 2;
    if (!gateWaitGiven) o.gateWaitSeconds = 10;
    o.pings = 20;
  }
  return o;
}

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** Waits for a quiet machine (bounded), logs when it had to give up. */
async function gate(o: TunnelBenchOptions, what: string): Promise<void> {
  if (o.gatePercent <= 0) return;
  const g = await waitForQuiet(o.gatePercent, o.gateWaitSeconds);
  if (!g.quiet)
    log(
      `  ${what}: machine still busy after ${g.waitedSeconds.toFixed(0)} s ` +
        `(others ${g.foreignPercent.toFixed(0)}% of a core); measuring anyway`,
    );
}

async function iperf(
  topo: Topology,
  tunnel: TunnelPath,
  o: TunnelBenchOptions,
  name: string,
  extra: string[],
): Promise<FlowResult> {
  const seconds = o.seconds;
  const server = topo.startCmd(topo.srv, [
    'iperf3',
    '-s',
    '-1',
    '-p',
    String(IPERF_PORT),
    '--forceflush',
  ]);
  try {
    await server.waitFor(/Server listening/, 10_000);
    await gate(o, `${tunnel.path} ${name}`);
    const others = new ForeignCpu();
    const cpu0 = cpuSeconds(tunnel.daemons);
    const t0 = performance.now();
    const r = await topo.exec(
      topo.cli,
      [
        'iperf3',
        '-c',
        tunnel.target,
        '-p',
        String(IPERF_PORT),
        '-t',
        String(seconds),
        '-J',
        ...extra,
      ],
      { timeoutMs: (seconds + 20) * 1000, allowFail: true },
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(tunnel.daemons) - cpu0;
    const foreignPercent = others.read();
    const s = parseIperf3(r.stdout || r.stderr);
    const out: FlowResult = { mbps: s.bitsPerSecond / 1e6, bytes: s.bytes, foreignPercent };
    if (tunnel.daemons.length > 0) {
      out.cpuSeconds = cpu;
      out.cpuPercent = (cpu / wall) * 100;
      out.cpuPerGbit = cpuPerGbit(cpu, s.bytes);
    }
    if (s.retransmits !== undefined) out.retransmits = s.retransmits;
    if (s.lostPercent !== undefined) out.lostPercent = s.lostPercent;
    return out;
  } finally {
    await server.stop(2_000);
  }
}

async function measure(
  topo: Topology,
  tunnel: TunnelPath,
  o: TunnelBenchOptions,
  result: PathResult,
): Promise<void> {
  await gate(o, `${tunnel.path} ping`);
  const others = new ForeignCpu();
  const p = await topo.exec(
    topo.cli,
    ['ping', '-n', '-c', String(o.pings), '-i', '0.01', '-W', '1', tunnel.target],
    { allowFail: true, timeoutMs: 30_000 },
  );
  result.ping = parsePing(p.stdout);
  result.pingForeignPercent = others.read();
  log(
    `  ${tunnel.path} ping: avg ${result.ping.avgMs.toFixed(3)} ms, p99 ${result.ping.p99Ms.toFixed(3)} ms`,
  );
  if (o.hops > 0 && tunnel.tuns !== undefined) {
    await gate(o, `${tunnel.path} hops`);
    result.hops = await captureHops(
      topo,
      {
        clientTun: tunnel.tuns.client,
        serverTun: tunnel.tuns.server,
        clientVeth: `v${topo.cli}`.slice(0, 15),
        serverVeth: `v${topo.srv}`.slice(0, 15),
      },
      tunnel.target,
      o.hops,
      MIN_TUNNELLED_ECHO,
    );
    if (result.hops === undefined) log(`  ${tunnel.path} hops: no echo matched in the captures`);
    else
      log(
        `  ${tunnel.path} hops (p50 ms): ` +
          HOPS.map((h) => `${h} ${result.hops?.p50[h].toFixed(3)}`).join(', '),
      );
  }
  const flows: [keyof Pick<PathResult, 'tcp1' | 'tcp4' | 'udp'>, string[]][] = [
    ['tcp1', []],
    ['tcp4', ['-P', '4']],
    ['udp', ['-u', '-b', '0', '-l', String(UDP_PAYLOAD)]],
  ];
  for (const [name, args] of flows) {
    try {
      const f = await iperf(topo, tunnel, o, name, args);
      result[name] = f;
      log(
        `  ${tunnel.path} ${name}: ${f.mbps.toFixed(0)} Mbit/s` +
          (f.cpuPercent !== undefined ? `, daemons ${f.cpuPercent.toFixed(0)}% of a core` : '') +
          (f.lostPercent !== undefined ? `, loss ${f.lostPercent.toFixed(1)}%` : '') +
          `, others ${(f.foreignPercent ?? 0).toFixed(0)}% of a core`,
      );
    } catch (e) {
      if (!(e instanceof IperfResultError)) throw e;
      result.error = `${name}: ${e.message}`;
      log(`  ${tunnel.path} ${name} failed: ${e.message}`);
    }
  }
}

export async function runTunnelBench(o: TunnelBenchOptions): Promise<{
  results: PathResult[];
  topo: Topology;
}> {
  const results: PathResult[] = [];
  const topo = await Topology.create('mqbt');
  active = topo;
  const steps: { path: PathResult['path']; label: string; up: () => Promise<TunnelPath> }[] = [
    { path: 'veth', label: 'plain veth', up: () => Promise.resolve(plainVeth(topo)) },
    { path: 'ours', label: 'masque-vpn', up: () => ourTunnel(topo, o.workers) },
  ];
  if (o.peers.includes('wg'))
    steps.push({ path: 'wg', label: 'wireguard-go', up: () => wireguard(topo) });
  if (o.peers.includes('ovpn'))
    steps.push({ path: 'ovpn', label: 'OpenVPN', up: () => openvpn(topo) });
  for (const step of steps) {
    const result: PathResult = { path: step.path, label: step.label, load1: loadavg()[0] };
    results.push(result);
    log(`== ${step.label}: up`);
    let tunnel: TunnelPath | undefined;
    try {
      tunnel = await step.up();
      result.label = tunnel.label;
      await measure(topo, tunnel, o, result);
    } catch (e) {
      result.error = (e as Error).message;
      log(`  ${step.path} failed: ${result.error.slice(0, 2000)}`);
    } finally {
      await tunnel?.stop();
    }
  }
  return { results, topo };
}

/** The topology of the run in progress, torn down by the signal handlers. */
let active: Topology | undefined;

function onSignal(sig: NodeJS.Signals): void {
  log(`${sig}: removing namespaces and stopping our processes`);
  const t = active;
  active = undefined;
  void (t ? t.destroy() : Promise.resolve()).finally(() =>
    process.exit(sig === 'SIGINT' ? 130 : 143),
  );
}

export async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  if (typeof o === 'string') {
    process.stderr.write(o === '' ? usage() : `masque-bench tunnel: ${o}\n${usage()}`);
    return o === '' ? 0 : 2;
  }
  if (!isRoot()) {
    process.stderr.write('masque-bench tunnel: needs root (network namespaces, TUN devices)\n');
    return 2;
  }
  const peerErrors = new Map<Peer, string>();
  try {
    installPeerPackages(o.hops > 0 ? [...o.peers, 'hops'] : o.peers, log);
  } catch (e) {
    log(`peer packages: ${(e as Error).message}`);
    for (const p of o.peers) peerErrors.set(p, (e as Error).message);
  }
  const loadStart = loadavg();
  const started = new Date();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let results: PathResult[];
  try {
    const run = await runTunnelBench(o);
    results = run.results;
    active = undefined;
    await run.topo.destroy();
  } finally {
    if (active !== undefined) await active.destroy();
    active = undefined;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const loadEnd = loadavg();
  const ratios = computeRatios(results);
  const failed = results.filter((r) => r.error !== undefined);
  const command = `node bin/masque-bench.js tunnel ${argv.join(' ')}`.trim();
  if (o.json) {
    const doc = {
      command,
      date: started.toISOString(),
      machine: { cpus: cpus().length, loadavgStart: loadStart, loadavgEnd: loadEnd },
      options: o,
      results,
      ratios,
      targets: targets(ratios),
      peerPackageErrors: Object.fromEntries(peerErrors),
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
    process.stdout.write(
      `masque-bench tunnel — ${started.toISOString()} — ${cpus().length} CPUs, load average ` +
        `${la(loadStart)} at start, ${la(loadEnd)} at end\n` +
        `command: ${command}\n` +
        `iperf3 ${o.seconds} s per flow; UDP -b 0 -l ${UDP_PAYLOAD}; ping -c ${o.pings} -i 0.01; ` +
        "CPU = utime+stime of the path's daemons (all their processes), 100% = one core\n\n" +
        formatTable(results, ratios),
    );
  }
  return failed.length > 0 ? 1 : 0;
}
