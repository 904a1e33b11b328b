// The gRPC front: one grpc-js server per transport. Over the unix socket (mode 0600 in a 0700 data
// directory) the caller is trusted by file permissions and may do everything. Over TCP the caller
// is whoever its certificate (verified against our CA by TLS, then checked against the store for
// revocation and kind) says: an admin, a data plane, or a device (which may call nothing). A TCP
// caller without a certificate may only Join and ask for health. Every call goes through the same
// wrapper: role check, error translation, metrics.
import { existsSync, unlinkSync, chmodSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Server,
  ServerCredentials,
  experimental,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { UsersService } from '../../proto/gen/masque/v1/users.js';
import { DevicesService } from '../../proto/gen/masque/v1/devices.js';
import { ConfigBundlesService } from '../../proto/gen/masque/v1/bundles.js';
import { CertificatesService } from '../../proto/gen/masque/v1/certificates.js';
import { AddressPoolService } from '../../proto/gen/masque/v1/pool.js';
import { GroupsService, PoliciesService } from '../../proto/gen/masque/v1/policy.js';
import { SessionsService } from '../../proto/gen/masque/v1/sessions.js';
import { DataPlaneService } from '../../proto/gen/masque/v1/dataplane.js';
import {
  HealthCheckResponse_ServingStatus as Serving,
  HealthService,
} from '../../proto/gen/grpc/health/v1/health.js';
import type { ControlPlane } from './control.js';
import { ApiError, permissionDenied, toApiError, unauthenticated } from './errors.js';
import { readCertificate } from './pki.js';
import type { Caller, Role, Sink } from './rpc.js';
import { usersService, devicesService, bundlesService } from './users.js';
import { certificatesService } from './certificates.js';
import { poolService } from './pool.js';
import { groupsService, policiesService } from './groups.js';
import { sessionsService } from './sessions.js';
import { dataplaneService } from './dataplane.js';

export type Transport = 'local' | 'tls';

export interface RpcObserver {
  (method: string, code: string, seconds: number): void;
}

export interface ControlServerOptions {
  /** Unix socket path; the local, permission-trusted transport. */
  socketPath?: string;
  /** HOST:PORT for gRPC over TCP with mTLS. Port 0 picks a free port (see `tcpPort`). */
  tcpAddress?: string;
  observe?: RpcObserver;
}

interface Registered {
  name: string;
  definition: Record<string, MethodDef>;
  impl: Record<string, unknown>;
  roles: (method: string) => Role;
}

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
}

const ADMIN = (): Role => 'admin';

function services(cp: ControlPlane): Registered[] {
  const r = (
    name: string,
    definition: object,
    impl: object,
    roles: (m: string) => Role = ADMIN,
  ): Registered => ({
    name,
    definition: definition as Record<string, MethodDef>,
    impl: impl as Record<string, unknown>,
    roles,
  });
  return [
    r('masque.v1.Users', UsersService, usersService(cp)),
    r('masque.v1.Devices', DevicesService, devicesService(cp)),
    r('masque.v1.ConfigBundles', ConfigBundlesService, bundlesService(cp)),
    r('masque.v1.Certificates', CertificatesService, certificatesService(cp)),
    r('masque.v1.AddressPool', AddressPoolService, poolService(cp)),
    r('masque.v1.Groups', GroupsService, groupsService(cp)),
    r('masque.v1.Policies', PoliciesService, policiesService(cp)),
    r('masque.v1.Sessions', SessionsService, sessionsService(cp)),
    r('masque.v1.DataPlane', DataPlaneService, dataplaneService(cp), (m) =>
      m === 'join' ? 'anyone' : m === 'createJoinToken' ? 'admin' : 'dataplane',
    ),
  ];
}

/** Serving status per service name for grpc.health.v1 ('' is the whole server). */
class HealthState {
  readonly #status = new Map<string, Serving>();
  readonly #watchers = new Set<{ service: string; write: (s: Serving) => void }>();

