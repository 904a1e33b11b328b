// One shard worker: a QUIC endpoint on the shared UDP port, HTTP/3 on each of its connections,
// CONNECT-IP tunnels on their request streams, and the packet path between those tunnels and the
// TUN rings. Everything about a connection happens on this thread; the supervisor only answers
// authorisation requests and relays control-plane events.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import { FecSession, proxyFecChoice } from '../fec/session.js';
import type { FecConfig } from '../fec/config.js';
import type { FecAgreement } from '../fec/negotiation.js';
import { H3Connection, type H3Event } from '../h3/connection.js';
import { datagramHeaderSize, writeDatagramHeader } from '../h3/datagram.js';
import { H3Link } from '../link/h3-link.js';
import { parsePrefix, type IpPrefix } from '../masque/address.js';
import type { HeaderList } from '../masque/request.js';
import { rangeFromPrefix, type IpRange } from '../masque/route.js';
import { ServerSession, type Authorization } from '../masque/server-session.js';
import { parseTemplate } from '../masque/template.js';
import { Endpoint, type CloseInfo, type Connection } from '../quic/endpoint.js';
import { RouteTable } from '../ring/route-table.js';
import { RingGroupConsumer } from '../ring/group.js';
import { RingProducer } from '../ring/spsc.js';
import { compilePolicy, type PacketPolicy, type PolicyRuleInput } from './policy.js';
import { bump, emptyReport, type ShardReport } from './report.js';
import type { AuthorizeReply, FromShard, ShardInit, ToShard } from './shard-protocol.js';
import { PacketSwitch, SwitchPath } from './switch.js';

/** retry-after sent with a 503 while the control plane cannot be reached. */
const CONTROL_RETRY_HINT_SECONDS = 5;
/** H3_REQUEST_CANCELLED: the tunnel is closed on the operator's behalf (kick, revocation). */
const H3_REQUEST_CANCELLED = 0x10c;
/** H3_NO_ERROR for connection closes we initiate. */
const H3_NO_ERROR = 0x100;

interface Conn {
  quic: Connection;
  h3: H3Connection;
  link: H3Link;
  remote: string;
  tunnels: Map<number, Tunnel>;
  /** One FEC timer per connection, for all its tunnels' flush and hold deadlines. */
  fecTimer: NodeJS.Timeout | undefined;
  fecTimerAt: number;
  /** datagramsDroppedExpired already reported (the QUIC figure is cumulative). */
  expiredReported: number;
}

/** How often QUIC's loss counters are fed to the FEC controllers. */
const FEC_OBSERVE_MS = 200;
/** Packets taken from each inbound ring per round before QUIC I/O gets a turn. */
const INBOUND_BATCH = 64;

interface Tunnel {
  conn: Conn;
  streamId: number;
  session: ServerSession;
  /** Quarter-stream-ID prefix of every datagram of this tunnel. */
  qsid: Uint8Array;
  /** Index into `slots`, carried by the route table so the TUN reader can tag packets. */
  slot: number;
  sessionId: string;
  client: string;
  deviceId: number;
  certSerial: string;
  addresses: string[];
  startedAt: number;
  bytesIn: number;
  bytesOut: number;
  log: Logger;
  /** The client's access policy; replaced live when the control plane changes it. */
  policy: PacketPolicy;
  /** What we answered to the client's FEC offer (undefined: no FEC on this tunnel). */
  fecAgreement: FecAgreement | undefined;
  fecAnswer: HeaderList;
  fec: FecSession | undefined;
}

/** Until authorisation compiles the real policy, nothing passes. */
const DENY_ALL: PacketPolicy = () => false;

