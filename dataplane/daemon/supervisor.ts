// The data plane's main thread: gets its certificate and settings from the control plane, creates
// the TUN device and the rings, starts the TUN threads and the shard workers, answers the shards'
// authorisation requests, relays control-plane events, aggregates metrics and shuts everything
// down in order. It never touches a packet.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import type { Server } from 'node:http';
import { pino, type Logger } from 'pino';
import {
  DenialReason,
  type Allowed,
  type DataPlaneConfig,
  type WatchEvent,
} from '../../proto/gen/masque/v1/dataplane.js';
import { PolicyAction, type PolicyRule } from '../../proto/gen/masque/v1/common.js';
import type { SessionReport } from '../../proto/gen/masque/v1/dataplane.js';
import { createRouteTable } from '../ring/route-table.js';
import { RingMonitor } from '../ring/spsc.js';
import { TunDevice, TunError } from '../tun/device.js';
import { TunThreads } from '../tun/threads.js';
import { ConfigError, splitHostPort, type DataplaneConfig } from './config.js';
import { ControlError, ControlLink, type AuthorizeOutcome } from './control.js';
import { loadOrJoin, type ControlTls } from './join.js';
import { DataplaneMetrics } from './metrics.js';
import { applyNat, NatError, type AppliedNat } from './nat.js';
import type { PolicyRuleInput } from './policy.js';
import { createShardRings, inboundRingsOf } from './rings.js';
import { planReload } from './reload.js';
import { CertificateRenewal } from './renewal.js';
import type { ShardReport } from './report.js';
import type { AuthorizeReply, FromShard, ShardInit, ToShard } from './shard-protocol.js';

const VERSION = '0.1.0';
const REPORT_INTERVAL_MS = 1000;
const CONTROL_REPORT_INTERVAL_MS = 5000;

class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

function toRuleInput(r: PolicyRule): PolicyRuleInput {
  return {
    action: r.action === PolicyAction.POLICY_ACTION_ALLOW ? 'allow' : 'deny',
    prefix: r.prefix,
    protocol: r.protocol,
    portFrom: r.portFrom,
    portTo: r.portTo,
    priority: r.priority,
  };
}

function denialStatus(reason: DenialReason): 401 | 403 {
  return reason === DenialReason.DENIAL_REASON_BAD_CERTIFICATE ? 401 : 403;
}

interface ShardHandle {
  worker: Worker;
  id: number;
  ready: boolean;
  sessions: number;
}

export interface RunOptions {
  /** The config file, for log lines. */
  configFile?: string;
  /** Re-reads the configuration (file under the same flags) on SIGHUP; throws ConfigError. */
  reload?: () => DataplaneConfig;
}

