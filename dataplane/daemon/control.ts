// The data plane's link to the control plane: configuration at start, one Authorize per tunnel,
// a Watch stream for revocations, kicks and policy changes, and periodic stats. The link heals
// itself: while it is down, live tunnels keep working and new ones are refused as "unavailable".
import { EventEmitter } from 'node:events';
import { resolve } from 'node:path';
import {
  credentials,
  Metadata,
  status,
  type ChannelOptions,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  DataPlaneClient,
  type AuthorizeResponse,
  type DataPlaneConfig,
  type SessionReport,
  type WatchEvent,
} from '../../proto/gen/masque/v1/dataplane.js';

export type AuthorizeOutcome =
  | { kind: 'allowed'; allowed: NonNullable<AuthorizeResponse['allowed']> }
  | { kind: 'denied'; reason: number; message: string }
  | { kind: 'unavailable'; message: string };

export class ControlError extends Error {
  constructor(
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

/** `unix:PATH` (relative paths resolved against the working directory) or `HOST:PORT`. */
export function grpcTarget(address: string): string {
  if (address.startsWith('unix:')) return `unix:${resolve(address.slice('unix:'.length))}`;
  return address;
}

/** Channel options: keepalives, and the name to check in the control plane's certificate. */
export function grpcChannelOptions(serverName?: string): ChannelOptions {
  const options: ChannelOptions = {
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  };
  if (serverName !== undefined) options['grpc.ssl_target_name_override'] = serverName;
  return options;
}

/** mTLS for a control plane over TCP (see join.ts). */
export interface ControlLinkTls {
  caPem: string;
  certPem: string;
  keyPem: string;
  serverName?: string;
}

export interface ControlLinkEvents {
  watch: [WatchEvent];
  up: [];
  down: [string];
}

export class ControlLink extends EventEmitter<ControlLinkEvents> {
  private readonly client: DataPlaneClient;
  private watchStream: ClientReadableStream<WatchEvent> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private backoffMs = 250;
  dataplaneId = '';
  /** True while the Watch stream is open: the control plane is reachable. */
  up = false;

  /** `unix:PATH` (trusted by file permissions) or HOST:PORT with `tls` (joined identity). */
  constructor(
    readonly address: string,
    tls?: ControlLinkTls,
  ) {
    super();
    if (address.startsWith('unix:')) {
      this.client = new DataPlaneClient(
        grpcTarget(address),
        credentials.createInsecure(),
        grpcChannelOptions(),
      );
      return;
    }
    if (tls === undefined) {
      throw new ControlError(
        `control plane over TCP (${address}) needs --control-ca and a joined identity (--join-token)`,
      );
    }
    this.client = new DataPlaneClient(
      address,
      credentials.createSsl(
        Buffer.from(tls.caPem),
        Buffer.from(tls.keyPem),
        Buffer.from(tls.certPem),
      ),
      grpcChannelOptions(tls.serverName),
    );
  }

  private deadline(ms: number): Date {
    return new Date(Date.now() + ms);
  }

  private explain(err: ServiceError): string {
    if (err.code === status.UNAVAILABLE) {
      return `control plane not reachable at ${this.address} (is \`controlplane\` running?)`;
    }
    return err.details || err.message;
  }

  /** Fetches certificate, CA, pools and settings; retries until `timeoutMs` while unreachable. */
  async fetchConfig(name: string, timeoutMs = 30_000): Promise<DataPlaneConfig> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await new Promise<DataPlaneConfig>((ok, fail) =>
          this.client.getDataPlaneConfig(
            { name, csrPem: '' },
            new Metadata(),
            { deadline: this.deadline(5_000) },
            (err, res) => (err ? fail(err) : ok(res)),
          ),
        );
      } catch (e) {
        const err = e as ServiceError;
        if (err.code !== status.UNAVAILABLE || Date.now() > end) {
          throw new ControlError(this.explain(err), err.code);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  async register(name: string, listen: string, workers: number, version: string): Promise<string> {
    const res = await new Promise<{ dataplaneId: string }>((ok, fail) =>
      this.client.register(
        { name, listen, workers, version },
        new Metadata(),
        { deadline: this.deadline(5_000) },
        (err, r) => (err ? fail(new ControlError(this.explain(err), err.code)) : ok(r)),
      ),
    );
    this.dataplaneId = res.dataplaneId;
    return res.dataplaneId;
  }

  /** One tunnel's decision. Never throws: an unreachable control plane is an outcome. */
  authorize(certDer: Uint8Array, remoteAddress: string): Promise<AuthorizeOutcome> {
    return new Promise((done) => {
      this.client.authorize(
        {
          dataplaneId: this.dataplaneId,
          clientCertDer: Buffer.from(certDer.buffer, certDer.byteOffset, certDer.byteLength),
          remoteAddress,
        },
        new Metadata(),
        { deadline: this.deadline(3_000) },
        (err, res) => {
          if (err) {
            done({ kind: 'unavailable', message: this.explain(err) });
          } else if (res.allowed !== undefined) {
            done({ kind: 'allowed', allowed: res.allowed });
          } else {
            done({
              kind: 'denied',
              reason: res.denied?.reason ?? 0,
              message: res.denied?.message ?? 'denied',
            });
          }
        },
      );
    });
  }

  /** Opens the Watch stream and keeps it open, reconnecting with capped backoff. */
  startWatch(): void {
    if (this.closed) return;
    const stream = this.client.watch({ dataplaneId: this.dataplaneId });
    this.watchStream = stream;
    stream.on('data', (event: WatchEvent) => {
      if (!this.up) {
        this.up = true;
        this.backoffMs = 250;
        this.emit('up');
      }
      if (!event.hello) this.emit('watch', event);
    });
    const lost = (why: string) => {
      if (this.watchStream !== stream) return;
      this.watchStream = undefined;
      if (this.up) {
        this.up = false;
        this.emit('down', why);
      }
      if (this.closed) return;
      this.retryTimer = setTimeout(() => this.startWatch(), this.backoffMs);
      this.backoffMs = Math.min(this.backoffMs * 2, 5_000);
    };
    stream.on('error', (err: ServiceError) => lost(this.explain(err)));
    stream.on('end', () => lost('watch stream ended'));
  }

  /** Sends session figures; returns session ids the control plane wants closed. */
  report(sessions: SessionReport[]): Promise<string[]> {
    return new Promise((done) => {
      this.client.reportStats(
        { dataplaneId: this.dataplaneId, sessions },
        new Metadata(),
        { deadline: this.deadline(5_000) },
        (err, res) => done(err ? [] : res.unknownSessionIds),
      );
    });
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.watchStream?.cancel();
    this.client.close();
  }
}
