// The real TunnelTransport: a QUIC connection from the native addon, HTTP/3 over it, and one
// CONNECT-IP tunnel on its first request stream. One connection per tunnel, so a reconnect starts
// from a fresh UDP socket and a fresh handshake.
import { performance } from 'node:perf_hooks';
import { parseFecConfig, type FecConfig } from '../dataplane/fec/config.js';
import type { FecOfferItem } from '../dataplane/fec/negotiation.js';
import { clientFecAgreement, clientFecOffer, FecSession } from '../dataplane/fec/session.js';
import { H3Connection, type H3Event } from '../dataplane/h3/connection.js';
import { datagramHeaderSize, writeDatagramHeader } from '../dataplane/h3/datagram.js';
import { H3Link } from '../dataplane/link/h3-link.js';
import { formatIp, type IpPrefix as WirePrefix } from '../dataplane/masque/address.js';
import { ClientSession } from '../dataplane/masque/client-session.js';
import type { HeaderList } from '../dataplane/masque/request.js';
import type { IpRange as WireRange } from '../dataplane/masque/route.js';
import { parseTemplate } from '../dataplane/masque/template.js';
import { Endpoint, type CloseInfo, type Connection } from '../dataplane/quic/endpoint.js';
import { uriTemplate } from './bundle.js';
import type { IpPrefix, IpRange } from './prefix.js';
import {
  classifyResponse,
  type FecPreference,
  type TransportSettings,
  type TunnelCloseReason,
  type FecStats,
  type TunnelEvents,
  type TunnelHandle,
  type TunnelStats,
  type TunnelTransport,
} from './transport.js';

const H3_NO_ERROR = 0x100;
const H3_REQUEST_CANCELLED = 0x10c;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** How often QUIC's loss counters are fed to the FEC controller. */
const FEC_OBSERVE_MS = 200;

/**
 * The engine configuration behind the bundle's [fec]: offer both schemes with `block_size` data
 * packets per block and up to `redundancy_percent` repair, adaptive (no repair until loss shows).
 */
export function fecConfigFrom(pref: FecPreference): FecConfig {
  const k = Math.min(Math.max(Math.round(pref.blockSize), 1), 200);
  const percent = Math.min(Math.max(pref.redundancyPercent, 1), 100);
  return parseFecConfig({
    enabled: pref.enabled,
    block_size: k,
    max_repair: Math.min(Math.max(1, Math.ceil((k * percent) / 100)), 256 - k),
    min_redundancy_percent: Math.min(10, percent),
    max_redundancy_percent: percent,
    flush_ms: pref.flushMs ?? 5,
    interleave: pref.interleave ?? 1,
  });
}

export interface MasqueTransportOptions {
  idleTimeoutMs?: number;
  keepAliveMs?: number;
}

function toPrefix(p: WirePrefix): IpPrefix {
  return { version: p.version, address: formatIp(p.address), length: p.prefixLength };
}

function toRange(r: WireRange): IpRange {
  return {
    version: r.version,
    start: formatIp(r.start),
    end: formatIp(r.end),
    protocol: r.ipProtocol,
  };
}

export class MasqueTransport implements TunnelTransport {
  constructor(
    private readonly settings: TransportSettings,
    private readonly options: MasqueTransportOptions = {},
  ) {}

  async connect(events: TunnelEvents, signal: AbortSignal): Promise<TunnelHandle> {
    const errors: string[] = [];
    for (const ep of this.settings.endpoints) {
      for (const address of ep.addresses) {
        if (signal.aborted) throw new Error('connect aborted');
        try {
          return await this.attempt(ep.host, address, ep.port, events, signal);
        } catch (err) {
          if ((err as Error).name === 'TunnelDeniedError') throw err;
          if ((err as Error).name === 'TunnelRefusedError') throw err;
          errors.push(`${address}:${ep.port}: ${(err as Error).message}`);
        }
      }
    }
    throw new Error(errors.join('; ') || 'no server address to try');
  }

