// `masque-bench loss` over the real stack: two network namespaces (test/e2e's Topology), the
// control plane, the data plane and masque-client started through their CLIs, the impairment
// proxy in front of the data plane (as test/e2e/fec.test.ts places it), and the sequenced echo
// (probe.ts) through the tunnel. One cell = one loss profile × one FEC mode: a fresh proxy with
// the profile, a fresh client (so the adaptive controller starts from nothing, as on a new
// tunnel), a warm-up, then the measured window.
//
// Which scheme: the client offers Reed–Solomon then XOR and the data plane takes the first it
// supports, so the XOR cells run against a data plane configured with `schemes = ["xor"]`; off
// is the client's [fec] disabled (no offer: byte for byte a client without FEC).
import { randomInt } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryStatus, type ClientStatus } from '../../client/status.js';
import { isRoot, ROOT, Topology, type Proc } from '../../test/e2e/netns.js';
import {
  addUser,
  scrape,
  startClient,
  startControlPlane,
  startDataplane,
  type Stack,
} from '../../test/e2e/stack.js';
import { measuredRange, type EchoResult, type SenderResult } from './probe.js';
import { impairArgs, meanLossPercent, type FecMode, type LossProfile } from './profiles.js';

export interface NetworkOptions {
  profiles: readonly LossProfile[];
  modes: readonly FecMode[];
  rate: number;
  size: number;
  seconds: number;
  warmupSeconds: number;
  delayMs: number;
  blockSize: number;
  redundancyPercent: number;
  /** The data plane's flush timer and interleaving depth (the client's bundle has neither key). */
  flushMs: number;
  interleave: number;
  seed: number;
  /** Progress lines (stderr by default). */
  log: (line: string) => void;
}

/** Sums of the data plane's per-client counters (one client here). */
export interface DataplaneCounters {
  txBytes: number;
  fecOverheadBytes: number;
  fecRecovered: number;
}

export interface NetworkCell {
  profile: string;
  fec: FecMode;
  /** What the client and data plane agreed ("off" without FEC). */
  scheme: string;
  nominalLossPercent: number;
  /** Dropped by the proxy over all datagrams (QUIC's own included), both directions. */
  linkLossPercent: number;
  sent: number;
  upDelivered: number;
  downDelivered: number;
  upLossPercent: number;
  /** Of the datagrams that reached the echo, the share whose echo did not come back. */
  downLossPercent: number;
  /** Mean of the two one-way figures. */
  deliveredLossPercent: number;
  /** IP bits delivered per second, mean of the two directions. */
  goodputMbps: number;
  rttP50Ms: number;
  rttP99Ms: number;
  upP50Ms: number;
  upP99Ms: number;
  downP50Ms: number;
  downP99Ms: number;
  /** FEC bytes over IP bytes sent: client → data plane (client status), and back (/metrics). */
  overheadUpPercent: number;
  overheadDownPercent: number;
  /** Packets rebuilt from repair: by the data plane (uplink) and by the client (downlink). */
  recoveredUp: number;
  recoveredDown: number;
  measuredSeconds: number;
}

export class NetworkBenchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NetworkBenchError';
  }
}

const PROXY_PORT = 5443;
const PROBE_PORT = 5999;
const METRICS = '127.0.0.1:9464';
/** The data plane's own tunnel address (first of the pool): the echo binds there. */
const GATEWAY = '10.77.0.1';
/** Shards report to the supervisor once a second; wait that long before reading /metrics. */
const REPORT_WAIT_MS = 1200;
const PROBE = join(ROOT, 'dist', 'bench', 'loss', 'probe.js');
/**
 * How long the sender waits for echoes after its last datagram: several times the RTT and the
 * receivers' 100 ms hold, so only datagrams queued far longer than that count as lost.
 */
const DRAIN_MS = 500;

