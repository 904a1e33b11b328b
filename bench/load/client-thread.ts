// One worker thread of the load generator: its share of simulated clients, each a real
// MasqueTransport tunnel (QUIC + mTLS + HTTP/3 + CONNECT-IP) with no TUN. A client is ready when
// the first ICMP echo to the server's tunnel address comes back; from then on, by its role in the
// scenario, it stays idle, sends UDP echoes (to the responder behind the server's TUN) and ICMP
// echoes at their rates, or is closed and reopened over and over (churn).
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { parseBundle, resolveEndpoints, transportSettings } from '../../client/bundle.js';
import { MasqueTransport } from '../../client/masque-transport.js';
import type { TransportSettings, TunnelHandle } from '../../client/transport.js';
import { roleOf, type Role } from './args.js';
import { LatencyHistogram } from './histogram.js';
import { ECHO_PACKET_SIZE, parseEchoReply, parseIpv4, writeEchoRequest } from './icmp.js';
import { UDP_PACKET_SIZE, parseUdpProbe, writeUdpProbe } from './udp.js';
import {
  emptyCounters,
  errorReason,
  type Counters,
  type FromThread,
  type ThreadJob,
  type ToThread,
} from './wire.js';

/** The first echo is retried: the server may install the route a moment after the 2xx. */
const FIRST_ECHO_RETRY_MS = 250;
const SETUP_TIMEOUT_MS = 15_000;
/** Source port of every UDP probe (the source address already tells the tunnels apart). */
const UDP_SOURCE_PORT = 40_000;

interface Client {
  index: number;
  role: Role;
  settings: TransportSettings;
  src: number;
  handle?: TunnelHandle;
  ready: boolean;
  icmpSeq: number;
  udpSeq: number;
  /** Highest UDP sequence echoed back, and a bit per the 32 before it (duplicate detection). */
  udpTop: number;
  udpSeen: number;
  setupTimer?: NodeJS.Timeout;
  udpTimer?: NodeJS.Timeout;
  icmpTimer?: NodeJS.Timeout;
  startedMs: number;
}

const job = workerData as ThreadJob;
const port = parentPort;
if (port === null) throw new Error('client-thread.ts runs as a worker thread');

const counters: Counters = emptyCounters();
const connectHist = new LatencyHistogram();
const setupHist = new LatencyHistogram();
const rttHist = new LatencyHistogram();
const udpRttHist = new LatencyHistogram();
const setupTimeline: number[] = [];
const dst = parseIpv4(job.echoTarget);
const packet = new Uint8Array(Math.max(ECHO_PACKET_SIZE, UDP_PACKET_SIZE));
let phase: 'ramp' | 'hold' | 'stop' = 'ramp';
let rampFirstStartMs = Infinity;
let rampLastReadyMs = 0;
let rampReady = 0;
let pending = 0;

function fail(message: string): void {
  const r = errorReason(message);
  counters.errors[r] = (counters.errors[r] ?? 0) + 1;
}

function sendIcmp(c: Client): void {
  if (c.handle === undefined) return;
  const len = writeEchoRequest(
    packet,
    c.src,
    dst,
    c.index & 0xffff,
    ++c.icmpSeq,
    performance.now() * 1000,
  );
  if (c.handle.send(packet.subarray(0, len))) counters.echoesSent++;
  else fail('send refused by the tunnel');
}

function sendUdp(c: Client): void {
  if (c.handle === undefined) return;
  const len = writeUdpProbe(packet, {
    src: c.src,
    dst,
    srcPort: UDP_SOURCE_PORT,
    dstPort: job.udpPort,
    tunnel: c.index,
    seq: ++c.udpSeq,
    sentUs: performance.now() * 1000,
  });
  if (c.handle.send(packet.subarray(0, len))) counters.udpSent++;
  else fail('send refused by the tunnel');
}

