// Prometheus metrics of the data plane. Shards send ShardReports; this module turns them into the
// masque_vpn_* series (names as the reference system declared them, but every one updated).
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ShardReport, SessionFigures } from './report.js';

export class DataplaneMetrics {
  readonly registry = new Registry();
  private readonly activeSessions: Gauge;
  private readonly connections: Counter;
  private readonly clientBytes: Counter;
  private readonly clientPackets: Counter;
  private readonly clientRtt: Gauge;
  private readonly clientLoss: Gauge;
  private readonly clientSpoofed: Counter;
  private readonly clientPolicyDrops: Counter;
  private readonly fecRecovered: Counter;
  private readonly fecRepairSent: Counter;
  private readonly fecOverhead: Counter;
  private readonly fecUnrecoverable: Counter;
  private readonly fecRatio: Gauge;
  private readonly sessionDuration: Histogram;
  private readonly errors: Counter;
  private readonly handshakeFailures: Counter;
  private readonly workerSessions: Gauge;
  private readonly workerConnections: Gauge;
  private readonly ringDrops: Counter;
  private readonly hairpinPackets: Counter;
  readonly ringDepth: Gauge;
  readonly tunErrors: Counter;
  readonly tunPackets: Counter;
  readonly poolUsage: Gauge;
  readonly serverCertNotAfter: Gauge;
  readonly certRenewals: Counter;
  /** Last cumulative figures per session, to turn snapshots into counter increments. */
  private readonly last = new Map<string, SessionFigures>();
  private readonly liveByShard = new Map<number, Set<string>>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'masque_vpn_process_' });
    this.activeSessions = new Gauge({
      name: 'masque_vpn_active_connections',
      help: 'CONNECT-IP tunnels currently open',
      registers,
    });
    this.connections = new Counter({
      name: 'masque_vpn_connections_total',
      help: 'Tunnel attempts by result (accepted, denied, invalid, unavailable, ...)',
      labelNames: ['result'],
      registers,
    });
    this.clientBytes = new Counter({
      name: 'masque_vpn_client_bytes_total',
      help: 'IP bytes per client and direction (rx = from the client, tx = to the client)',
      labelNames: ['client', 'direction'],
      registers,
    });
    this.clientPackets = new Counter({
      name: 'masque_vpn_client_packets_total',
      help: 'IP packets per client and direction',
      labelNames: ['client', 'direction'],
      registers,
    });
    this.clientRtt = new Gauge({
      name: 'masque_vpn_client_rtt_seconds',
      help: 'Smoothed QUIC RTT per client',
      labelNames: ['client'],
      registers,
    });
    this.clientLoss = new Gauge({
      name: 'masque_vpn_client_loss_ratio',
      help: 'QUIC packet loss ratio per client (lost / sent)',
      labelNames: ['client'],
      registers,
    });
    this.clientSpoofed = new Counter({
      name: 'masque_vpn_client_spoofed_packets_total',
      help: 'Packets from a client whose source is not one of its addresses (dropped)',
      labelNames: ['client'],
      registers,
    });
    this.clientPolicyDrops = new Counter({
      name: 'masque_vpn_client_policy_drops_total',
      help: 'Packets from a client to a destination its policy does not allow (dropped, ICMP sent)',
      labelNames: ['client'],
      registers,
    });
    this.fecRecovered = new Counter({
      name: 'masque_vpn_client_fec_recovered_total',
      help: 'Lost packets from a client rebuilt from FEC repair packets',
      labelNames: ['client'],
      registers,
    });
    this.fecRepairSent = new Counter({
      name: 'masque_vpn_client_fec_repair_sent_total',
      help: 'FEC repair packets sent to a client',
      labelNames: ['client'],
      registers,
    });
    this.fecOverhead = new Counter({
      name: 'masque_vpn_client_fec_overhead_bytes_total',
      help: 'Bytes spent on FEC towards a client (headers on data packets and whole repair packets)',
      labelNames: ['client'],
      registers,
    });
    this.fecUnrecoverable = new Counter({
      name: 'masque_vpn_client_fec_unrecoverable_blocks_total',
      help: 'FEC blocks from a client that kept missing data after the window passed',
      labelNames: ['client'],
      registers,
    });
    this.fecRatio = new Gauge({
      name: 'masque_vpn_client_fec_ratio',
      help: 'Repair to data ratio FEC currently uses towards a client (0 = off or not negotiated)',
      labelNames: ['client'],
      registers,
    });
    this.sessionDuration = new Histogram({
      name: 'masque_vpn_session_duration_seconds',
      help: 'Length of ended tunnels',
      buckets: [1, 10, 60, 300, 1800, 3600, 14400, 86400],
      registers,
    });
    this.errors = new Counter({
      name: 'masque_vpn_errors_total',
      help: 'Errors by type',
      labelNames: ['type'],
      registers,
    });
    this.handshakeFailures = new Counter({
      name: 'masque_vpn_handshake_failures_total',
      help: 'QUIC/TLS handshakes that failed, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.workerSessions = new Gauge({
      name: 'masque_vpn_worker_sessions',
      help: 'Tunnels per shard worker',
      labelNames: ['worker'],
      registers,
    });
    this.workerConnections = new Gauge({
      name: 'masque_vpn_worker_quic_connections',
      help: 'QUIC connections per shard worker',
      labelNames: ['worker'],
      registers,
    });
    this.ringDrops = new Counter({
      name: 'masque_vpn_ring_drops_total',
      help: 'Packets dropped because a ring was full, by ring',
      labelNames: ['ring'],
      registers,
    });
    this.hairpinPackets = new Counter({
      name: 'masque_vpn_hairpin_packets_total',
      help: 'Client-to-client packets switched inside the data plane (never through the kernel), by path (local = same shard, shard = another shard)',
      labelNames: ['path'],
      registers,
    });
    this.ringDepth = new Gauge({
      name: 'masque_vpn_ring_depth',
      help: 'Packets waiting in a ring',
      labelNames: ['ring'],
      registers,
    });
    this.tunErrors = new Counter({
      name: 'masque_vpn_tun_errors_total',
      help: 'TUN read/write errors',
      labelNames: ['op'],
      registers,
    });
    this.tunPackets = new Counter({
      name: 'masque_vpn_tun_packets_total',
      help: 'Packets read from / written to the TUN device',
      labelNames: ['op'],
      registers,
    });
    this.serverCertNotAfter = new Gauge({
      name: 'masque_vpn_server_cert_not_after_seconds',
      help: 'Expiry (Unix time) of the server certificate new handshakes present',
      registers,
    });
    this.certRenewals = new Counter({
      name: 'masque_vpn_server_cert_renewals_total',
      help: 'Server certificate renewals by result (applied, failed)',
      labelNames: ['result'],
      registers,
    });
    this.poolUsage = new Gauge({
      name: 'masque_vpn_ip_pool_usage',
      help: 'Leased addresses per pool (from the control plane)',
      labelNames: ['pool'],
      registers,
    });
  }

  /** Applies one shard snapshot. */
  apply(report: ShardReport): void {
    const worker = String(report.shard);
    const live = new Set<string>();
    for (const s of report.sessions) {
      live.add(s.sessionId);
      const prev = this.last.get(s.sessionId);
      const d = (now: number, before: number | undefined) => Math.max(0, now - (before ?? 0));
      this.clientBytes.inc({ client: s.client, direction: 'rx' }, d(s.bytesIn, prev?.bytesIn));
      this.clientBytes.inc({ client: s.client, direction: 'tx' }, d(s.bytesOut, prev?.bytesOut));
      this.clientPackets.inc(
        { client: s.client, direction: 'rx' },
        d(s.packetsIn, prev?.packetsIn),
      );
      this.clientPackets.inc(
        { client: s.client, direction: 'tx' },
        d(s.packetsOut, prev?.packetsOut),
      );
      this.clientSpoofed.inc({ client: s.client }, d(s.spoofedDropped, prev?.spoofedDropped));
      this.clientPolicyDrops.inc({ client: s.client }, d(s.policyDropped, prev?.policyDropped));
      this.clientRtt.set({ client: s.client }, s.rttSeconds);
      this.clientLoss.set({ client: s.client }, s.lossRatio);
      const c = { client: s.client };
      this.fecRecovered.inc(c, d(s.fecRecovered, prev?.fecRecovered));
      this.fecRepairSent.inc(c, d(s.fecRepairSent, prev?.fecRepairSent));
      this.fecOverhead.inc(c, d(s.fecOverheadBytes, prev?.fecOverheadBytes));
      this.fecUnrecoverable.inc(c, d(s.fecUnrecoverableBlocks, prev?.fecUnrecoverableBlocks));
      this.fecRatio.set(c, s.fecRatio);
      this.last.set(s.sessionId, s);
    }
    for (const { client, final: f } of report.ended) {
      if (f === undefined) continue;
      const prev = this.last.get(f.sessionId);
      const d = (now: number, before: number | undefined) => Math.max(0, now - (before ?? 0));
      this.clientBytes.inc({ client, direction: 'rx' }, d(f.bytesIn, prev?.bytesIn));
      this.clientBytes.inc({ client, direction: 'tx' }, d(f.bytesOut, prev?.bytesOut));
      this.clientPackets.inc({ client, direction: 'rx' }, d(f.packetsIn, prev?.packetsIn));
      this.clientPackets.inc({ client, direction: 'tx' }, d(f.packetsOut, prev?.packetsOut));
      this.clientSpoofed.inc({ client }, d(f.spoofedDropped, prev?.spoofedDropped));
      this.clientPolicyDrops.inc({ client }, d(f.policyDropped, prev?.policyDropped));
      this.last.delete(f.sessionId);
    }
    for (const gone of this.liveByShard.get(report.shard) ?? []) {
      if (!live.has(gone)) this.last.delete(gone);
    }
    this.liveByShard.set(report.shard, live);
    for (const e of report.ended) this.sessionDuration.observe(e.durationSeconds);
    for (const [result, n] of Object.entries(report.connections))
      this.connections.inc({ result }, n);
    for (const [reason, n] of Object.entries(report.handshakeFailures)) {
      this.handshakeFailures.inc({ reason }, n);
    }
    for (const [type, n] of Object.entries(report.errors)) this.errors.inc({ type }, n);
    if (report.ringDrops > 0) this.ringDrops.inc({ ring: `shard${worker}` }, report.ringDrops);
    if (report.hairpinDrops > 0)
      this.ringDrops.inc({ ring: `shard${worker}_hairpin` }, report.hairpinDrops);
    this.hairpinPackets.inc({ path: 'local' }, report.hairpin.local);
    this.hairpinPackets.inc({ path: 'shard' }, report.hairpin.shard);
    this.workerSessions.set({ worker }, report.sessions.length);
    this.workerConnections.set({ worker }, report.quicConnections);
    let total = 0;
    for (const set of this.liveByShard.values()) total += set.size;
    this.activeSessions.set(total);
  }

  /** Serves GET /metrics; resolves once listening. */
  async serve(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found; try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }
}