/** Sums every sample of `name` in a Prometheus text exposition whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    const ok = Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`));
    if (ok) sum += Number(m[3]);
  }
  return sum;
}

export function dataplaneCounters(text: string): DataplaneCounters {
  return {
    txBytes: sumMetric(text, 'masque_vpn_client_bytes_total', { direction: 'tx' }),
    fecOverheadBytes: sumMetric(text, 'masque_vpn_client_fec_overhead_bytes_total'),
    fecRecovered: sumMetric(text, 'masque_vpn_client_fec_recovered_total'),
  };
}

/** Per-direction figures the impairment proxy prints when it stops. */
export function parseProxyStats(output: string): { packets: number; dropped: number } {
  let packets = 0;
  let dropped = 0;
  for (const m of output.matchAll(
    /^(?:up|down)\s+packets (\d+)\s+forwarded \d+\s+lost (\d+)\s+queue drops (\d+)/gm,
  )) {
    packets += Number(m[1]);
    dropped += Number(m[2]) + Number(m[3]);
  }
  return { packets, dropped };
}

/** The bundle with its endpoint moved to the proxy and [fec] as the cell wants it. */
export function bundleFor(
  original: string,
  endpoint: string,
  fec: boolean,
  blockSize: number,
  redundancyPercent: number,
  flushMs = 5,
  interleave = 1,
): string {
  let text = original.replace(/^endpoints\s*=.*$/m, `endpoints = ["${endpoint}"]`);
  const table =
    `[fec]\nenabled = ${fec}\nblock_size = ${blockSize}\n` +
    `redundancy_percent = ${Math.round(redundancyPercent)}\n` +
    `flush_ms = ${flushMs}\ninterleave = ${interleave}\n`;
  if (/^\[fec\]$/m.test(text)) {
    text = text.replace(/^\[fec\]\n(?:[a-z_]+\s*=.*\n)*/m, table);
  } else {
    text = `${text.trimEnd()}\n\n${table}`;
  }
  return text;
}

/**
 * The data plane's [fec]: the client's block and bounds, only the schemes given, and the data
 * plane's own flush timer and interleaving (they shape only what it sends).
 */
export function dataplaneConfig(
  schemes: readonly string[],
  blockSize: number,
  redundancyPercent: number,
  flushMs = 5,
  interleave = 1,
): string {
  const m = Math.max(1, Math.ceil((blockSize * redundancyPercent) / 100));
  return [
    '# written by masque-bench loss',
    'drain_seconds = 0',
    '',
    '[fec]',
    'enabled = true',
    `schemes = [${schemes.map((s) => `"${s}"`).join(', ')}]`,
    `block_size = ${blockSize}`,
    `max_repair = ${Math.min(m, 256 - blockSize)}`,
    `min_redundancy_percent = ${Math.min(10, redundancyPercent)}`,
    `max_redundancy_percent = ${redundancyPercent}`,
    `flush_ms = ${flushMs}`,
    `interleave = ${interleave}`,
    '',
  ].join('\n');
}

const pct = (part: number, whole: number): number => (whole > 0 ? (100 * part) / whole : 0);