  private attempt(
    host: string,
    address: string,
    port: number,
    events: TunnelEvents,
    signal: AbortSignal,
  ): Promise<TunnelHandle> {
    const s = this.settings;
    const template = parseTemplate(uriTemplate(s.serverName, port, s.templatePath));
    return new Promise<TunnelHandle>((resolve, reject) => {
      let settled = false;
      let tunnel: ActiveTunnel | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        void endpoint.close();
        reject(err);
      };
      const onAbort = () => fail(new Error('connect aborted'));
      // An exception out of the H3/CONNECT-IP layers (e.g. the transport refusing a stream on a
      // connection that is already closing) ends this tunnel, never the process that runs it.
      const guarded = (work: () => void): void => {
        try {
          work();
        } catch (err) {
          const e = err instanceof Error ? err : new Error(String(err));
          if (!settled) fail(e);
          else tunnel?.abort(e);
        }
      };
      signal.addEventListener('abort', onAbort);
      const timer = setTimeout(
        () => fail(new Error(`no tunnel within ${HANDSHAKE_TIMEOUT_MS / 1000} s (${host})`)),
        HANDSHAKE_TIMEOUT_MS,
      );

      const endpoint = new Endpoint(
        {
          role: 'client',
          host: address.includes(':') ? '::' : '0.0.0.0',
          port: 0,
          certPem: s.certPem,
          keyPem: s.keyPem,
          caPem: s.caPem,
          serverName: s.serverName,
          alpn: 'h3',
          idleTimeoutMs: this.options.idleTimeoutMs ?? 30_000,
          keepAliveMs: this.options.keepAliveMs ?? 10_000,
        },
        {
          onHandshake: (q) =>
            guarded(() => {
              tunnel = new ActiveTunnel(
                endpoint,
                q,
                events,
                template,
                s.addressRequest,
                s.mtu,
                fecConfigFrom(s.fec),
              );
              tunnel.onOpen = () => {
                if (settled) return;
                settled = true;
                clearTimeout(timer);
                signal.removeEventListener('abort', onAbort);
                resolve(tunnel as ActiveTunnel);
              };
              tunnel.onFailed = (err) => fail(err);
              tunnel.begin();
            }),
          onStreamData: (_q, id, data, fin) =>
            guarded(() => tunnel?.link.streamData(id, data, fin)),
          onStreamReset: (_q, id, code) => guarded(() => tunnel?.link.streamReset(id, code)),
          onStopSending: (_q, id, code) => guarded(() => tunnel?.link.stopSending(id, code)),
          onDatagrams: (_q, buf, lengths, count) =>
            guarded(() => tunnel?.onDatagrams(buf, lengths, count)),
          onClose: (_q, info) => {
            if (tunnel !== undefined) tunnel.transportClosed(info);
            fail(new Error(describeClose(info)));
          },
        },
      );
      endpoint.connect(address, port);
    });
  }
}

function describeClose(info: CloseInfo): string {
  const code = `0x${info.code.toString(16)}`;
  if (info.why === 'idle') return 'connection timed out (server unreachable or not answering)';
  if (
    info.why === 'handshake' ||
    (info.kind === 'transport' && info.code >= 0x100 && info.code < 0x200)
  ) {
    return `TLS handshake failed (${code}${info.reason ? `: ${info.reason}` : ''})`;
  }
  return `connection closed by ${info.local ? 'us' : 'the server'} (${info.kind} ${code}${info.reason ? `: ${info.reason}` : ''})`;
}