class Shard {
  private readonly init: ShardInit;
  private readonly log: Logger;
  private readonly endpoint: Endpoint;
  private readonly inbound: RingGroupConsumer;
  private readonly toTun: RingProducer;
  private readonly switch: PacketSwitch;
  private readonly hairpinOut: (RingProducer | undefined)[];
  private lastSwitch = { local: 0, shard: 0, hairpinDrops: 0 };
  private readonly routes: RouteTable;
  private readonly conns = new Set<Conn>();
  /** Open tunnels by slot; the TUN reader tags each packet with its tunnel's slot. */
  private readonly slots: (Tunnel | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private readonly bySessionId = new Map<string, Tunnel>();
  private readonly pendingAuth = new Map<number, (reply: AuthorizeReply) => void>();
  private nextAuthId = 1;
  private report: ShardReport;
  private readonly scratch = new Uint8Array(65536 + 16);
  private draining = false;
  private stopped = false;
  private lastCounters: Record<string, number> = {};
  private ringDropsSeen = 0;
  private templates;

  constructor(init: ShardInit) {
    this.init = init;
    this.log = pino(
      { level: init.logLevel, base: { shard: init.shard } },
      pino.destination({ dest: 2, sync: true }),
    );
    this.report = emptyReport(init.shard);
    this.inbound = new RingGroupConsumer(init.inbound, init.inboundBell);
    this.toTun = new RingProducer(init.toWriter);
    this.routes = new RouteTable(init.routes);
    this.hairpinOut = init.hairpinOut.map((h) =>
      h === undefined ? undefined : new RingProducer(h),
    );
    this.switch = new PacketSwitch({
      shard: init.shard,
      routes: this.routes,
      toTun: this.toTun,
      toShards: this.hairpinOut,
      local: (slot, packet, offset, length) => this.toClient(slot, packet, offset, length),
    });
    this.templates = init.paths.map((p) => parseTemplate(p));
    this.endpoint = new Endpoint(
      {
        role: 'server',
        host: init.host,
        port: init.port,
        certPem: init.certPem,
        keyPem: init.keyPem,
        caPem: init.caPem,
        alpn: 'h3',
        idleTimeoutMs: init.idleTimeoutMs,
        keepAliveMs: init.keepAliveMs,
        cc: init.cc,
        reusePort: true,
        shardId: init.shard,
        shardCount: init.shards,
      },
      {
        onConnection: (q) => this.onConnection(q),
        onStreamData: (q, id, data, fin) => (q.userData as Conn).link.streamData(id, data, fin),
        onStreamReset: (q, id, code) => (q.userData as Conn).link.streamReset(id, code),
        onStopSending: (q, id, code) => (q.userData as Conn).link.stopSending(id, code),
        onDatagrams: (q, buf, lengths, count) =>
          this.onDatagrams(q.userData as Conn, buf, lengths, count),
        onClose: (q, info) => this.onConnectionClosed(q, info),
      },
    );
  }

  start(): void {
    void this.pumpInbound();
    setInterval(() => this.sendReport(), this.init.reportIntervalMs).unref();
    setInterval(() => this.observeFec(), FEC_OBSERVE_MS).unref();
    this.post({ type: 'ready', shard: this.init.shard });
    this.log.debug({ port: this.init.port }, 'shard listening');
  }

  private post(msg: FromShard): void {
    parentPort?.postMessage(msg);
  }

  // ---- connections ------------------------------------------------------------------------

  private onConnection(quic: Connection): void {
    const h3 = new H3Connection({ role: 'server' });
    const conn: Conn = {
      quic,
      h3,
      link: new H3Link(quic, h3),
      remote: `${quic.remoteAddress}:${quic.remotePort}`,
      tunnels: new Map(),
      fecTimer: undefined,
      fecTimerAt: Infinity,
      expiredReported: 0,
    };
    quic.userData = conn;
    conn.link.onEvent = (e) => this.onH3Event(conn, e);
    this.conns.add(conn);
    this.report.quicConnections = this.conns.size;
    if (this.draining) h3.goaway();
    conn.link.pump();
    this.log.debug({ remote: conn.remote }, 'QUIC connection accepted');
  }

  private onConnectionClosed(quic: Connection, info: CloseInfo): void {
    const conn = quic.userData as Conn | undefined;
    if (conn === undefined) {
      // Never reached HANDSHAKE_DONE: a failed handshake, counted by reason in the endpoint.
      return;
    }
    conn.link.transportClosed(info.code, info.reason);
    for (const t of conn.tunnels.values()) this.endTunnel(t, `connection closed (${info.why})`);
    conn.tunnels.clear();
    if (conn.fecTimer !== undefined) clearTimeout(conn.fecTimer);
    this.conns.delete(conn);
    this.report.quicConnections = this.conns.size;
  }

  private onH3Event(conn: Conn, e: H3Event): void {
    switch (e.kind) {
      case 'request':
        this.onRequest(conn, e.streamId, e.headers);
        return;
      case 'data':
        conn.tunnels.get(e.streamId)?.session.onData(e.data);
        return;
      case 'end':
        conn.tunnels.get(e.streamId)?.session.onFin();
        return;
      case 'reset':
      case 'stopSending':
      case 'aborted':
        conn.tunnels.get(e.streamId)?.session.onReset(e.code);
        return;
      case 'closed':
        for (const t of conn.tunnels.values()) t.session.onReset(e.code);
        return;
      default:
        return;
    }
  }

  private onRequest(conn: Conn, streamId: number, headers: HeaderList): void {
    const qsid = new Uint8Array(datagramHeaderSize(streamId));
    writeDatagramHeader(qsid, 0, streamId);
    const tunnel: Tunnel = {
      conn,
      streamId,
      qsid,
      slot: -1,
      sessionId: '',
      client: '',
      deviceId: 0,
      certSerial: '',
      addresses: [],
      startedAt: Date.now(),
      bytesIn: 0,
      bytesOut: 0,
      log: this.log.child({ remote: conn.remote, stream: streamId }),
      policy: DENY_ALL,
      fecAgreement: undefined,
      fecAnswer: [],
      fec: undefined,
      session: undefined as unknown as ServerSession,
    };
    const fec = proxyFecChoice(headers, this.init.fec);
    if (fec !== undefined) {
      tunnel.fecAgreement = fec.agreement;
      tunnel.fecAnswer = [fec.field];
    }
    const h3 = conn.h3;
    tunnel.session = new ServerSession({
      request: { extendedConnectEnabled: true, templates: this.templates },
      mtu: this.init.mtu,
      ingressPolicy: (buf, info) => tunnel.policy(buf, info),
      authorize: () => this.authorize(tunnel),
      output: {
        sendHeaders: (h) => {
          h3.respond(streamId, h);
          conn.link.pump();
        },
        sendData: (bytes, fin) => {
          if (bytes.length > 0) h3.sendData(streamId, bytes);
          if (fin) h3.endStream(streamId);
          conn.link.pump();
        },
        resetStream: (code) => {
          h3.resetStream(streamId, code);
          conn.link.pump();
        },
        sendDatagram: (payload, offset, length) =>
          this.sendDatagram(tunnel, payload, offset, length),
        deliverPacket: (packet, offset, length) => this.fromClient(tunnel, packet, offset, length),
      },
      events: {
        onOpen: () => this.onTunnelOpen(tunnel),
        onClosed: (c) => {
          if (conn.tunnels.get(streamId) === tunnel) conn.tunnels.delete(streamId);
          if (c.how === 'rejected') {
            bump(
              this.report.connections,
              c.code === 503
                ? 'unavailable'
                : c.code === 403 || c.code === 401
                  ? 'denied'
                  : 'invalid',
            );
            tunnel.log.info({ status: c.code, reason: c.reason }, 'tunnel refused');
          }
          this.endTunnel(tunnel, c.reason);
        },
      },
    });
    conn.tunnels.set(streamId, tunnel);
    if (this.draining) {
      tunnel.session.refuse();
      return;
    }
    void tunnel.session.onRequestHeaders(headers);
  }

  private authorize(tunnel: Tunnel): Promise<Authorization> {
    const cert = tunnel.conn.quic.peerCertDer;
    if (cert === undefined) {
      return Promise.resolve({ ok: false, status: 401, reason: 'no client certificate' });
    }
    const id = this.nextAuthId++;
    return new Promise<AuthorizeReply>((resolve) => {
      this.pendingAuth.set(id, resolve);
      this.post({ type: 'authorize', id, certDer: cert, remote: tunnel.conn.remote });
    }).then((reply): Authorization => {
      if (reply.kind === 'unavailable') {
        // The link to the control plane retries at most every 5 s (control.ts): a client that
        // comes back after that finds it up again if it is up at all.
        return {
          ok: false,
          status: 503,
          reason: `${reply.message}; retry later`,
          retryAfterSeconds: CONTROL_RETRY_HINT_SECONDS,
        };
      }
      if (reply.kind === 'denied')
        return { ok: false, status: reply.status, reason: reply.message };
      tunnel.sessionId = reply.sessionId;
      tunnel.client = reply.client;
      tunnel.deviceId = reply.deviceId;
      tunnel.certSerial = reply.certSerial;
      tunnel.addresses = reply.addresses;
      tunnel.log = tunnel.log.child({ session: reply.sessionId, client: reply.client });
      this.applyPolicy(tunnel, reply.rules, reply.defaultAllow);
      return {
        ok: true,
        addresses: reply.addresses.map((a) => hostPrefix(a)),
        routes: reply.routes.map((r) => toRange(r)),
        responseHeaders: tunnel.fecAnswer,
      };
    });
  }

  private applyPolicy(tunnel: Tunnel, rules: PolicyRuleInput[], defaultAllow: boolean): void {
    tunnel.policy = compilePolicy(rules, defaultAllow);
  }

  private onTunnelOpen(tunnel: Tunnel): void {
    const slot = this.freeSlots.pop() ?? this.slots.length;
    this.slots[slot] = tunnel;
    tunnel.slot = slot;
    tunnel.startedAt = Date.now();
    this.bySessionId.set(tunnel.sessionId, tunnel);
    for (const a of tunnel.addresses) this.routes.set(a, this.init.shard, slot);
    bump(this.report.connections, 'accepted');
    if (tunnel.fecAgreement !== undefined) {
      // The 200 carrying our answer is out; from now on the client may send on the FEC context.
      tunnel.fec = new FecSession({
        port: tunnel.session,
        agreement: tunnel.fecAgreement,
        config: this.init.fec,
        maxPacketSize: this.init.mtu,
        quicBaseline: tunnel.conn.quic.stats(),
        now: () => performance.now(),
      });
      tunnel.fec.attach();
    }
    tunnel.log.info(
      { addresses: tunnel.addresses, fec: tunnel.fecAgreement ?? 'off' },
      'tunnel open',
    );
  }

  private endTunnel(tunnel: Tunnel, reason: string): void {
    if (tunnel.slot < 0) return;
    tunnel.fec?.detach();
    for (const a of tunnel.addresses) {
      this.routes.remove(a, { shard: this.init.shard, session: tunnel.slot });
    }
    this.slots[tunnel.slot] = undefined;
    this.freeSlots.push(tunnel.slot);
    tunnel.slot = -1;
    this.bySessionId.delete(tunnel.sessionId);
    const durationSeconds = (Date.now() - tunnel.startedAt) / 1000;
    const st = tunnel.session.stats;
    this.report.ended.push({
      client: tunnel.client,
      durationSeconds,
      reason,
      final: {
        sessionId: tunnel.sessionId,
        bytesIn: tunnel.bytesIn,
        bytesOut: tunnel.bytesOut,
        packetsIn: st.packetsFromPeer,
        packetsOut: st.packetsToPeer,
        spoofedDropped: st.droppedSource,
        policyDropped: st.droppedPolicy + st.droppedDestination,
      },
    });
    tunnel.log.info({ reason, seconds: Math.round(durationSeconds) }, 'tunnel closed');
  }

  // ---- packets ----------------------------------------------------------------------------

  private onDatagrams(conn: Conn, buf: Uint8Array, lengths: Uint32Array, count: number): void {
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const len = lengths[i];
      const payload = buf.subarray(offset, offset + len);
      offset += len;
      const target = conn.h3.receiveDatagram(payload);
      if (target === null) continue;
      const tunnel = conn.tunnels.get(target.streamId);
      if (tunnel === undefined) continue;
      tunnel.session.receiveDatagram(payload, target.offset, len - target.offset);
    }
    // A datagram can close the connection (H3_DATAGRAM_ERROR); carry that out.
    conn.link.pump();
    this.armFecTimer(conn);
  }