/** One cell's figures from what the probes, the client and the data plane reported. */
export function cellResult(
  profile: LossProfile,
  mode: FecMode,
  size: number,
  sender: SenderResult,
  echo: EchoResult,
  client: { before: ClientStatus; after: ClientStatus },
  dataplane: { before: DataplaneCounters; after: DataplaneCounters },
  proxy: { packets: number; dropped: number },
): NetworkCell {
  const upLoss = pct(sender.sent - echo.received, sender.sent);
  const downLoss = pct(echo.received - sender.echoed, echo.received);
  const bits = (n: number): number => (n * size * 8) / Math.max(1e-9, sender.measuredSeconds) / 1e6;
  const cf0 = client.before.fec;
  const cf1 = client.after.fec;
  const dp0 = dataplane.before;
  const dp1 = dataplane.after;
  return {
    profile: profile.name,
    fec: mode,
    scheme: cf1?.scheme ?? 'off',
    nominalLossPercent: meanLossPercent(profile),
    linkLossPercent: pct(proxy.dropped, proxy.packets),
    sent: sender.sent,
    upDelivered: echo.received,
    downDelivered: sender.echoed,
    upLossPercent: upLoss,
    downLossPercent: downLoss,
    deliveredLossPercent: (upLoss + downLoss) / 2,
    goodputMbps: (bits(echo.received) + bits(sender.echoed)) / 2,
    rttP50Ms: sender.rttMs.p50,
    rttP99Ms: sender.rttMs.p99,
    upP50Ms: echo.upMs.p50,
    upP99Ms: echo.upMs.p99,
    downP50Ms: sender.downMs.p50,
    downP99Ms: sender.downMs.p99,
    overheadUpPercent: pct(
      (cf1?.overheadBytes ?? 0) - (cf0?.overheadBytes ?? 0),
      client.after.bytesSent - client.before.bytesSent,
    ),
    overheadDownPercent: pct(
      dp1.fecOverheadBytes - dp0.fecOverheadBytes,
      dp1.txBytes - dp0.txBytes,
    ),
    recoveredUp: dp1.fecRecovered - dp0.fecRecovered,
    recoveredDown: (cf1?.recovered ?? 0) - (cf0?.recovered ?? 0),
    measuredSeconds: sender.measuredSeconds,
  };
}

