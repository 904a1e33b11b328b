// Prometheus metrics of the control plane: state gauges read from the store when scraped, and RPC
// latency and errors by method recorded by the gRPC front.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ControlPlane } from './service/control.js';

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  readonly #latency: Histogram<'method' | 'code'>;
  readonly #errors: Counter<'method' | 'code'>;

  constructor(cp: ControlPlane) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'masque_control_' });
    new Gauge({
      name: 'masque_control_users',
      help: 'Users in the store',
      registers,
      async collect() {
        this.set(await cp.store.countUsers());
      },
    });
    new Gauge({
      name: 'masque_control_devices',
      help: 'Devices that are not revoked',
      registers,
      async collect() {
        this.set(await cp.store.countDevices());
      },
    });
    new Gauge({
      name: 'masque_control_leases',
      help: 'Addresses leased to devices, by pool',
      labelNames: ['pool'],
      registers,
      async collect() {
        for (const u of await cp.pools.usage()) this.set({ pool: u.cidr }, u.leased);
      },
    });
    new Gauge({
      name: 'masque_control_pool_usage_ratio',
      help: 'Share of the pool leased (0..1), by pool',
      labelNames: ['pool'],
      registers,
      async collect() {
        for (const u of await cp.pools.usage()) {
          this.set({ pool: u.cidr }, Number((BigInt(u.leased) * 1_000_000n) / u.capacity) / 1e6);
        }
      },
    });
    new Gauge({
      name: 'masque_control_pool_capacity',
      help: 'Client addresses a pool can hand out (capped at 2^53 for IPv6)',
      labelNames: ['pool'],
      registers,
      async collect() {
        for (const u of await cp.pools.usage()) {
          const cap =
            u.capacity > BigInt(Number.MAX_SAFE_INTEGER)
              ? Number.MAX_SAFE_INTEGER
              : Number(u.capacity);
          this.set({ pool: u.cidr }, cap);
        }
      },
    });
    new Gauge({
      name: 'masque_control_sessions',
      help: 'Live sessions reported by data planes',
      registers,
      async collect() {
        this.set((await cp.store.listSessions({})).length);
      },
    });
    new Gauge({
      name: 'masque_control_watch_dataplanes',
      help: 'Data planes with an open Watch stream',
      registers,
      collect() {
        this.set(cp.hub.connected().length);
      },
    });
    this.#latency = new Histogram({
      name: 'masque_control_rpc_duration_seconds',
      help: 'gRPC call latency by method and status code',
      labelNames: ['method', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.#errors = new Counter({
      name: 'masque_control_rpc_errors_total',
      help: 'gRPC calls that ended with a status other than OK, by method and code',
      labelNames: ['method', 'code'],
      registers,
    });
  }

  /** The gRPC front's observer. Watch streams are observed when they end. */
  readonly observe = (method: string, code: string, seconds: number): void => {
    this.#latency.observe({ method, code }, seconds);
    if (code !== 'OK') this.#errors.inc({ method, code });
  };

  /** Serves GET /metrics on HOST:PORT. */
  async listen(address: string): Promise<Server> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(i + 1));
    const server = createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end('try /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return server;
  }
}
