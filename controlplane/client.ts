// A typed, promise-based client for every control plane service, over the unix socket or TCP with
// mTLS. Used by vpnctl, the tests and the benchmark. Requests are partial: missing fields take
// their protobuf defaults.
import { resolve } from 'node:path';
import {
  Metadata,
  credentials,
  makeGenericClientConstructor,
  type ChannelCredentials,
  type ChannelOptions,
  type Client,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { UsersService } from '../proto/gen/masque/v1/users.js';
import { DevicesService } from '../proto/gen/masque/v1/devices.js';
import { ConfigBundlesService } from '../proto/gen/masque/v1/bundles.js';
import { CertificatesService } from '../proto/gen/masque/v1/certificates.js';
import { AddressPoolService } from '../proto/gen/masque/v1/pool.js';
import { GroupsService, PoliciesService } from '../proto/gen/masque/v1/policy.js';
import { SessionsService } from '../proto/gen/masque/v1/sessions.js';
import { DataPlaneService } from '../proto/gen/masque/v1/dataplane.js';

interface UnaryDef<Req, Res> {
  path: string;
  responseStream: false;
  requestSerialize: (v: Req) => Buffer;
  requestDeserialize: (b: Buffer) => Req;
  responseDeserialize: (b: Buffer) => Res;
}

export type ServiceClient<D> = {
  [K in keyof D as D[K] extends { responseStream: false } ? K : never]: D[K] extends UnaryDef<
    infer Req,
    infer Res
  >
    ? (req?: Partial<Req>) => Promise<Res>
    : never;
};

export interface TlsOptions {
  caPem: string;
  certPem?: string;
  keyPem?: string;
  /** Name to check the server certificate against (default: the host of the address). */
  serverName?: string;
}

export interface ControlTarget {
  /** `unix:PATH` (relative to the working directory) or `HOST:PORT`. */
  address: string;
  tls?: TlsOptions;
  deadlineMs?: number;
}

/** `unix:PATH` made absolute (grpc-js wants `unix:/abs`); HOST:PORT unchanged. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix:')) return `unix:${resolve(address.slice('unix:'.length))}`;
  return address;
}

export class ControlClient {
  readonly users: ServiceClient<typeof UsersService>;
  readonly devices: ServiceClient<typeof DevicesService>;
  readonly bundles: ServiceClient<typeof ConfigBundlesService>;
  readonly certificates: ServiceClient<typeof CertificatesService>;
  readonly pool: ServiceClient<typeof AddressPoolService>;
  readonly groups: ServiceClient<typeof GroupsService>;
  readonly policies: ServiceClient<typeof PoliciesService>;
  readonly sessions: ServiceClient<typeof SessionsService>;
  readonly dataplane: ServiceClient<typeof DataPlaneService>;
  readonly #clients: Client[] = [];

  constructor(readonly target: ControlTarget) {
    const address = grpcTarget(target.address);
    let creds: ChannelCredentials;
    const options: ChannelOptions = {};
    if (target.tls !== undefined) {
      const t = target.tls;
      creds = credentials.createSsl(
        Buffer.from(t.caPem),
        t.keyPem !== undefined ? Buffer.from(t.keyPem) : null,
        t.certPem !== undefined ? Buffer.from(t.certPem) : null,
      );
      if (t.serverName !== undefined) options['grpc.ssl_target_name_override'] = t.serverName;
    } else {
      creds = credentials.createInsecure();
    }
    const deadlineMs = target.deadlineMs ?? 30_000;
    const make = <D extends object>(name: string, def: D): ServiceClient<D> => {
      const Ctor = makeGenericClientConstructor(def as unknown as ServiceDefinition, name);
      const client = new Ctor(address, creds, options);
      this.#clients.push(client);
      const out: Record<string, (req?: object) => Promise<unknown>> = {};
      for (const [method, m] of Object.entries(def as Record<string, UnaryDef<object, unknown>>)) {
        if (m.responseStream) continue;
        const defaults = m.requestDeserialize(Buffer.alloc(0));
        out[method] = (req = {}) =>
          new Promise((ok, fail) => {
            const fn = (client as unknown as Record<string, CallFn>)[method];
            fn.call(
              client,
              { ...defaults, ...req },
              new Metadata(),
              { deadline: new Date(Date.now() + deadlineMs) },
              (err: ServiceError | null, res: unknown) => (err ? fail(err) : ok(res)),
            );
          });
      }
      return out as unknown as ServiceClient<D>;
    };
    this.users = make('masque.v1.Users', UsersService);
    this.devices = make('masque.v1.Devices', DevicesService);
    this.bundles = make('masque.v1.ConfigBundles', ConfigBundlesService);
    this.certificates = make('masque.v1.Certificates', CertificatesService);
    this.pool = make('masque.v1.AddressPool', AddressPoolService);
    this.groups = make('masque.v1.Groups', GroupsService);
    this.policies = make('masque.v1.Policies', PoliciesService);
    this.sessions = make('masque.v1.Sessions', SessionsService);
    this.dataplane = make('masque.v1.DataPlane', DataPlaneService);
  }

  close(): void {
    for (const c of this.#clients) c.close();
  }
}

type CallFn = (
  req: object,
  md: Metadata,
  opts: { deadline: Date },
  cb: (err: ServiceError | null, res: unknown) => void,
) => void;

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number';
}
