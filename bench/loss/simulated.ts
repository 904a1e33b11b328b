// The simulated link: a constant-rate flow goes from a client CONNECT-IP tunnel to a proxy tunnel
// (the real dataplane/masque sessions with the real FecSession attached, negotiated through the
// real request/response fields) over a one-way link whose loss and delay the impairment proxy's
// own model (bench/impair/model.ts) decides for each datagram. Time is simulated, so runs are
// exact and repeatable for a seed and take well under a second each; QUIC itself is not in the
// loop (its loss counters are stood in for by the link's, fed to the adaptive controller every
// 200 ms as the shard and client do).
//
// For each run: delivered loss, goodput, added latency (delivery time minus the link's own delay:
// the wait for repair) p50/p99, and overhead (FEC bytes over data bytes).
import { parseFecConfig, type FecConfig } from '../../dataplane/fec/config.js';
import {
  clientFecAgreement,
  clientFecOffer,
  FecSession,
  proxyFecChoice,
} from '../../dataplane/fec/session.js';
import { parsePrefix, type IpPrefix } from '../../dataplane/masque/address.js';
import { ClientSession } from '../../dataplane/masque/client-session.js';
import type { HeaderList } from '../../dataplane/masque/request.js';
import { fullRange } from '../../dataplane/masque/route.js';
import { ServerSession } from '../../dataplane/masque/server-session.js';
import { parseTemplate } from '../../dataplane/masque/template.js';
import { ImpairmentModel, LOST } from '../impair/model.js';
import type { FecMode, LossProfile } from './profiles.js';

export interface SimulatedOptions {
  /** Packets per second of the flow. */
  rate: number;
  /** IP packet size in bytes. */
  size: number;
  /** Simulated seconds per run. */
  seconds: number;
  delayMs: number;
  /** Data packets per block and the most repair, in % of the block, the client allows. */
  blockSize: number;
  redundancyPercent: number;
  /** Fixed redundancy instead of following the observed loss. */
  fixed: boolean;
  flushMs: number;
  /** Blocks filled in turn by the sender (1 = no interleaving). */
  interleave: number;
  seed: number;
}

export interface LossResult {
  profile: string;
  fec: FecMode;
  sent: number;
  delivered: number;
  deliveredLossPercent: number;
  linkLossPercent: number;
  goodputMbps: number;
  addedLatencyP50Ms: number;
  addedLatencyP99Ms: number;
  overheadPercent: number;
  recovered: number;
}

function fecConfig(mode: FecMode, o: SimulatedOptions): FecConfig {
  const k = o.blockSize;
  return parseFecConfig({
    enabled: mode !== 'off',
    schemes: mode === 'xor' ? ['xor'] : ['rs'],
    block_size: k,
    max_repair: Math.max(1, Math.ceil((k * o.redundancyPercent) / 100)),
    max_redundancy_percent: o.redundancyPercent,
    min_redundancy_percent: Math.min(10, o.redundancyPercent),
    adaptive: !o.fixed,
    flush_ms: o.flushMs,
    interleave: o.interleave,
  });
}

/** A binary min-heap of datagrams in flight, by arrival time then send order. */
class Arrivals {
  private readonly at: number[] = [];
  private readonly seq: number[] = [];
  private readonly data: Uint8Array[] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  peekAt(): number {
    return this.n === 0 ? Infinity : this.at[0];
  }