function stopTraffic(c: Client): void {
  clearInterval(c.setupTimer);
  clearInterval(c.udpTimer);
  clearInterval(c.icmpTimer);
  c.setupTimer = c.udpTimer = c.icmpTimer = undefined;
}

function startTraffic(c: Client): void {
  if (c.role !== 'traffic' || phase === 'stop') return;
  if (job.pps > 0) c.udpTimer = setInterval(() => sendUdp(c), 1000 / job.pps);
  if (job.icmpPps > 0) c.icmpTimer = setInterval(() => sendIcmp(c), 1000 / job.icmpPps);
}

function onUdp(c: Client, p: Uint8Array, now: number): void {
  const r = parseUdpProbe(p);
  if (r === undefined || r.tunnel !== c.index || r.src !== dst || r.srcPort !== job.udpPort) return;
  // A 32-sequence window, as in IPsec anti-replay: enough to tell a duplicate from reordering.
  if (r.seq > c.udpTop) {
    const shift = r.seq - c.udpTop;
    c.udpSeen = shift >= 32 ? 0 : (c.udpSeen << shift) | (1 << (shift - 1));
    c.udpTop = r.seq;
  } else if (
    r.seq === c.udpTop ||
    (c.udpTop - r.seq <= 32 && c.udpSeen & (1 << (c.udpTop - r.seq - 1)))
  ) {
    counters.udpDuplicates++;
    return;
  } else if (c.udpTop - r.seq <= 32) {
    c.udpSeen |= 1 << (c.udpTop - r.seq - 1);
  }
  counters.udpReceived++;
  if (phase === 'hold') udpRttHist.record(now * 1000 - r.sentUs);
}

function onPacket(c: Client, p: Uint8Array): void {
  const now = performance.now();
  if (p.length >= 20 && p[9] === 17) {
    onUdp(c, p, now);
    return;
  }
  const r = parseEchoReply(p);
  if (r === undefined || r.id !== (c.index & 0xffff) || r.src !== dst) return;
  counters.echoesReceived++;
  // RTT under load is the hold's figure; ramp replies mostly time the setup and the first-echo
  // retries, which the setup latency already reports.
  if (c.ready && phase === 'hold') rttHist.record(now * 1000 - r.sentUs);
  if (!c.ready) {
    c.ready = true;
    counters.ready++;
    const setupMs = now - c.startedMs;
    setupHist.record(setupMs * 1000);
    setupTimeline.push(Math.round(performance.timeOrigin + c.startedMs), Math.round(setupMs));
    if (phase === 'ramp') {
      rampReady++;
      rampLastReadyMs = Math.max(rampLastReadyMs, now);
    }
    stopTraffic(c);
    startTraffic(c);
  }
}

async function open(c: Client): Promise<void> {
  counters.attempted++;
  pending++;
  c.ready = false;
  c.icmpSeq = 0;
  c.udpSeq = 0;
  c.udpTop = 0;
  c.udpSeen = 0;
  c.startedMs = performance.now();
  if (phase === 'ramp') rampFirstStartMs = Math.min(rampFirstStartMs, c.startedMs);
  const abort = new AbortController();
  const setupTimer = setTimeout(() => abort.abort(), SETUP_TIMEOUT_MS);
  try {
    const transport = new MasqueTransport(c.settings);
    c.handle = await transport.connect(
      {
        addresses: () => undefined,
        routes: () => undefined,
        packet: (p) => onPacket(c, p),
        closed: (reason) => {
          if (c.handle === undefined) return;
          fail(`tunnel closed by the server side: ${reason.kind}: ${reason.message}`);
          counters.open--;
          c.handle = undefined;
          stopTraffic(c);
        },
      },
      abort.signal,
    );
    counters.opened++;
    counters.open++;
    connectHist.record((performance.now() - c.startedMs) * 1000);
    sendIcmp(c);
    c.setupTimer = setInterval(() => {
      if (performance.now() - c.startedMs > SETUP_TIMEOUT_MS) {
        fail('no echo reply within the setup timeout');
        clearInterval(c.setupTimer);
        c.setupTimer = undefined;
        return;
      }
      sendIcmp(c);
    }, FIRST_ECHO_RETRY_MS);
  } catch (err) {
    fail((err as Error).message);
  } finally {
    clearTimeout(setupTimer);
    pending--;
  }
}