function lastJson<T>(output: string, what: string): T {
  const line = output
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new NetworkBenchError(`${what} printed no result:\n${output}`);
  return JSON.parse(line) as T;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class Bench {
  private readonly bundleText: string;

  constructor(
    private readonly topo: Topology,
    private readonly stack: Stack,
    private readonly bundle: string,
    private readonly o: NetworkOptions,
  ) {
    this.bundleText = readFileSync(bundle, 'utf8');
  }

  async counters(): Promise<DataplaneCounters> {
    return dataplaneCounters(await scrape(this.topo, this.topo.srv, METRICS));
  }

  async cell(profile: LossProfile, mode: FecMode): Promise<NetworkCell> {
    const { topo, o } = this;
    const started: Proc[] = [];
    try {
      // The proxy, the echo and the /metrics baseline do not depend on each other: start them
      // together (process start-up is most of a short cell).
      const run = randomInt(1, 2 ** 31);
      const { from, to } = measuredRange(o);
      const proxy = topo.start(topo.srv, 'masque-bench', [
        'impair',
        '--listen',
        `${topo.srvAddr}:${PROXY_PORT}`,
        '--target',
        `${topo.srvAddr}:4433`,
        ...impairArgs(profile, o.delayMs, o.seed),
      ]);
      started.push(proxy);
      const echo = topo.startCmd(topo.srv, [
        process.execPath,
        PROBE,
        'echo',
        '--bind',
        `${GATEWAY}:${PROBE_PORT}`,
        '--run',
        String(run),
        '--from',
        String(from),
        '--to',
        String(to),
      ]);
      started.push(echo);
      writeFileSync(
        this.bundle,
        bundleFor(
          this.bundleText,
          `${topo.srvAddr}:${PROXY_PORT}`,
          mode !== 'off',
          o.blockSize,
          o.redundancyPercent,
          o.flushMs,
          o.interleave,
        ),
      );
      const [dpBefore] = await Promise.all([
        this.counters(),
        proxy.waitFor(/impair: /, 15_000),
        echo.waitFor(/ready/, 15_000),
      ]);
      const client = await startClient(topo, topo.cli, this.bundle);
      started.push(client);
      const statusSocket = join(topo.dir, `state-${topo.cli}-mq0`, 'mq0.sock');
      const sender = topo.startCmd(topo.cli, [
        process.execPath,
        PROBE,
        'send',
        '--to',
        `${GATEWAY}:${PROBE_PORT}`,
        '--run',
        String(run),
        '--rate',
        String(o.rate),
        '--size',
        String(o.size),
        '--warmup',
        String(o.warmupSeconds),
        '--seconds',
        String(o.seconds),
        '--drain',
        String(DRAIN_MS),
      ]);
      started.push(sender);
      await sender.waitFor(/measuring/, o.warmupSeconds * 1000 + 15_000);
      const before = await queryStatus(statusSocket);
      await sender.waitFor(/^\{.*\}$/m, (o.warmupSeconds + o.seconds) * 1000 + 30_000);
      const after = await queryStatus(statusSocket);
      const flowEnded = Date.now();
      await echo.stop(5_000);
      const senderResult = lastJson<SenderResult>(sender.output(), 'the sender');
      const echoResult = lastJson<EchoResult>(echo.output(), 'the echo');
      await Promise.all([client.stop(5_000), proxy.stop(5_000)]);
      await sleep(Math.max(0, REPORT_WAIT_MS - (Date.now() - flowEnded)));
      const dpAfter = await this.counters();
      return cellResult(
        profile,
        mode,
        o.size,
        senderResult,
        echoResult,
        { before, after },
        { before: dpBefore, after: dpAfter },
        parseProxyStats(proxy.output()),
      );
    } finally {
      for (const p of started.reverse()) await p.stop(3_000).catch(() => undefined);
    }
  }

  /** Runs the given modes against one data plane configured for `schemes`. */
  async withDataplane(
    schemes: readonly string[],
    modes: readonly FecMode[],
    cells: NetworkCell[],
  ): Promise<void> {
    const { o } = this;
    const file = join(this.topo.dir, `dataplane-${schemes.join('-')}.toml`);
    writeFileSync(
      file,
      dataplaneConfig(schemes, o.blockSize, o.redundancyPercent, o.flushMs, o.interleave),
    );
    const dp = await startDataplane(this.stack, 1, ['--config', file, '--metrics', METRICS]);
    try {
      for (const mode of modes) {
        for (const profile of o.profiles) {
          const t0 = Date.now();
          const c = await this.cell(profile, mode);
          o.log(
            `loss: ${profile.name.padEnd(11)} ${mode.padEnd(3)} (${c.scheme}) delivered loss ` +
              `${c.deliveredLossPercent.toFixed(3)}%, rtt p50 ${c.rttP50Ms.toFixed(1)} ms, ` +
              `overhead ${c.overheadUpPercent.toFixed(1)}%/${c.overheadDownPercent.toFixed(1)}% ` +
              `[${((Date.now() - t0) / 1000).toFixed(1)} s]`,
          );
          cells.push(c);
        }
      }
    } finally {
      await dp.stop(5_000);
    }
  }
}

/**
 * Runs every profile × mode on the real stack. Needs root (namespaces, TUN devices). Namespaces
 * are `fl<pid>s`/`fl<pid>c`; they, their processes and the temp dir go on return, on error and on
 * SIGINT/SIGTERM.
 */
export async function runNetworkMatrix(o: NetworkOptions): Promise<NetworkCell[]> {
  if (!isRoot()) {
    throw new NetworkBenchError(
      'the real-network loss bench needs root (namespaces, TUN); --simulated runs without',
    );
  }
  const topo = await Topology.create('fl');
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    o.log(`loss: ${signal}, removing namespaces ${topo.srv} ${topo.cli}`);
    void topo.destroy().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const cells: NetworkCell[] = [];
  try {
    o.log(`loss: namespaces ${topo.srv} ${topo.cli}, work dir ${topo.dir}`);
    const stack = await startControlPlane(topo);
    const user = await addUser(stack, 'lossbench');
    const bench = new Bench(topo, stack, user.bundle, o);
    // Reed–Solomon is what the client offers first; "off" does not offer at all.
    const withRs = o.modes.filter((m) => m !== 'xor');
    if (withRs.length > 0) await bench.withDataplane(['rs', 'xor'], withRs, cells);
    if (o.modes.includes('xor')) await bench.withDataplane(['xor'], ['xor'], cells);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!interrupted) await topo.destroy();
  }
  // Table order: by profile, then mode as asked.
  const rank = (c: NetworkCell): number =>
    o.profiles.findIndex((p) => p.name === c.profile) * 10 + o.modes.indexOf(c.fec);
  return cells.sort((a, b) => rank(a) - rank(b));
}
