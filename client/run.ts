// One run of the client: validate everything a person can get wrong, then bring the tunnel up
// and keep it up until a signal or a denial, and leave the host as it was found. The packet stack
// (transport) and the TUN's packet I/O are injected: main.ts passes the real ones, tests fakes.
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { Backoff } from './backoff.js';
import { loadBundle, checkMtu, checkTemplate, transportSettings } from './bundle.js';
import { DnsControl } from './dns.js';
import { ClientError, FlagError } from './errors.js';
import { IpTool, execRunner } from './ip.js';
import { MetricsServer, parseListenAddress } from './metrics.js';
import { NetConfig } from './netconfig.js';
import { parsePrefix, PrefixError, type IpPrefix } from './prefix.js';
import { StateFile } from './statefile.js';
import { buildStatus, ControlServer, type ClientStatus } from './status.js';
import { Supervisor, type PacketDevice } from './supervisor.js';
import type { TransportSettings, TunnelTransport } from './transport.js';

export const DEFAULT_TUN = 'mq0';
export const DEFAULT_STATE_DIR = '/run/masque-client';
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface RunOptions {
  readonly config: string;
  readonly key?: string;
  readonly tun: string;
  readonly mtu?: number;
  readonly metrics?: string;
  readonly logLevel: LogLevel;
  readonly template?: string;
  readonly addressRequest: boolean;
  readonly staticAddresses: readonly string[];
  readonly staticRoutes: readonly string[];
  readonly dns: boolean;
  readonly controlSocket?: string;
  readonly stateDir: string;
}

/** A TUN's packet I/O, closed when the run ends. */
export interface OpenedDevice extends PacketDevice {
  close(): Promise<void>;
}

export interface RunDeps {
  /** Builds the QUIC + HTTP/3 + CONNECT-IP transport. */
  createTransport(settings: TransportSettings, log: Logger): TunnelTransport;
  /** Attaches packet I/O to the (already created, persistent) TUN named `tun`. */
  openDevice(tun: string, mtu: number, log: Logger): Promise<OpenedDevice>;
  /** Aborted to stop the client (SIGINT/SIGTERM in main.ts). */
  readonly stop: AbortSignal;
  /** Where logs go; stderr by default. */
  readonly logStream?: NodeJS.WritableStream;
  /** Runs `ip` somewhere else (tests: a network namespace). */
  readonly ip?: IpTool;
  readonly resolvConf?: string;
  /** Called once the tunnel machinery is running (tests). */
  onReady?(info: { controlSocket: string; metrics: MetricsServer | undefined }): void;
}

export function socketPath(stateDir: string, tun: string, explicit?: string): string {
  return explicit ?? join(stateDir, `${tun}.sock`);
}

const TUN_NAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Checks the flags that carry values; bundle-independent, so it runs first. */
export function checkFlags(o: RunOptions): { addresses: IpPrefix[]; routes: IpPrefix[] } {
  if (!TUN_NAME.test(o.tun)) {
    throw new FlagError(
      `--tun "${o.tun}" is not a valid interface name (1-15 of A-Z a-z 0-9 _ . -)`,
      '--tun',
    );
  }
  if (o.mtu !== undefined) checkMtu(o.mtu, '--mtu', 'flag');
  if (o.template !== undefined) checkTemplate(o.template, '--template', 'flag');
  if (o.metrics !== undefined) parseListenAddress(o.metrics);
  const parse = (flag: string, text: string, network: boolean): IpPrefix => {
    try {
      return parsePrefix(text, { network });
    } catch (err) {
      if (err instanceof PrefixError) throw new FlagError(`${flag}: ${err.message}`, flag);
      throw err;
    }
  };
  return {
    addresses: o.staticAddresses.map((a) => parse('--static-address', a, false)),
    routes: o.staticRoutes.map((r) => parse('--static-route', r, true)),
  };
}

/**
 * Runs the client until stopped (resolves) or denied (rejects with a ClientError carrying the
 * server's reason). Throws ClientErrors for every user-facing problem before anything changes.
 */
