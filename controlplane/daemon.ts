// Assembles a running control plane from a configuration: data directory, store, CA, pools, the
// gRPC servers and the metrics endpoint. main.ts wraps it in a CLI; tests and the benchmark start
// it in-process.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server as HttpServer } from 'node:http';
import { join, resolve } from 'node:path';
import { AddressPools } from './pool/index.js';
import { SqliteStore } from './store/sqlite.js';
import { ControlPlane, type Logger } from './service/control.js';
import { Pki } from './service/pki.js';
import { ControlServer } from './service/server.js';
import { ControlPlaneMetrics } from './metrics.js';
import type { ControlPlaneConfig } from './config.js';
import { ConfigError } from './config.js';

export interface RunningControlPlane {
  cp: ControlPlane;
  socketPath: string;
  /** Bound TCP port of the mTLS listener (0 without one). */
  tcpPort: number;
  metricsAddress: string | undefined;
  metrics: ControlPlaneMetrics;
  stop(graceMs?: number): Promise<void>;
}

const SEEDED_KEY = 'seeded.server_addresses';

export async function startControlPlane(
  config: ControlPlaneConfig,
  log: Logger,
): Promise<RunningControlPlane> {
  const dataDir = resolve(config.data_dir);
  // 0700: the socket inside is the local admin's credential, the database holds the CA key.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  // The database holds the CA key: created 0600 (SQLite gives its -wal and -shm files the same
  // mode), and tightened if an older file is looser.
  const dbPath = join(dataDir, 'control.db');
  if (!existsSync(dbPath)) writeFileSync(dbPath, '', { mode: 0o600 });
  chmodSync(dbPath, 0o600);
  const store = new SqliteStore({
    path: dbPath,
    synchronous: config.store.synchronous,
  });
  try {
    let pools: AddressPools;
    try {
      pools = new AddressPools(
        {
          ipv4: config.pools.ipv4 === '' ? undefined : config.pools.ipv4,
          ipv6: config.pools.ipv6 === '' ? undefined : config.pools.ipv6,
        },
        store.leases,
      );
    } catch (err) {
      throw new ConfigError(`[pools]: ${(err as Error).message}`);
    }
    const importFrom =
      config.ca.cert !== undefined && config.ca.key !== undefined
        ? {
            certPem: readFileSync(config.ca.cert, 'utf8'),
            keyPem: readFileSync(config.ca.key, 'utf8'),
          }
        : undefined;
    const { pki, created, imported } = await Pki.open(store, {
      importFrom,
      commonName: config.ca.common_name,
    });
    if (created) log.info({ dataDir }, 'created a new CA');
    if (imported) log.info({ cert: config.ca.cert }, 'imported the configured CA');
    const cp = new ControlPlane(
      store,
      pools,
      pki,
      {
        endpoints: config.endpoints,
        serverName: config.server_name,
        templatePath: config.tunnel.template_path,
        mtu: config.tunnel.mtu,
        fec: {
          enabled: config.fec.enabled,
          blockSize: config.fec.block_size,
          redundancyPercent: config.fec.redundancy_percent,
        },
        defaultAction: config.policy.default_action,
        clientCertDays: config.certificates.client_days,
        serverCertDays: config.certificates.server_days,
      },
      log,
    );
    await seedServerRules(cp);
    const metrics = new ControlPlaneMetrics(cp);
    const socketPath = join(dataDir, 'control.sock');
    const server = new ControlServer(cp, {
      socketPath,
      tcpAddress: config.grpc,
      observe: metrics.observe,
    });
    await server.start();
    let http: HttpServer | undefined;
    if (config.metrics !== undefined) http = await metrics.listen(config.metrics);
    log.info(
      {
        socket: socketPath,
        grpc: config.grpc,
        metrics: config.metrics,
        endpoints: config.endpoints,
        serverName: config.server_name,
        pools: (await pools.usage()).map((u) => u.cidr),
      },
      'control plane ready',
    );
    return {
      cp,
      socketPath,
      tcpPort: server.tcpPort,
      metricsAddress: config.metrics,
      metrics,
      async stop(graceMs = 5_000) {
        await server.stop(graceMs);
        await new Promise<void>((done) => (http ? http.close(() => done()) : done()));
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

/**
 * On first start, one rule for every user: the server's own tunnel addresses are reachable (ping
 * and iperf to 10.77.0.1 work on a fresh install under default deny). It is an ordinary rule:
 * `vpnctl policy list` shows it and `vpnctl policy remove ID` removes it for good.
 */
async function seedServerRules(cp: ControlPlane): Promise<void> {
  if ((await cp.store.getSetting(SEEDED_KEY)) !== undefined) return;
  for (const pool of [cp.pools.ipv4, cp.pools.ipv6]) {
    if (pool === undefined) continue;
    await cp.store.addRule({
      group: '*',
      action: 'allow',
      prefix: `${pool.serverAddress}/${pool.hostPrefixLength}`,
      protocol: 0,
      portFrom: 0,
      portTo: 0,
      priority: 1000,
      description: "the server's tunnel address (added on first start)",
    });
  }
  await cp.store.setSetting(SEEDED_KEY, new Date().toISOString());
}
