// One worker thread of the load generator: its share of simulated clients, each a real
// MasqueTransport tunnel (QUIC + mTLS + HTTP/3 + CONNECT-IP) with no TUN. A client is ready when
// the first echo to the server's tunnel address comes back; from then on it pings at --pps.
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { parseBundle, resolveEndpoints } from '../../client/bundle.js';
import { MasqueTransport } from '../../client/masque-transport.js';
import type { TransportSettings, TunnelHandle } from '../../client/transport.js';
import { LatencyHistogram } from './histogram.js';
import { ECHO_PACKET_SIZE, parseEchoReply, parseIpv4, writeEchoRequest } from './icmp.js';
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

interface Client {
  index: number;
  settings: TransportSettings;
  src: number;
  handle?: TunnelHandle;
  abort?: AbortController;
  ready: boolean;
  seq: number;
  timer?: NodeJS.Timeout;
  startedMs: number;
}

const job = workerData as ThreadJob;
const port = parentPort;
if (port === null) throw new Error('client-thread.ts runs as a worker thread');

const counters: Counters = emptyCounters();
const connectHist = new LatencyHistogram();
const setupHist = new LatencyHistogram();
const rttHist = new LatencyHistogram();
const dst = parseIpv4(job.echoTarget);
const packet = new Uint8Array(ECHO_PACKET_SIZE);
let phase: 'ramp' | 'hold' | 'stop' = 'ramp';
let rampFirstStartMs = Infinity;
let rampLastReadyMs = 0;
let rampReady = 0;
let pending = 0;

function fail(message: string): void {
  const r = errorReason(message);
  counters.errors[r] = (counters.errors[r] ?? 0) + 1;
}

function sendEcho(c: Client): void {
  if (c.handle === undefined) return;
  const len = writeEchoRequest(
    packet,
    c.src,
    dst,
    c.index & 0xffff,
    ++c.seq,
    performance.now() * 1000,
  );
  if (c.handle.send(packet.subarray(0, len))) counters.echoesSent++;
  else fail('send refused by the tunnel');
}

function onPacket(c: Client, p: Uint8Array): void {
  const r = parseEchoReply(p);
  if (r === undefined || r.id !== (c.index & 0xffff) || r.src !== dst) return;
  const now = performance.now();
  counters.echoesReceived++;
  // RTT under load is the hold's figure; ramp replies mostly time the setup and the first-echo
  // retries, which the setup latency already reports.
  if (c.ready && phase === 'hold') rttHist.record(now * 1000 - r.sentUs);
  if (!c.ready) {
    c.ready = true;
    counters.ready++;
    setupHist.record((now - c.startedMs) * 1000);
    if (phase === 'ramp') {
      rampReady++;
      rampLastReadyMs = Math.max(rampLastReadyMs, now);
    }
    clearInterval(c.timer);
    c.timer = undefined;
    if (job.pps > 0 && phase !== 'stop') {
      c.timer = setInterval(() => sendEcho(c), 1000 / job.pps);
    }
  }
}

async function open(c: Client): Promise<void> {
  counters.attempted++;
  pending++;
  c.ready = false;
  c.seq = 0;
  c.startedMs = performance.now();
  if (phase === 'ramp') rampFirstStartMs = Math.min(rampFirstStartMs, c.startedMs);
  const abort = new AbortController();
  c.abort = abort;
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
          clearInterval(c.timer);
        },
      },
      abort.signal,
    );
    counters.opened++;
    counters.open++;
    connectHist.record((performance.now() - c.startedMs) * 1000);
    sendEcho(c);
    c.timer = setInterval(() => {
      if (performance.now() - c.startedMs > SETUP_TIMEOUT_MS) {
        fail('no echo reply within the setup timeout');
        clearInterval(c.timer);
        c.timer = undefined;
        return;
      }
      sendEcho(c);
    }, FIRST_ECHO_RETRY_MS);
  } catch (err) {
    fail((err as Error).message);
  } finally {
    clearTimeout(setupTimer);
    pending--;
  }
}

async function close(c: Client): Promise<void> {
  clearInterval(c.timer);
  c.timer = undefined;
  const h = c.handle;
  c.handle = undefined;
  if (h === undefined) return;
  counters.open--;
  counters.closedByClient++;
  await h.close();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(p: NonNullable<typeof port>): Promise<void> {
  const clients: Client[] = [];
  for (let i = 0; i < job.devices.length; i++) {
    const d = job.devices[i];
    const bundle = parseBundle(d.toml, `device ${job.firstIndex + i}`);
    const endpoints = await resolveEndpoints(bundle.endpoints);
    clients.push({
      index: job.firstIndex + i,
      settings: {
        endpoints,
        serverName: bundle.serverName,
        templatePath: bundle.templatePath,
        caPem: bundle.caPem,
        certPem: bundle.certPem,
        keyPem: bundle.keyPem,
        addressRequest: true,
        fec: bundle.fec,
        mtu: bundle.mtu,
      },
      src: parseIpv4(d.ipv4),
      ready: false,
      seq: 0,
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
  // slow setup does not lower the offered rate.
  const interval = 1000 / job.rate;
  const t0 = performance.now();
  for (let i = 0; i < clients.length; i++) {
    const due = t0 + i * interval;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    if (phase === 'stop') break;
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

  if (job.churn) {
    // Close one tunnel and open it again, at the setup rate, until told to stop.
    let next = 0;
    while (phase === 'hold') {
      const c = clients[next++ % clients.length];
      await close(c);
      void open(c);
      await sleep(interval);
    }
  } else {
    while (phase === 'hold') await sleep(50);
  }
  // Stop sending, let replies in flight arrive, then close everything.
  for (const c of clients) {
    clearInterval(c.timer);
    c.timer = undefined;
  }
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