  set(service: string, s: Serving): void {
    this.#status.set(service, s);
    for (const w of this.#watchers) if (w.service === service) w.write(s);
  }

  get(service: string): Serving | undefined {
    return this.#status.get(service);
  }

  watch(service: string, write: (s: Serving) => void): () => void {
    const w = { service, write };
    this.#watchers.add(w);
    write(this.#status.get(service) ?? Serving.SERVICE_UNKNOWN);
    return () => this.#watchers.delete(w);
  }
}

export class ControlServer {
  readonly #cp: ControlPlane;
  readonly #options: ControlServerOptions;
  readonly #servers: Server[] = [];
  readonly #streams = new Set<() => void>();
  readonly #health = new HealthState();
  #renewTimer: NodeJS.Timeout | undefined;
  tcpPort = 0;

  constructor(cp: ControlPlane, options: ControlServerOptions) {
    this.#cp = cp;
    this.#options = options;
  }

  async start(): Promise<void> {
    const { socketPath, tcpAddress } = this.#options;
    if (socketPath !== undefined) {
      const server = this.#build('local');
      await prepareSocket(socketPath);
      // The socket is created 0600 (umask) and chmod'ed again: only the data directory's owner
      // (and root) may connect, which is what "local admin" means.
      const umask = process.umask(0o177);
      try {
        await bind(server, `unix:${socketPath}`, ServerCredentials.createInsecure());
      } finally {
        process.umask(umask);
      }
      chmodSync(socketPath, 0o600);
      this.#servers.push(server);
    }
    if (tcpAddress !== undefined) {
      const server = this.#build('tls');
      this.tcpPort = await bind(server, tcpAddress, await this.#tlsCredentials(tcpAddress));
      this.#servers.push(server);
    }
    this.#health.set('', Serving.SERVING);
    for (const s of services(this.#cp)) this.#health.set(s.name, Serving.SERVING);
  }

  /** Stops taking calls, ends Watch streams, waits up to `graceMs` for calls in flight. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    this.#health.set('', Serving.NOT_SERVING);
    for (const end of this.#streams) end();
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((done) => {
            const force = setTimeout(() => {
              server.forceShutdown();
              done();
            }, graceMs);
            server.tryShutdown(() => {
              clearTimeout(force);
              done();
            });
          }),
      ),
    );
    const { socketPath } = this.#options;
    if (socketPath !== undefined && existsSync(socketPath)) unlinkSync(socketPath);
  }

  #build(transport: Transport): Server {
    const server = new Server({ 'grpc.keepalive_permit_without_calls': 1 });
    for (const svc of services(this.#cp)) {
      server.addService(
        svc.definition as unknown as ServiceDefinition,
        this.#handlers(svc, transport),
      );
    }
    server.addService(HealthService as unknown as ServiceDefinition, this.#healthHandlers());
    new ReflectionService(loadSync(protoFiles(), { includeDirs: [protoRoot()] })).addToServer(
      server,
    );
    return server;
  }

  async #caller(
    call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
    transport: Transport,
  ): Promise<Caller | 'device'> {
    if (transport === 'local') return { role: 'local' };
    const peer = call.getAuthContext().sslPeerCertificate;
    if (peer === undefined || peer.raw === undefined) return { role: 'anonymous' };
    const info = readCertificate(new Uint8Array(peer.raw));
    const record = await this.#cp.store.getCertificate(info.serial);
    if (record?.revokedAt != null) {
      throw unauthenticated(`client certificate ${info.serial} is revoked`);
    }
    if (record?.kind === 'admin' || (record === undefined && info.role === 'admin')) {
      return { role: 'admin', identity: info.commonName ?? '', serial: info.serial };
    }
    if (record?.kind === 'dataplane') {
      return { role: 'dataplane', name: info.commonName ?? '', serial: info.serial };
    }
    return 'device';
  }

  #authorize(caller: Caller | 'device', needed: Role, method: string): Caller {
    if (needed === 'anyone') return caller === 'device' ? { role: 'anonymous' } : caller;
    if (caller === 'device') {
      throw permissionDenied(`${method} is not for device certificates; use an admin certificate`);
    }
    if (caller.role === 'anonymous') {
      throw unauthenticated(
        `${method} needs a client certificate (admin or data plane); over TCP pass --cert/--key, or use the unix socket`,
      );
    }
    if (caller.role === 'local' || caller.role === needed) return caller;
    throw permissionDenied(
      `${method} needs the ${needed} role; this ${caller.role} certificate does not have it`,
    );
  }

  #handlers(svc: Registered, transport: Transport): UntypedServiceImplementation {
    const out: UntypedServiceImplementation = {};
    const observe = this.#options.observe;
    for (const [method, def] of Object.entries(svc.definition)) {
      const fn = svc.impl[method] as (
        req: unknown,
        caller: Caller,
        sink?: Sink<unknown>,
      ) => Promise<unknown>;
      const label = def.path.slice(1);
      const role = svc.roles(method);
      const fail = (err: unknown, started: bigint): { code: status; details: string } => {
        const e = toApiError(err);
        if (e.code === status.INTERNAL) this.#cp.log.error({ err, method: label }, 'RPC failed');
        observe?.(label, status[e.code], elapsed(started));
        return { code: e.code, details: e.message };
      };
      if (!def.responseStream) {
        out[method] = (
          call: ServerUnaryCall<unknown, unknown>,
          callback: sendUnaryData<unknown>,
        ) => {
          const started = process.hrtime.bigint();
          this.#caller(call, transport)
            .then((c) => fn(call.request, this.#authorize(c, role, label)))
            .then(
              (res) => {
                observe?.(label, 'OK', elapsed(started));
                callback(null, res);
              },
              (err: unknown) => callback(fail(err, started)),
            );
        };
      } else {
        out[method] = (call: ServerWritableStream<unknown, unknown>) => {
          const started = process.hrtime.bigint();
          let end!: () => void;
          const closed = new Promise<void>((resolve) => (end = resolve));
          const stop = () => end();
          this.#streams.add(stop);
          call.on('cancelled', stop);
          call.on('close', stop);
          call.on('error', stop);
          const sink: Sink<unknown> = { write: (m) => void call.write(m), closed };
          this.#caller(call, transport)
            .then((c) => fn(call.request, this.#authorize(c, role, label), sink))
            .then(
              () => {
                observe?.(label, 'OK', elapsed(started));
                if (!call.cancelled) call.end();
              },
              (err: unknown) => {
                const e = fail(err, started);
                call.destroy(Object.assign(new Error(e.details), e));
              },
            )
            .finally(() => this.#streams.delete(stop));
        };
      }
    }
    return out;
  }

  #healthHandlers(): UntypedServiceImplementation {
    const health = this.#health;
    return {
      check: (
        call: ServerUnaryCall<{ service: string }, unknown>,
        callback: sendUnaryData<unknown>,
      ) => {
        const s = health.get(call.request.service);
        if (s === undefined) {
          callback({ code: status.NOT_FOUND, details: `unknown service ${call.request.service}` });
        } else {
          callback(null, { status: s });
        }
      },
      watch: (call: ServerWritableStream<{ service: string }, unknown>) => {
        const unwatch = health.watch(call.request.service, (s) => void call.write({ status: s }));
        const stop = () => {
          unwatch();
          this.#streams.delete(stop);
          if (!call.cancelled) call.end();
        };
        this.#streams.add(stop);
        call.on('cancelled', stop);
      },
    };
  }

  async #tlsCredentials(address: string): Promise<ServerCredentials> {
    const cp = this.#cp;
    const host = address.startsWith('[')
      ? address.slice(1, address.indexOf(']'))
      : address.slice(0, address.lastIndexOf(':'));
    const ips = /^[0-9.]+$|:/.test(host) && host !== '0.0.0.0' && host !== '::' ? [host] : [];
    const identityListeners = new Set<(u: experimental.IdentityCertificateUpdate | null) => void>();
    const caListeners = new Set<(u: experimental.CaCertificateUpdate | null) => void>();
    let identity: experimental.IdentityCertificateUpdate | null = null;
    const ca: experimental.CaCertificateUpdate = { caCertificate: Buffer.from(cp.pki.caPem) };
    const renew = async (): Promise<void> => {
      const issued = await cp.pki.issueServer(
        cp.settings.serverName,
        ips,
        '',
        cp.settings.serverCertDays,
      );
      identity = {
        certificate: Buffer.from(issued.certPem),
        privateKey: Buffer.from(issued.keyPem ?? ''),
      };
      for (const l of identityListeners) l(identity);
      const due = issued.notBefore + ((issued.notAfter - issued.notBefore) * 2) / 3 - Date.now();
      this.#renewTimer = setTimeout(
        () =>
          void renew().catch((err: unknown) =>
            cp.log.error({ err }, 'gRPC certificate renewal failed'),
          ),
        Math.min(Math.max(due, 60_000), 2 ** 31 - 1),
      );
      this.#renewTimer.unref();
    };
    await renew();
    // grpc-js registers its watcher only after adding these listeners, so the first update must
    // come asynchronously or it is lost (and every handshake is dropped as "unloaded credentials").
    const provider: experimental.CertificateProvider = {
      addCaCertificateListener: (l) => {
        caListeners.add(l);
        setImmediate(() => caListeners.has(l) && l(ca));
      },
      removeCaCertificateListener: (l) => void caListeners.delete(l),
      addIdentityCertificateListener: (l) => {
        identityListeners.add(l);
        setImmediate(() => identityListeners.has(l) && l(identity));
      },
      removeIdentityCertificateListener: (l) => void identityListeners.delete(l),
    };
    // Client certificates are requested but not required at the TLS layer, so that a data plane
    // can Join with only a token and an unauthenticated call gets UNAUTHENTICATED rather than a
    // failed handshake. A certificate that is presented must still verify against our CA: the
    // server only sees it (getAuthContext) when TLS authorised it.
    return experimental.createCertificateProviderServerCredentials(provider, provider, false);
  }
}

function elapsed(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function bind(server: Server, address: string, creds: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** A socket file left by a crashed control plane is removed; a live one is an error. */
async function prepareSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (alive) {
    throw new ApiError(
      status.FAILED_PRECONDITION,
      `another control plane is already serving ${path}; stop it or use another --data-dir`,
    );
  }
  unlinkSync(path);
}

/** proto/ at the repository root, from src (controlplane/service) or dist (dist/controlplane/service). */
export function protoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'proto', 'masque', 'v1', 'users.proto'))) return join(dir, 'proto');
    dir = dirname(dir);
  }
  throw new Error('proto/ not found next to the control plane');
}

function protoFiles(): string[] {
  return [
    'masque/v1/users.proto',
    'masque/v1/devices.proto',
    'masque/v1/bundles.proto',
    'masque/v1/certificates.proto',
    'masque/v1/pool.proto',
    'masque/v1/policy.proto',
    'masque/v1/sessions.proto',
    'masque/v1/dataplane.proto',
    'grpc/health/v1/health.proto',
  ];
}