/** One live tunnel: the session, its connection, and the packet path. */
class ActiveTunnel implements TunnelHandle {
  readonly h3 = new H3Connection({ role: 'client' });
  readonly link: H3Link;
  private session: ClientSession | undefined;
  private streamId = -1;
  private qsid = new Uint8Array(8);
  private readonly scratch = new Uint8Array(65536 + 16);
  private bytesSent = 0;
  private bytesReceived = 0;
  private sending = false;
  private closedNotified = false;
  private closing = false;
  private timer: NodeJS.Timeout | undefined;
  private fecOffer: FecOfferItem[] | undefined;
  private fec: FecSession | undefined;
  private fecTimer: NodeJS.Timeout | undefined;
  private fecTimerAt = Infinity;
  private fecObserver: NodeJS.Timeout | undefined;
  onOpen: () => void = () => undefined;
  onFailed: (err: Error) => void = () => undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly quic: Connection,
    private readonly events: TunnelEvents,
    private readonly template: ReturnType<typeof parseTemplate>,
    private readonly addressRequest: boolean,
    private readonly mtu: number,
    private readonly fecConfig: FecConfig,
  ) {
    this.link = new H3Link(quic, this.h3);
    this.link.onEvent = (e) => this.onH3Event(e);
  }

  begin(): void {
    this.link.pump();
    this.maybeRequest();
  }

  /** The request waits for the server's SETTINGS (PROTOCOL.md §10.1 item 3). */
  private maybeRequest(): void {
    if (this.session !== undefined || !this.h3.canConnect()) return;
    const h3 = this.h3;
    const session = new ClientSession({
      template: this.template,
      streamId: 0,
      mtu: this.mtu,
      addressRequest: this.addressRequest ? 'after-grace' : 'never',
      output: {
        sendHeaders: (h: HeaderList) => {
          this.streamId = h3.request(h);
          this.qsid = new Uint8Array(datagramHeaderSize(this.streamId));
          writeDatagramHeader(this.qsid, 0, this.streamId);
          this.link.pump();
        },
        sendData: (bytes, fin) => {
          if (bytes.length > 0) h3.sendData(this.streamId, bytes);
          if (fin) h3.endStream(this.streamId);
          this.link.pump();
        },
        resetStream: (code) => {
          h3.resetStream(this.streamId, code);
          this.link.pump();
        },
        sendDatagram: (payload, offset, length) => this.sendDatagram(payload, offset, length),
        deliverPacket: (packet, offset, length) => {
          // ICMP errors the session makes about our own outgoing packets are not traffic received.
          if (!this.sending) this.bytesReceived += length;
          this.events.packet(packet.subarray(offset, offset + length));
        },
      },
      events: {
        onOpen: () => {
          this.startFec();
          this.armTimer();
          this.onOpen();
        },
        onLocalAddresses: (set) => this.events.addresses(set.map(toPrefix)),
        onPeerRoutes: (set) => this.events.routes(set.map(toRange)),
        onClosed: (c) => {
          if (c.how === 'rejected' && typeof c.code === 'number' && c.code >= 300) {
            this.onFailed(classifyResponse(c.code, c.reason, c.retryAfterSeconds));
            void this.close();
            return;
          }
          this.notifyClosed({ kind: 'lost', message: `tunnel ended: ${c.reason}` });
        },
      },
    });
    this.session = session;
    const offer = clientFecOffer(this.fecConfig, session);
    this.fecOffer = offer?.offer;
    session.start(offer === undefined ? [] : [offer.field]);
  }

  /** After the 2xx: run FEC if the proxy answered our offer, else leave context 0 alone. */
  private startFec(): void {
    const s = this.session;
    if (s === undefined || this.fecOffer === undefined) return;
    let agreement;
    try {
      agreement = clientFecAgreement(s.responseHeaders ?? [], this.fecOffer);
    } catch {
      // An answer we did not offer: the proxy and we disagree, so neither side may use FEC
      // safely; carry on without it (the proxy's FEC datagrams land on an unknown context).
      agreement = undefined;
    }
    if (agreement === undefined) return;
    this.fec = new FecSession({
      port: s,
      agreement,
      config: this.fecConfig,
      maxPacketSize: this.mtu,
      quicBaseline: this.quic.stats(),
      now: () => performance.now(),
    });
    this.fec.attach();
    this.fecObserver = setInterval(() => {
      if (!this.quic.closed) this.fec?.observe(this.quic.stats());
    }, FEC_OBSERVE_MS);
    this.fecObserver.unref();
  }

  private armFecTimer(): void {
    const due = this.fec?.nextDeadline();
    if (due === undefined || due >= this.fecTimerAt) return;
    if (this.fecTimer !== undefined) clearTimeout(this.fecTimer);
    this.fecTimerAt = due;
    this.fecTimer = setTimeout(
      () => {
        this.fecTimer = undefined;
        this.fecTimerAt = Infinity;
        if (this.quic.closed) return;
        this.fec?.onTimer(performance.now());
        this.armFecTimer();
      },
      Math.max(0, Math.ceil(due - performance.now())),
    );
    this.fecTimer.unref();
  }

  private stopFec(): void {
    if (this.fecTimer !== undefined) clearTimeout(this.fecTimer);
    if (this.fecObserver !== undefined) clearInterval(this.fecObserver);
    this.fecTimer = undefined;
    this.fecObserver = undefined;
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const due = this.session?.nextTimeout();
    if (due === undefined) return;
    this.timer = setTimeout(
      () => {
        this.session?.onTimeout(Date.now());
        this.armTimer();
      },
      Math.max(0, due - Date.now()),
    );
    this.timer.unref();
  }

  private onH3Event(e: H3Event): void {
    const s = this.session;
    switch (e.kind) {
      case 'settings':
        this.maybeRequest();
        return;
      case 'response':
        if (e.streamId === this.streamId) s?.onResponseHeaders(e.headers, Date.now());
        return;
      case 'data':
        if (e.streamId === this.streamId) s?.onData(e.data);
        return;
      case 'end':
        if (e.streamId === this.streamId) s?.onFin();
        return;
      case 'reset':
      case 'stopSending':
      case 'aborted':
        if (e.streamId === this.streamId) s?.onReset(e.code);
        return;
      case 'goaway':
        // The server is going away: leave now and reconnect (§10.1 item 20).
        this.notifyClosed({ kind: 'goaway', message: 'server sent GOAWAY' });
        void this.close();
        return;
      case 'closed':
        s?.onReset(e.code);
        return;
      default:
        return;
    }
  }

  onDatagrams(buf: Uint8Array, lengths: Uint32Array, count: number): void {
    const s = this.session;
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const len = lengths[i];
      const payload = buf.subarray(offset, offset + len);
      offset += len;
      const target = this.h3.receiveDatagram(payload);
      if (target === null || target.streamId !== this.streamId || s === undefined) continue;
      s.receiveDatagram(payload, target.offset, len - target.offset);
    }
    this.link.pump();
    if (this.fec !== undefined) this.armFecTimer();
  }

  private sendDatagram(payload: Uint8Array, offset: number, length: number): void {
    if (this.quic.closed || !this.h3.canSendDatagrams()) return;
    const h = this.qsid.length;
    this.scratch.set(this.qsid, 0);
    this.scratch.set(payload.subarray(offset, offset + length), h);
    this.quic.sendDatagram(this.scratch.subarray(0, h + length));
  }

  transportClosed(info: CloseInfo): void {
    this.link.transportClosed(info.code, info.reason);
    const goaway = !info.local && info.kind === 'application' && info.code === H3_NO_ERROR;
    this.notifyClosed(
      goaway
        ? { kind: 'goaway', message: 'server closed the connection' }
        : { kind: 'lost', message: describeClose(info) },
    );
  }

  private notifyClosed(reason: TunnelCloseReason): void {
    if (this.closedNotified || this.closing) return;
    this.closedNotified = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopFec();
    this.events.closed(reason);
  }

  send(packet: Uint8Array): boolean {
    const s = this.session;
    if (s === undefined || this.quic.closed) return false;
    this.sending = true;
    const sent = s.sendPacket(packet, 0, packet.length) === 0;
    this.sending = false;
    // IP bytes, as the server counts them: no context ID, no FEC overhead.
    if (sent) this.bytesSent += packet.length;
    if (this.fec !== undefined) this.armFecTimer();
    return sent;
  }

  stats(): TunnelStats {
    const q = this.quic.stats();
    const st = this.session?.stats;
    return {
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      packetsSent: st?.packetsToPeer ?? 0,
      packetsReceived: st?.packetsFromPeer ?? 0,
      rttMs: q.srttUs > 0 ? q.srttUs / 1000 : undefined,
      lossRatio: q.datagramsSent > 0 ? q.datagramsLost / q.datagramsSent : 0,
      fec: this.fecStats(),
    };
  }

  private fecStats(): FecStats | undefined {
    const f = this.fec;
    if (f === undefined) return undefined;
    const m = f.metrics;
    return {
      scheme: f.scheme,
      repairSent: m.repairPacketsSent,
      repairReceived: m.repairPacketsReceived,
      recovered: m.packetsRecovered,
      unrecoverable: m.unrecoverableBlocks,
      protected: m.packetsProtected,
      overheadBytes: m.overheadBytes,
      ratio: m.currentRatio,
    };
  }

  /** A local failure after the tunnel opened: report it as lost and tear the connection down. */
  abort(err: Error): void {
    this.notifyClosed({ kind: 'lost', message: `tunnel failed: ${err.message}` });
    void this.close();
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    this.stopFec();
    if (this.session !== undefined && this.session.state === 'open') {
      this.session.abort(H3_REQUEST_CANCELLED, 'client closing');
    }
    if (!this.quic.closed) this.quic.close(H3_NO_ERROR, 'client closing');
    await this.endpoint.close();
  }
}