  // ---- FEC ---------------------------------------------------------------------------------

  /** Re-arms the connection's FEC timer if one of its tunnels now has an earlier deadline. */
  private armFecTimer(conn: Conn): void {
    let due = Infinity;
    for (const t of conn.tunnels.values()) {
      const d = t.fec?.nextDeadline();
      if (d !== undefined && d < due) due = d;
    }
    if (due === Infinity || due >= conn.fecTimerAt) return;
    if (conn.fecTimer !== undefined) clearTimeout(conn.fecTimer);
    conn.fecTimerAt = due;
    conn.fecTimer = setTimeout(
      () => this.onFecTimer(conn),
      Math.max(0, Math.ceil(due - performance.now())),
    );
  }

  private onFecTimer(conn: Conn): void {
    conn.fecTimer = undefined;
    conn.fecTimerAt = Infinity;
    if (conn.quic.closed) return;
    const now = performance.now();
    for (const t of conn.tunnels.values()) t.fec?.onTimer(now);
    this.armFecTimer(conn);
  }

  /** QUIC's datagram loss counters drive each tunnel's adaptive redundancy. */
  private observeFec(): void {
    for (const conn of this.conns) {
      let stats: ReturnType<Connection['stats']> | undefined;
      for (const t of conn.tunnels.values()) {
        if (t.fec === undefined) continue;
        stats ??= conn.quic.stats();
        t.fec.observe(stats);
      }
    }
  }

