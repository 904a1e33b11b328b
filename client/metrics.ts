// Optional Prometheus endpoint (--metrics ADDR) with the figures `status` shows. Values are read
// from the status snapshot at scrape time (collect callbacks), so there is one source of truth
// and nothing to keep in sync on the packet path.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import { FlagError } from './errors.js';
import type { ClientStatus } from './status.js';

const STATES = ['idle', 'connecting', 'up', 'reconnecting', 'stopped', 'denied'] as const;

/** Parses host:port, [v6]:port or :port (loopback); port 0 picks a free one (tests). */
export function parseListenAddress(text: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]*):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 0 && port <= 65535)) {
    throw new FlagError(`--metrics "${text}" is not HOST:PORT (e.g. 127.0.0.1:9092)`, '--metrics');
  }
  return { host: m[1] || '127.0.0.1', port };
}

/** The client's series, all read from one status snapshot per scrape, so that every series of
 * a scrape describes the same instant. */
export class ClientMetrics {
  readonly registry = new Registry();
  #snap: ClientStatus | undefined;
  readonly #provide: () => ClientStatus;

  constructor(provide: () => ClientStatus) {
    this.#provide = provide;
    register(this.registry, () => (this.#snap ??= this.#provide()));
  }

  /** The exposition text for one scrape. */
  async scrape(): Promise<string> {
    this.#snap = undefined;
    return this.registry.metrics();
  }
}

function register(registry: Registry, current: () => ClientStatus): void {
  const gauge = (name: string, help: string, read: (s: ClientStatus) => number | null): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        const v = read(current());
        if (v === null) this.reset();
        else this.set(v);
      },
    });
  };
  // Counters mirror monotonic totals the client keeps; reset+inc sets them to the current total.
  const total = (name: string, help: string, read: (s: ClientStatus) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(current()));
      },
    });
  };
  const counter = (
    name: string,
    help: string,
    labels: Record<string, (s: ClientStatus) => number>,
  ): void => {
    new Counter({
      name,
      help,
      labelNames: ['direction'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [direction, read] of Object.entries(labels))
          this.inc({ direction }, read(current()));
      },
    });
  };
  new Gauge({
    name: 'masque_client_state',
    help: 'Connection state (1 for the current state)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const state = current().state;
      for (const s of STATES) this.set({ state: s }, s === state ? 1 : 0);
    },
  });
  gauge('masque_client_up', 'Whether the tunnel is up', (s) => (s.state === 'up' ? 1 : 0));
  gauge(
    'masque_client_uptime_seconds',
    'Seconds the current tunnel has been up',
    (s) => s.uptimeSeconds,
  );
  counter('masque_client_bytes_total', 'Inner bytes through the tunnel', {
    tx: (s) => s.bytesSent,
    rx: (s) => s.bytesReceived,
  });
  counter('masque_client_packets_total', 'Inner packets through the tunnel', {
    tx: (s) => s.packetsSent,
    rx: (s) => s.packetsReceived,
  });
  gauge('masque_client_rtt_seconds', 'Smoothed QUIC RTT', (s) =>
    s.rttMs === null ? null : s.rttMs / 1000,
  );
  gauge('masque_client_loss_ratio', 'Share of QUIC packets declared lost', (s) => s.lossRatio);
  gauge(
    'masque_client_fec_ratio',
    'FEC repair to data ratio in use (0: off, or no loss seen)',
    (s) => s.fec?.ratio ?? 0,
  );
  total('masque_client_reconnects_total', 'Times an up tunnel was lost', (s) => s.reconnects);
  total(
    'masque_client_failed_attempts_total',
    'Connect attempts that failed',
    (s) => s.failedAttempts,
  );
  total(
    'masque_client_dropped_while_down_total',
    'TUN packets dropped with no tunnel',
    (s) => s.droppedWhileDown,
  );
  total(
    'masque_client_fec_repair_sent_total',
    'FEC repair packets sent',
    (s) => s.fec?.repairSent ?? 0,
  );
  total(
    'masque_client_fec_repair_received_total',
    'FEC repair packets received',
    (s) => s.fec?.repairReceived ?? 0,
  );
  total(
    'masque_client_fec_recovered_total',
    'Packets recovered by FEC',
    (s) => s.fec?.recovered ?? 0,
  );
  total(
    'masque_client_fec_unrecoverable_total',
    'FEC blocks that could not be repaired',
    (s) => s.fec?.unrecoverable ?? 0,
  );
  total(
    'masque_client_fec_overhead_bytes_total',
    'Bytes spent on FEC (headers on data packets and repair packets)',
    (s) => s.fec?.overheadBytes ?? 0,
  );
}

export class MetricsServer {
  readonly #server: Server;
  private constructor(server: Server) {
    this.#server = server;
  }

  static async listen(address: string, provide: () => ClientStatus): Promise<MetricsServer> {
    const { host, port } = parseListenAddress(address);
    const metrics = new ClientMetrics(provide);
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('not found\n');
        return;
      }
      metrics.scrape().then(
        (body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(new FlagError(`--metrics ${address}: ${err.code ?? err.message}`, '--metrics')),
      );
      server.listen(port, host, () => resolve());
    });
    return new MetricsServer(server);
  }

  address(): { host: string; port: number } {
    const a = this.#server.address();
    if (a === null || typeof a === 'string') throw new Error('metrics server not listening');
    return { host: a.address, port: a.port };
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