async function close(c: Client): Promise<void> {
  stopTraffic(c);
  const h = c.handle;
  c.handle = undefined;
  if (h === undefined) return;
  counters.open--;
  counters.closedByClient++;
  await h.close();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until fewer than job.maxPending setups are in flight (the server sets the pace). */
async function slot(): Promise<void> {
  while (pending >= job.maxPending && phase !== 'stop') await sleep(5);
}

async function main(p: NonNullable<typeof port>): Promise<void> {
  const clients: Client[] = [];
  for (let i = 0; i < job.devices.length; i++) {
    const d = job.devices[i];
    const bundle = parseBundle(d.toml, `device ${job.firstIndex + i}`);
    const endpoints = await resolveEndpoints(bundle.endpoints);
    const index = job.firstIndex + i;
    clients.push({
      index,
      role: roleOf(job.scenario, index),
      settings: transportSettings(bundle, endpoints),
      src: parseIpv4(d.ipv4),
      ready: false,
      icmpSeq: 0,
      udpSeq: 0,
      udpTop: 0,
      udpSeen: 0,
      startedMs: 0,
    });
  }
  const progress = setInterval(() => post({ kind: 'progress', counters }), 1000);
  const holdStarted = new Promise<void>((ok) => {
    p.on('message', (m: ToThread) => {
      if (m.kind === 'hold') {
        phase = 'hold';
        ok();
      } else if (m.kind === 'stop') phase = 'stop';
    });
  });

  // Ramp: start setups at this thread's rate, on a schedule rather than after each other, so a
  // slow setup does not lower the offered rate, but never more than maxPending at once, so an
  // offered rate above what the server sustains slows the ramp instead of timing setups out.
  const interval = 1000 / job.rate;
  let due = performance.now();
  for (let i = 0; i < clients.length && phase !== 'stop'; i++) {
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    await slot();
    due = Math.max(due + interval, performance.now() - 1000);
    void open(clients[i]);
  }
  while (pending > 0) await sleep(20);
  // Give late first echoes their chance before declaring the ramp done.
  const rampEnd = performance.now() + 2000;
  while (performance.now() < rampEnd && clients.some((c) => c.handle !== undefined && !c.ready)) {
    await sleep(20);
  }
  post({ kind: 'ramped', counters });
  await holdStarted;

  const churning = clients.filter((c) => c.role === 'churn');
  if (churning.length > 0) {
    // Close one tunnel and open it again, at the setup rate, until told to stop.
    let next = 0;
    while (phase === 'hold') {
      const c = churning[next++ % churning.length];
      await close(c);
      await slot();
      counters.reopened++;
      void open(c);
      await sleep(interval);
    }
  } else {
    while (phase === 'hold') await sleep(50);
  }
  // Stop sending, let replies in flight arrive, then close everything.
  for (const c of clients) stopTraffic(c);
  while (pending > 0) await sleep(20);
  await sleep(1000);
  await Promise.all(clients.map((c) => close(c)));
  clearInterval(progress);
  post({
    kind: 'result',
    result: {
      ...counters,
      connect: connectHist.toWire(),
      setup: setupHist.toWire(),
      rtt: rttHist.toWire(),
      udpRtt: udpRttHist.toWire(),
      setupTimeline,
      rampFirstStartMs: performance.timeOrigin + rampFirstStartMs,
      rampLastReadyMs: performance.timeOrigin + rampLastReadyMs,
      rampReady,
    },
  });
}

function post(m: FromThread): void {
  port?.postMessage(m);
}

await main(port);