  private sendDatagram(tunnel: Tunnel, payload: Uint8Array, offset: number, length: number): void {
    const conn = tunnel.conn;
    if (conn.quic.closed || !conn.h3.canSendDatagrams()) return;
    const h = tunnel.qsid.length;
    const out = this.scratch;
    out.set(tunnel.qsid, 0);
    out.set(payload.subarray(offset, offset + length), h);
    tunnel.bytesOut += length;
    if (!conn.quic.sendDatagram(out.subarray(0, h + length)))
      bump(this.report.errors, 'datagram_queue_full');
  }

  /**
   * A packet the tunnel accepted from its client (or an ICMP error it made for the local side):
   * to another client if the destination is one (hairpin), else to the TUN.
   */
  private fromClient(tunnel: Tunnel, packet: Uint8Array, offset: number, length: number): void {
    if (this.switch.forward(packet, offset, length) !== SwitchPath.Dropped)
      tunnel.bytesIn += length;
  }

  /** A packet for the client of the tunnel in `slot` (from the TUN, a hairpin ring or this shard). */
  private toClient(slot: number, packet: Uint8Array, offset: number, length: number): void {
    const tunnel = this.slots[slot];
    if (tunnel === undefined) {
      bump(this.report.errors, 'no_session_for_packet');
      return;
    }
    // The slot is a hint from the route table: a stale one fails the tunnel's egress check
    // (destination not assigned to its client) and never reaches the wrong client.
    tunnel.session.sendPacket(packet, offset, length);
    if (tunnel.fec !== undefined) this.armFecTimer(tunnel.conn);
  }