  push(at: number, seq: number, data: Uint8Array): void {
    let i = this.n++;
    this.at[i] = at;
    this.seq[i] = seq;
    this.data[i] = data;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  pop(): Uint8Array {
    const top = this.data[0];
    this.n--;
    if (this.n > 0) {
      this.swap(0, this.n);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.n && this.less(l, m)) m = l;
        if (r < this.n && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    this.data.length = this.n;
    this.at.length = this.n;
    this.seq.length = this.n;
    return top;
  }

  private less(a: number, b: number): boolean {
    return this.at[a] < this.at[b] || (this.at[a] === this.at[b] && this.seq[a] < this.seq[b]);
  }

  private swap(a: number, b: number): void {
    [this.at[a], this.at[b]] = [this.at[b], this.at[a]];
    [this.seq[a], this.seq[b]] = [this.seq[b], this.seq[a]];
    [this.data[a], this.data[b]] = [this.data[b], this.data[a]];
  }
}

function ipv4(size: number): Uint8Array {
  const p = new Uint8Array(size);
  p[0] = 0x45;
  p[2] = size >> 8;
  p[3] = size & 0xff;
  p[8] = 64;
  p[9] = 17;
  p.set([10, 1, 1, 2], 12);
  p.set([192, 0, 2, 1], 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (p[i] << 8) | p[i + 1];
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  const c = ~sum & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  return p;
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** One run: a flow of `rate` packets/s for `seconds` over the profile's link. */
export async function runLoss(
  profile: LossProfile,
  mode: FecMode,
  o: SimulatedOptions,
): Promise<LossResult> {
  const clock = { now: 0 };
  const now = (): number => clock.now;
  const link = new ImpairmentModel({ ...profile.link, delayMs: o.delayMs }, o.seed);
  const arrivals = new Arrivals();
  const total = Math.round(o.rate * o.seconds);
  const sentAt = new Float64Array(total);
  const seen = new Uint8Array(total);
  const latency: number[] = [];
  let wireBytes = 0;
  let datagrams = 0;
  let requestHeaders: HeaderList = [];
  let responseHeaders: HeaderList = [];
  let answer: HeaderList = [];
  const peer: { client?: ClientSession } = {};
  const noop = (): void => {};
  const server = new ServerSession({
    output: {
      sendHeaders: (h) => (responseHeaders = h),
      sendData: (b) => peer.client?.onData(b),
      resetStream: noop,
      // The reverse direction carries no flow here; its repair would only be FEC on nothing.
      sendDatagram: noop,
      deliverPacket: (b, off) => {
        const seq = new DataView(b.buffer, b.byteOffset + off + 20, 4).getUint32(0);
        if (seq >= total || seen[seq] !== 0) return;
        seen[seq] = 1;
        latency.push(clock.now - sentAt[seq] - o.delayMs);
      },
    },
    request: { extendedConnectEnabled: true, templates: [parseTemplate('/vpn')] },
    authorize: () =>
      Promise.resolve({
        ok: true as const,
        addresses: [parsePrefix('10.1.1.2/32') as IpPrefix],
        routes: [fullRange(4)],
        responseHeaders: answer,
      }),
  });
  const client = new ClientSession({
    template: parseTemplate('https://bench.example/vpn'),
    mtu: Math.max(1280, o.size),
    output: {
      sendHeaders: (h) => (requestHeaders = h),
      sendData: noop,
      resetStream: noop,
      sendDatagram: (b, off, len) => {
        wireBytes += len;
        const leave = link.admit(len, clock.now);
        if (leave !== LOST) arrivals.push(leave, datagrams, b.slice(off, off + len));
        datagrams++;
      },
      deliverPacket: noop,
    },
  });
  peer.client = client;

  const cfg = fecConfig(mode, o);
  // The proxy as the data plane runs it by default: it accepts what the client offers.
  const serverCfg = parseFecConfig({ enabled: true });
  const offer = clientFecOffer(cfg, client);
  client.start(offer === undefined ? [] : [offer.field]);
  const choice = proxyFecChoice(requestHeaders, serverCfg, { maxK: 255, maxM: 255 });
  answer = choice === undefined ? [] : [choice.field];
  await server.onRequestHeaders(requestHeaders);
  client.onResponseHeaders(responseHeaders, 0);
  let cf: FecSession | undefined;
  let sf: FecSession | undefined;
  const agreement = offer && clientFecAgreement(responseHeaders, offer.offer);
  if (agreement !== undefined && choice !== undefined) {
    const mtu = Math.max(1280, o.size);
    cf = new FecSession({ port: client, agreement, config: cfg, maxPacketSize: mtu, now });
    sf = new FecSession({
      port: server,
      agreement: choice.agreement,
      config: serverCfg,
      maxPacketSize: mtu,
      now,
    });
    sf.attach();
    cf.attach();
  }

  const pkt = ipv4(o.size);
  const view = new DataView(pkt.buffer);
  const interval = 1000 / o.rate;
  let next = 0;
  let nextObserve = 200;
  const endAt = o.seconds * 1000;
  for (;;) {
    const send = next < total ? next * interval : Infinity;
    const arrive = arrivals.peekAt();
    const ct = cf?.nextDeadline() ?? Infinity;
    const st = sf?.nextDeadline() ?? Infinity;
    const obs = cf !== undefined && nextObserve <= endAt ? nextObserve : Infinity;
    const t = Math.min(send, arrive, ct, st, obs);
    if (t === Infinity) break;
    clock.now = t;
    if (arrive === t) {
      const d = arrivals.pop();
      server.receiveDatagram(d, 0, d.length);
    } else if (ct === t) {
      cf?.onTimer(t);
    } else if (st === t) {
      sf?.onTimer(t);
    } else if (obs === t) {
      nextObserve += 200;
      // What QUIC would report: datagrams sent and declared lost on this path.
      cf?.observe({ datagramsSent: link.stats.packets, datagramsLost: link.stats.lost });
    } else {
      view.setUint32(20, next);
      pkt[8] = 64;
      sentAt[next] = t;
      client.sendPacket(pkt, 0, pkt.length);
      next++;
    }
  }
  const delivered = latency.length;
  const lat = Float64Array.from(latency).sort();
  const dataBytes = total * (o.size + 1);
  return {
    profile: profile.name,
    fec: mode,
    sent: total,
    delivered,
    deliveredLossPercent: (100 * (total - delivered)) / total,
    linkLossPercent: (100 * link.stats.lost) / Math.max(1, link.stats.packets),
    goodputMbps: (delivered * o.size * 8) / (o.seconds * 1e6),
    addedLatencyP50Ms: percentile(lat, 0.5),
    addedLatencyP99Ms: percentile(lat, 0.99),
    overheadPercent: (100 * (wireBytes - dataBytes)) / dataBytes,
    recovered: sf?.metrics.packetsRecovered ?? 0,
  };
}