export async function runClient(o: RunOptions, deps: RunDeps): Promise<void> {
  const statics = checkFlags(o);
  const { bundle, endpoints } = await loadBundle(o.config, { keyFile: o.key });
  if (o.dns && bundle.dns.length === 0) {
    throw new FlagError(`--dns: ${o.config} names no DNS servers (tunnel.dns)`, '--dns');
  }
  const mtu = o.mtu ?? bundle.mtu;
  const log = pino(
    { name: 'masque-client', level: o.logLevel, base: { tun: o.tun } },
    deps.logStream ?? pino.destination({ dest: 2, sync: true }),
  );
  for (const key of bundle.ignoredKeys)
    log.warn({ key }, 'bundle key not known to this client; ignored');
  if (!deps.ip && process.getuid?.() !== 0) {
    throw new ClientError(
      'masque-client needs root (CAP_NET_ADMIN) to create the TUN device and routes',
    );
  }
  const transport = deps.createTransport(
    transportSettings(bundle, endpoints, {
      template: o.template,
      addressRequest: o.addressRequest,
      mtu,
    }),
    log,
  );

  const net = new NetConfig({
    ip: deps.ip ?? new IpTool(),
    tun: o.tun,
    mtu,
    servers: [...new Set(endpoints.flatMap((e) => e.addresses))],
    state: new StateFile(join(o.stateDir, `${o.tun}.json`)),
    dns: new DnsControl({
      run: execRunner,
      resolvConf: deps.resolvConf ?? '/etc/resolv.conf',
      backupPath: join(o.stateDir, `${o.tun}.resolv.conf`),
    }),
    log,
  });

  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const step of cleanups.reverse()) {
      await step().catch((err: Error) => log.warn({ err: err.message }, 'cleanup step failed'));
    }
  };
  try {
    await net.prepare();
    cleanups.push(() => net.teardown());
    if (o.dns) await net.setDns(bundle.dns);
    const device = await deps.openDevice(o.tun, mtu, log);
    cleanups.push(() => device.close());

    const supervisor = new Supervisor({
      transport,
      network: net,
      device,
      log,
      backoff: new Backoff({ baseMs: 500, capMs: 15_000 }),
      staticAddresses: statics.addresses,
      staticRoutes: statics.routes,
    });
    const info = {
      tun: o.tun,
      identity: bundle.identity,
      serverName: bundle.serverName,
      endpoints: endpoints.map((e) =>
        e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`,
      ),
    };
    const provide = (): ClientStatus => buildStatus(supervisor.snapshot(), info, Date.now());
    const control = await ControlServer.listen(
      socketPath(o.stateDir, o.tun, o.controlSocket),
      provide,
    );
    cleanups.push(() => control.close());
    let metrics: MetricsServer | undefined;
    if (o.metrics !== undefined) {
      metrics = await MetricsServer.listen(o.metrics, provide);
      log.info({ metrics: metrics.address() }, 'metrics endpoint listening');
      const m = metrics;
      cleanups.push(() => m.close());
    }
    // Stopping the supervisor comes first in the cleanup: close the tunnel, then undo the host.
    cleanups.push(() => supervisor.stop());

    log.info(
      { server: info.endpoints, serverName: bundle.serverName, device: bundle.identity, mtu },
      'starting',
    );
    supervisor.start();
    deps.onReady?.({ controlSocket: control.path, metrics });
    const stopped = new Promise<void>((resolve) => {
      if (deps.stop.aborted) resolve();
      deps.stop.addEventListener('abort', () => resolve(), { once: true });
    });
    const outcome = await Promise.race([supervisor.done, stopped.then(() => undefined)]);
    log.info({ outcome: outcome?.state ?? 'signal' }, 'shutting down');
    if (outcome?.state === 'denied') {
      throw new ClientError(`denied by the server: ${outcome.reason}`);
    }
  } finally {
    await cleanup();
    log.flush?.();
  }
}