export async function runDataplane(
  config: DataplaneConfig,
  options: RunOptions = {},
): Promise<number> {
  const log: Logger = pino(
    { level: config.log_level, base: { component: 'dataplane' } },
    pino.destination({ dest: 2, sync: true }),
  );
  const cleanups: Array<() => Promise<void> | void> = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log.warn({ err }, 'cleanup step failed');
      }
    }
    cleanups.length = 0;
  };

  try {
    return await serve(config, log, cleanups, cleanup, options);
  } catch (err) {
    await cleanup();
    if (
      err instanceof StartupError ||
      err instanceof ControlError ||
      err instanceof TunError ||
      err instanceof NatError
    ) {
      log.fatal(err.message);
      process.stderr.write(`dataplane: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function serve(
  config: DataplaneConfig,
  log: Logger,
  cleanups: Array<() => Promise<void> | void>,
  cleanup: () => Promise<void>,
  options: RunOptions,
): Promise<number> {
  const { host, port } = splitHostPort(config.listen);
  const metrics = new DataplaneMetrics();
  /** The running configuration: `config` plus what SIGHUP reloaded since. */
  let live = config;
  // Installed first: SIGHUP's default action would end the process while it starts up.
  const hup: { reload?: () => Promise<void>; running: Promise<void> } = {
    running: Promise.resolve(),
  };
  const onHup = () => {
    const reload = hup.reload;
    if (reload === undefined) return log.warn('SIGHUP during start-up ignored; send it again');
    // One reload at a time: a second SIGHUP waits for the first to finish rebinding.
    hup.running = hup.running.then(reload, reload);
  };
  process.on('SIGHUP', onHup);
  cleanups.push(() => void process.off('SIGHUP', onHup));

  // 1. Control plane: who we are, our certificate, the pools.
  const name = hostname();
  let controlTls: ControlTls | undefined;
  if (!config.control.startsWith('unix:')) {
    if (config.control_ca === undefined) {
      throw new StartupError(
        `--control ${config.control} is gRPC over TCP: pass --control-ca FILE (the control plane's CA, \`vpnctl cert ca\`)`,
      );
    }
    const joined = await loadOrJoin({
      address: config.control,
      caPem: readCaFile(config.control_ca),
      serverName: config.control_server_name,
      token: config.join_token,
      name,
      stateDir: config.state_dir,
    });
    controlTls = joined.tls;
    log.info(
      { stateDir: config.state_dir, notAfter: joined.notAfter.toISOString() },
      joined.joined
        ? 'joined the control plane; identity stored for later starts'
        : 'using the stored control plane identity',
    );
  }
  const control = new ControlLink(config.control, controlTls);
  cleanups.push(() => control.close());
  log.info({ control: config.control }, 'fetching configuration from the control plane');
  const dp: DataPlaneConfig = await control.fetchConfig(name);
  if (dp.pools.length === 0)
    throw new StartupError('the control plane has no address pool configured');
  const dataplaneId = await control.register(name, config.listen, config.workers, VERSION);
  const tunAddresses = dp.pools.map((p) => `${p.serverAddress}/${p.cidr.split('/')[1]}`);

  // 2. TUN device, rings, TUN threads.
  const tun = await TunDevice.open({
    name: config.tun_name,
    mtu: config.mtu,
    addresses: tunAddresses,
  });
  cleanups.push(() => tun.close());
  log.info({ tun: tun.name, addresses: tunAddresses, mtu: config.mtu }, 'TUN device up');
  let nat: AppliedNat | undefined;
  if (config.nat) {
    nat = await applyNat({ pools: dp.pools.map((p) => p.cidr), tun: tun.name });
    cleanups.push(() => nat?.undo());
    log.info({ pools: dp.pools.map((p) => p.cidr) }, 'forwarding and masquerading enabled');
  }
  const rings = createShardRings({ shards: config.workers });
  const plane = rings.plane;
  const routes = createRouteTable();
  let fatal: ((why: string) => void) | undefined;
  const threads = await TunThreads.start({
    fd: tun.fd,
    plane,
    routes,
    onUnexpectedExit: (thread, error) =>
      fatal?.(`${thread} thread died: ${error?.message ?? 'exit'}`),
  });
  cleanups.push(() => threads.stop());

  // 3. Shards.
  const shardFile = fileURLToPath(new URL('./shard.js', import.meta.url));
  const shards: ShardHandle[] = [];
  const sessionsByDevice = new Map<number, string>();
  const deviceBySession = new Map<string, number>();
  const sessionReports = new Map<string, SessionReport>();
  /** What a live session's final report cannot know any more (RTT and loss need its connection). */
  const lastPath = new Map<string, { rttMs: number; loss: number; fecRecovered: number }>();
  let stopping = false;

  const broadcast = (msg: ToShard) => {
    for (const s of shards) s.worker.postMessage(msg);
  };

  const toReply = (outcome: AuthorizeOutcome): AuthorizeReply => {
    if (outcome.kind === 'unavailable') return { kind: 'unavailable', message: outcome.message };
    if (outcome.kind === 'denied') {
      return {
        kind: 'denied',
        status: denialStatus(outcome.reason as DenialReason),
        message: outcome.message,
      };
    }
    const a: Allowed = outcome.allowed;
    return {
      kind: 'allowed',
      sessionId: a.sessionId,
      client: `${a.user}/${a.device}`,
      deviceId: a.deviceId,
      certSerial: a.certSerial,
      addresses: [a.ipv4, a.ipv6].filter((x) => x !== ''),
      routes: a.routes,
      rules: a.rules.map(toRuleInput),
      defaultAllow: a.defaultAction === PolicyAction.POLICY_ACTION_ALLOW,
    };
  };

  const onShardMessage = (shard: ShardHandle, msg: FromShard) => {
    switch (msg.type) {
      case 'ready':
        shard.ready = true;
        return;
      case 'authorize':
        void control.authorize(msg.certDer, msg.remote).then((outcome) => {
          const reply = toReply(outcome);
          if (reply.kind === 'allowed') {
            // A device has one live tunnel: the newest replaces any older one, wherever it is.
            const old = sessionsByDevice.get(reply.deviceId);
            if (old !== undefined && old !== reply.sessionId) {
              broadcast({
                type: 'kick',
                sessionIds: [old],
                reason: 'replaced by a new connection',
              });
            }
            sessionsByDevice.set(reply.deviceId, reply.sessionId);
            deviceBySession.set(reply.sessionId, reply.deviceId);
          } else {
            log.info(
              { remote: msg.remote, outcome: reply.kind, why: reply.message },
              'tunnel not authorized',
            );
          }
          shard.worker.postMessage({ type: 'authorized', id: msg.id, reply } satisfies ToShard);
        });
        return;
      case 'report':
        onReport(shard, msg);
        return;
      case 'credentials':
        credentialReplies.get(`${msg.id}/${msg.shard}`)?.(msg);
        return;
      case 'stopped':
        return;
    }
  };

  type CredentialReply = Extract<FromShard, { type: 'credentials' }>;
  const credentialReplies = new Map<string, (reply: CredentialReply) => void>();
  let credentialRequest = 0;
  /** Hands a renewed certificate to every shard; resolves with each shard's answer. */
  const swapCredentials = (fresh: DataPlaneConfig): Promise<CredentialReply[]> => {
    const id = ++credentialRequest;
    return Promise.all(
      shards.map(
        (s) =>
          new Promise<CredentialReply>((resolve) => {
            const key = `${id}/${s.id}`;
            const timer = setTimeout(() => {
              credentialReplies.delete(key);
              resolve({
                type: 'credentials',
                id,
                shard: s.id,
                outcome: 'failed',
                error: 'no answer',
              });
            }, 5_000);
            credentialReplies.set(key, (reply) => {
              clearTimeout(timer);
              credentialReplies.delete(key);
              resolve(reply);
            });
            s.worker.postMessage({
              type: 'credentials',
              id,
              certPem: fresh.serverCertPem,
              keyPem: fresh.serverKeyPem,
              caPem: fresh.caPem,
            } satisfies ToShard);
          }),
      ),
    );
  };

  const onReport = (shard: ShardHandle, r: ShardReport) => {
    metrics.apply(r);
    shard.sessions = r.sessions.length;
    for (const s of r.sessions) {
      sessionReports.set(s.sessionId, {
        sessionId: s.sessionId,
        ended: false,
        stats: {
          bytesIn: s.bytesIn,
          bytesOut: s.bytesOut,
          packetsIn: s.packetsIn,
          packetsOut: s.packetsOut,
          rttMs: s.rttSeconds * 1000,
          loss: s.lossRatio,
          fecRepairSent: 0,
          fecRecovered: s.fecRecovered,
          droppedSpoofed: s.spoofedDropped,
          droppedPolicy: s.policyDropped,
        },
      });
      lastPath.set(s.sessionId, {
        rttMs: s.rttSeconds * 1000,
        loss: s.lossRatio,
        fecRecovered: s.fecRecovered,
      });
    }
    // Without this the control plane would list every ended tunnel as live until the next
    // data plane registration.
    for (const { final: f } of r.ended) {
      if (f === undefined) continue;
      const device = deviceBySession.get(f.sessionId);
      deviceBySession.delete(f.sessionId);
      if (device !== undefined && sessionsByDevice.get(device) === f.sessionId) {
        sessionsByDevice.delete(device);
      }
      const path = lastPath.get(f.sessionId) ?? { rttMs: 0, loss: 0, fecRecovered: 0 };
      lastPath.delete(f.sessionId);
      sessionReports.set(f.sessionId, {
        sessionId: f.sessionId,
        ended: true,
        stats: {
          bytesIn: f.bytesIn,
          bytesOut: f.bytesOut,
          packetsIn: f.packetsIn,
          packetsOut: f.packetsOut,
          ...path,
          fecRepairSent: 0,
          droppedSpoofed: f.spoofedDropped,
          droppedPolicy: f.policyDropped,
        },
      });
    }
  };

  const exited = new Promise<string>((resolve) => {
    fatal = resolve;
  });

  cleanups.push(async () => {
    await Promise.all(shards.map((s) => s.worker.terminate()));
  });
  // Shards start one after the other: the kernel numbers SO_REUSEPORT sockets in bind order, and
  // the steering program maps the shard id in a connection ID to that number, so shard i must be
  // the i-th socket bound.
  for (let i = 0; i < config.workers; i++) {
    const init: ShardInit = {
      role: 'shard',
      shard: i,
      shards: config.workers,
      host,
      port,
      certPem: dp.serverCertPem,
      keyPem: dp.serverKeyPem,
      caPem: dp.caPem,
      serverName: dp.serverName,
      idleTimeoutMs: config.quic.idle_timeout_ms,
      keepAliveMs: config.quic.keepalive_ms,
      cc: config.quic.cc,
      mtu: config.mtu,
      fec: config.fec,
      paths: config.paths,
      inbound: inboundRingsOf(rings, i),
      inboundBell: rings.inboundBells[i],
      toWriter: plane.toWriter[i],
      hairpinOut: rings.hairpin[i],
      routes,
      reportIntervalMs: REPORT_INTERVAL_MS,
      logLevel: config.log_level,
    };
    const worker = new Worker(shardFile, { workerData: init });
    const handle: ShardHandle = { worker, id: i, ready: false, sessions: 0 };
    worker.on('message', (m: FromShard) => onShardMessage(handle, m));
    worker.on('error', (err) => fatal?.(`shard ${i} failed: ${err.message}`));
    worker.on('exit', (code) => {
      if (!stopping) fatal?.(`shard ${i} exited (code ${code})`);
    });
    shards.push(handle);
    const readyBy = Date.now() + 15_000;
    while (!handle.ready) {
      if (Date.now() > readyBy) throw new StartupError(`shard ${i} did not start within 15 s`);
      const failed = await Promise.race([
        exited,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10)),
      ]);
      if (failed !== undefined) throw new StartupError(failed);
    }
  }

  // 4. Server certificate renewal, control-plane events, stats, metrics.
  const certTimes = (c: DataPlaneConfig) => ({
    serial: certificateSerial(c.serverCertPem),
    renewAt: c.renewAtMs > 0 ? new Date(c.renewAtMs).toISOString() : 'never',
    notAfter: c.certNotAfterMs > 0 ? new Date(c.certNotAfterMs).toISOString() : 'unknown',
  });
  if (dp.certNotAfterMs > 0) metrics.serverCertNotAfter.set(dp.certNotAfterMs / 1000);
  log.info(certTimes(dp), 'server certificate in use');
  let inUse = dp;
  const renewal = new CertificateRenewal<DataPlaneConfig>({
    log,
    fetch: async () => {
      try {
        return await control.fetchConfig(name, 5_000);
      } catch (err) {
        metrics.certRenewals.inc({ result: 'failed' });
        throw err;
      }
    },
    apply: async (fresh) => {
      if (fresh.serverName !== inUse.serverName || !isDeepStrictEqual(fresh.pools, inUse.pools)) {
        log.warn(
          { serverName: fresh.serverName, pools: fresh.pools.map((p) => p.cidr) },
          'the control plane changed the server name or the pools; they apply after a restart',
        );
      }
      const replies = await swapCredentials(fresh);
      const failed = replies.filter((r) => r.outcome === 'failed');
      if (failed.length > 0) {
        metrics.certRenewals.inc({ result: 'failed' });
        throw new Error(
          `shard(s) refused the renewed certificate: ${failed.map((r) => `${r.shard}: ${r.error ?? '?'}`).join('; ')}`,
        );
      }
      inUse = fresh;
      metrics.certRenewals.inc({ result: 'applied' });
      if (fresh.certNotAfterMs > 0) metrics.serverCertNotAfter.set(fresh.certNotAfterMs / 1000);
      log.info(
        certTimes(fresh),
        'server certificate renewed: new handshakes use it, live tunnels untouched',
      );
    },
  });
  renewal.start(dp);
  cleanups.push(() => renewal.stop());

  control.on('watch', (e: WatchEvent) => {
    if (e.kick) broadcast({ type: 'kick', sessionIds: e.kick.sessionIds, reason: e.kick.reason });
    if (e.revoked) {
      broadcast({
        type: 'revoke',
        serials: e.revoked.serials,
        deviceId: e.revoked.deviceId,
        sessionIds: e.revoked.sessionIds,
      });
    }
    if (e.policy) {
      broadcast({
        type: 'policy',
        sessionId: e.policy.sessionId,
        rules: e.policy.rules.map(toRuleInput),
        defaultAllow: e.policy.defaultAction === PolicyAction.POLICY_ACTION_ALLOW,
        routes: e.policy.routes,
      });
    }
  });
  control.on('down', (why) =>
    log.warn({ why }, 'control plane link lost; new tunnels are refused until it is back'),
  );
  control.on('up', () => log.info('control plane link up'));
  control.startWatch();

  const hairpinRings = rings.hairpin.flatMap((row, from) =>
    row.flatMap((h, to) => (h === undefined ? [] : [{ h, name: `shard${from}_to_shard${to}` }])),
  );
  const monitors = [...plane.toShard, ...plane.toWriter, ...hairpinRings.map((r) => r.h)].map(
    (h) => new RingMonitor(h),
  );
  const ringNames = [
    ...plane.toShard.map((_, i) => `tun_to_shard${i}`),
    ...plane.toWriter.map((_, i) => `shard${i}_to_tun`),
    ...hairpinRings.map((r) => r.name),
  ];
  let lastTun: Record<string, number> = {};
  const statsTimer = setInterval(() => {
    monitors.forEach((m, i) => metrics.ringDepth.set({ ring: ringNames[i] }, m.depth()));
    const tunNow = threads.counters() as Record<string, number>;
    const delta = (k: string) => Math.max(0, (tunNow[k] ?? 0) - (lastTun[k] ?? 0));
    metrics.tunPackets.inc({ op: 'read' }, delta('readPackets'));
    metrics.tunPackets.inc({ op: 'write' }, delta('writePackets'));
    metrics.tunErrors.inc({ op: 'read' }, delta('readErrors'));
    metrics.tunErrors.inc({ op: 'write' }, delta('writeErrors'));
    lastTun = tunNow;
  }, REPORT_INTERVAL_MS);
  cleanups.push(() => clearInterval(statsTimer));

  const reportTimer = setInterval(() => {
    const batch = [...sessionReports.values()];
    sessionReports.clear();
    if (batch.length === 0) return;
    void control.report(batch).then((unknown) => {
      if (unknown.length > 0)
        broadcast({ type: 'kick', sessionIds: unknown, reason: 'unknown to the control plane' });
    });
  }, CONTROL_REPORT_INTERVAL_MS);
  cleanups.push(() => clearInterval(reportTimer));

  let metricsServer: Server | undefined;
  const closeMetrics = (server: Server | undefined) =>
    new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
  if (config.metrics !== undefined) {
    const m = splitHostPort(config.metrics);
    metricsServer = await metrics.serve(m.host, m.port);
  }
  cleanups.push(() => closeMetrics(metricsServer));

  hup.reload = async () => {
    const configFile = options.configFile;
    if (options.reload === undefined) {
      log.info('SIGHUP: started without --config, nothing to reload');
      return;
    }
    let wanted: DataplaneConfig;
    try {
      wanted = options.reload();
    } catch (err) {
      // Never fatal: a running data plane outlives a bad edit of its file.
      const problem = err instanceof ConfigError ? err.message : String(err);
      log.error(
        { configFile, problem },
        'SIGHUP: config file refused; keeping the running configuration',
      );
      return;
    }
    const plan = planReload(live, wanted);
    if (plan.needsRestart.length > 0) {
      log.warn(
        { configFile, keys: plan.needsRestart },
        'SIGHUP: these keys changed but need a restart; their running values stay',
      );
    }
    if (plan.changed.includes('metrics')) {
      // The new listener first: if it cannot bind, the old one keeps serving.
      const want = plan.next.metrics;
      try {
        let server: Server | undefined;
        if (want !== undefined) {
          const m = splitHostPort(want);
          server = await metrics.serve(m.host, m.port);
        }
        const old = metricsServer;
        metricsServer = server;
        await closeMetrics(old);
      } catch (err) {
        log.error(
          { metrics: want, err: (err as Error).message },
          'SIGHUP: cannot serve metrics there; keeping the previous listener',
        );
        plan.next.metrics = live.metrics;
        plan.changed.splice(plan.changed.indexOf('metrics'), 1);
      }
    }
    live = plan.next;
    // Said before the new level applies, so a switch to "warn" is still confirmed.
    log.info(
      { configFile, changed: plan.changed, logLevel: live.log_level, metrics: live.metrics },
      'SIGHUP: configuration reloaded',
    );
    log.level = live.log_level;
    broadcast({ type: 'settings', logLevel: live.log_level, fec: live.fec, paths: live.paths });
  };

  log.info(
    {
      listen: config.listen,
      workers: config.workers,
      dataplaneId,
      serverName: dp.serverName,
      metrics: config.metrics,
    },
    'data plane ready',
  );

  // 5. Run until a signal or a fatal error.
  const signalled = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const why = await Promise.race([signalled, exited.then((w) => `fatal: ${w}`)]);
  stopping = true;
  const failed = why.startsWith('fatal');
  if (failed) log.error(why);
  else
    log.info(
      { signal: why, drainSeconds: live.drain_seconds },
      'shutting down: GOAWAY to every client',
    );

  // 6. Drain: GOAWAY, then wait for clients to leave or the drain time to pass.
  if (!failed && live.drain_seconds > 0) {
    const until = Date.now() + live.drain_seconds * 1000;
    // The session counts come from the last report, which may predate tunnels opened since:
    // trusting them would stop (closing every connection without GOAWAY) at once. Shards report
    // right after the drain starts; wait for that report from each.
    const fresh = shards.map((s) => nextMessage(s, 'report', until));
    broadcast({ type: 'drain' });
    await Promise.all(fresh);
    while (Date.now() < until && shards.some((s) => s.sessions > 0)) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  broadcast({ type: 'stop' });
  await Promise.race([
    Promise.all(
      // A shard reports once more before 'stopped': wait for that message, not the next one.
      shards.map((s) => nextMessage(s, 'stopped', Date.now() + 3000)),
    ),
    new Promise((r) => setTimeout(r, 3000)),
  ]);
  await cleanup();
  log.info('data plane stopped; TUN removed');
  return failed ? 1 : 0;
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new StartupError(
      `cannot read the control plane CA ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
}

/** The serial number (hex) of a PEM certificate, for logs; '?' if it does not parse. */
function certificateSerial(pem: string): string {
  try {
    return new X509Certificate(pem).serialNumber.toLowerCase();
  } catch {
    return '?';
  }
}

/** Resolves when the shard posts a message of `type`, exits, or `deadline` (epoch ms) passes. */
function nextMessage(shard: ShardHandle, type: FromShard['type'], deadline: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      shard.worker.off('message', onMessage);
      shard.worker.off('exit', done);
      resolve();
    };
    const onMessage = (m: FromShard) => {
      if (m.type === type) done();
    };
    const timer = setTimeout(done, Math.max(0, deadline - Date.now()));
    shard.worker.on('message', onMessage);
    shard.worker.once('exit', done);
  });
}