  /** Packets from the TUN reader and the other shards' hairpin rings, tagged with the slot. */
  private async pumpInbound(): Promise<void> {
    const visit = (slot: Uint8Array, length: number, _ring: number, tag: number) =>
      this.toClient(tag, slot, 0, length);
    while (!this.stopped) {
      if (this.inbound.drain(visit, INBOUND_BATCH) === 0) {
        await this.inbound.waitAsync(1000);
        continue;
      }
      // Let QUIC I/O run between batches: the rings may never run dry under load.
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  // ---- control ----------------------------------------------------------------------------

  handle(msg: ToShard): void {
    switch (msg.type) {
      case 'authorized': {
        const resolve = this.pendingAuth.get(msg.id);
        this.pendingAuth.delete(msg.id);
        resolve?.(msg.reply);
        return;
      }
      case 'kick':
        for (const id of msg.sessionIds)
          this.closeTunnel(this.bySessionId.get(id), `kicked: ${msg.reason}`);
        return;
      case 'revoke': {
        const serials = new Set(msg.serials);
        for (const t of [...this.bySessionId.values()]) {
          if (
            msg.sessionIds.includes(t.sessionId) ||
            serials.has(t.certSerial) ||
            (msg.deviceId !== 0 && t.deviceId === msg.deviceId)
          ) {
            this.closeTunnel(t, 'certificate revoked');
          }
        }
        return;
      }
      case 'policy': {
        const t = this.bySessionId.get(msg.sessionId);
        if (t === undefined) return;
        this.applyPolicy(t, msg.rules, msg.defaultAllow);
        t.session.updateRoutes(msg.routes.map((r) => toRange(r)));
        t.log.info({ routes: msg.routes }, 'policy updated');
        return;
      }
      case 'credentials':
        this.post({
          type: 'credentials',
          id: msg.id,
          shard: this.init.shard,
          ...this.swapCredentials(msg.certPem, msg.keyPem, msg.caPem),
        });
        return;
      case 'settings':
        this.applySettings(msg.logLevel, msg.fec, msg.paths);
        return;
      case 'drain':
        this.draining = true;
        for (const c of this.conns) {
          c.h3.goaway();
          c.link.pump();
        }
        // The supervisor waits for current session counts before it decides to stop.
        this.sendReport();
        return;
      case 'stop':
        void this.stop();
        return;
    }
  }

  /**
   * New handshakes present the renewed certificate; established connections keep the keys they
   * negotiated (TLS 1.3 never re-authenticates), so no tunnel notices.
   */
  private swapCredentials(
    certPem: string,
    keyPem: string,
    caPem: string,
  ): { outcome: 'applied' | 'failed'; error?: string } {
    try {
      this.endpoint.setCredentials({ certPem, keyPem, caPem });
    } catch (err) {
      return { outcome: 'failed', error: (err as Error).message };
    }
    this.init.certPem = certPem;
    this.init.keyPem = keyPem;
    this.init.caPem = caPem;
    return { outcome: 'applied' };
  }

  /** Reloaded settings: the next request, FEC answer and log line use them. */
  private applySettings(logLevel: string, fec: FecConfig, paths: string[]): void {
    this.init.fec = fec;
    this.init.paths = paths;
    this.templates = paths.map((p) => parseTemplate(p));
    this.init.logLevel = logLevel;
    this.log.level = logLevel;
    // Children copied the level when they were made.
    for (const c of this.conns) for (const t of c.tunnels.values()) t.log.level = logLevel;
  }

  private closeTunnel(t: Tunnel | undefined, reason: string): void {
    if (t === undefined) return;
    t.log.info({ reason }, 'closing tunnel');
    t.session.abort(H3_REQUEST_CANCELLED, reason);
    // The client learns at once; with no tunnel left the connection has no purpose.
    if (t.conn.tunnels.size === 0) t.conn.quic.close(H3_NO_ERROR, reason);
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    this.inbound.wake();
    const sessions = this.bySessionId.size;
    this.sendReport();
    await this.endpoint.close();
    this.post({ type: 'stopped', shard: this.init.shard, sessions });
  }

  private sendReport(): void {
    const r = this.report;
    for (const t of this.bySessionId.values()) {
      const s = t.conn.quic.stats();
      // Packets that waited too long behind a congested path and were dropped unsent.
      const expired = s.datagramsDroppedExpired - t.conn.expiredReported;
      if (expired > 0) {
        bump(r.errors, 'datagram_expired', expired);
        t.conn.expiredReported = s.datagramsDroppedExpired;
      }
      const st = t.session.stats;
      r.sessions.push({
        sessionId: t.sessionId,
        client: t.client,
        addresses: t.addresses,
        bytesIn: t.bytesIn,
        bytesOut: t.bytesOut,
        packetsIn: st.packetsFromPeer,
        packetsOut: st.packetsToPeer,
        spoofedDropped: st.droppedSource,
        policyDropped: st.droppedPolicy + st.droppedDestination,
        rttSeconds: s.srttUs / 1e6,
        lossRatio: s.datagramsSent > 0 ? s.datagramsLost / s.datagramsSent : 0,
        fecRecovered: t.fec?.metrics.packetsRecovered ?? 0,
        fecRepairSent: t.fec?.metrics.repairPacketsSent ?? 0,
        fecOverheadBytes: t.fec?.metrics.overheadBytes ?? 0,
        fecRatio: t.fec?.metrics.currentRatio ?? 0,
        fecUnrecoverableBlocks: t.fec?.metrics.unrecoverableBlocks ?? 0,
        startedAt: t.startedAt,
      });
    }
    const counters = this.endpoint.counters() as unknown as Record<string, number>;
    for (const key of [
      'tlsNoCertificate',
      'tlsUntrusted',
      'tlsWrongPurpose',
      'tlsOther',
      'handshakeFailed',
    ]) {
      const delta = (counters[key] ?? 0) - (this.lastCounters[key] ?? 0);
      if (delta > 0) bump(r.handshakeFailures, key, delta);
    }
    this.lastCounters = { ...counters };
    const drops = this.toTun.drops();
    r.ringDrops = (drops - this.ringDropsSeen) | 0;
    this.ringDropsSeen = drops;
    const sw = this.switch.counters;
    r.hairpin = {
      local: sw.local - this.lastSwitch.local,
      shard: sw.shard - this.lastSwitch.shard,
    };
    r.hairpinDrops = sw.hairpinDrops - this.lastSwitch.hairpinDrops;
    this.lastSwitch = { local: sw.local, shard: sw.shard, hairpinDrops: sw.hairpinDrops };
    r.quicConnections = this.conns.size;
    this.post(r);
    this.report = emptyReport(this.init.shard);
  }
}

function hostPrefix(address: string): IpPrefix {
  const p = parsePrefix(address.includes(':') ? `${address}/128` : `${address}/32`);
  if (p === undefined) throw new Error(`control plane sent an invalid address '${address}'`);
  return p;
}

function toRange(cidr: string): IpRange {
  const p = parsePrefix(cidr);
  if (p === undefined) throw new Error(`control plane sent an invalid route '${cidr}'`);
  return rangeFromPrefix(p);
}

if (parentPort !== null && (workerData as ShardInit | undefined)?.role === 'shard') {
  const shard = new Shard(workerData as ShardInit);
  parentPort.on('message', (msg: ToShard) => shard.handle(msg));
  shard.start();
}
