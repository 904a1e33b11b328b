// The QUIC transport's TypeScript face: typed options, handlers and connections over the native
// addon (build/Release/quic.node). One callback per event kind on the endpoint (no EventEmitter
// on the data path); datagrams arrive in batches.
import { loadAddon, QuicError } from './addon.js';

export { QuicError };

export type Role = 'server' | 'client';
export type CongestionControl = 'bbr' | 'cubic' | 'reno';

export interface EndpointOptions {
  role: Role;
  /** Numeric bind address; '::' (default) is dual-stack. */
  host?: string;
  /** 0 (default) picks an ephemeral port; see address(). */
  port?: number;
  /** Our certificate (chain) and private key, PEM. */
  certPem: string;
  keyPem: string;
  /** The CA that must have issued the peer's certificate, PEM. */
  caPem: string;
  /** Client: the name the server certificate must carry (and SNI for DNS names). */
  serverName?: string;
  /** Default 'h3'. */
  alpn?: string;
  /** Default 30000. */
  idleTimeoutMs?: number;
  /** PING interval; 0 (default) = off. */
  keepAliveMs?: number;
  /** Default 10000. */
  handshakeTimeoutMs?: number;
  /** Default 'bbr'. */
  cc?: CongestionControl;
  /** Server: validate client addresses with a Retry round trip before keeping any state (load). */
  retry?: boolean;
  /** SO_REUSEPORT, for several endpoints (one per worker) on one port. */
  reusePort?: boolean;
  /** This endpoint's shard (0..shardCount-1); it must be the shardId-th socket bound to the port. */
  shardId?: number;
  shardCount?: number;
  /** Per-connection DATAGRAM send queue, in datagrams. Default 512. */
  datagramQueueLength?: number;
  /**
   * A queued DATAGRAM older than this (ms) is dropped rather than sent late, and counted
   * (stats().datagramsDroppedExpired): behind a congested path, an old IP packet only adds delay
   * for the flows inside the tunnel. Default 100; 0 never drops.
   */
  datagramMaxAgeMs?: number;
  /** If true, stream flow-control credit returns only through extendStreamCredit(). */
  manualStreamCredit?: boolean;
  /** Initial per-stream receive window in bytes. Default 4 MiB. */
  streamWindow?: number;
  /** Initial connection receive window in bytes. Default 16 MiB. */
  connectionWindow?: number;
  /** SO_RCVBUF/SO_SNDBUF request. Default 4 MiB. */
  socketBufferBytes?: number;
}

export type CloseWhy = 'close' | 'idle' | 'handshake' | 'reset' | 'endpoint' | 'error';

export interface CloseInfo {
  /** QUIC transport error code, or the application's code when kind is 'application'. */
  code: number;
  reason: string;
  kind: 'application' | 'transport';
  /** true: we closed it (or it timed out here); false: the peer did. */
  local: boolean;
  why: CloseWhy;
}

export interface EndpointHandlers {
  /** Server: a client finished its handshake (HANDSHAKE_DONE sent); peerCertDer is set. */
  onConnection?(conn: Connection): void;
  /** Client: the handshake is confirmed; peerCertDer is set. */
  onHandshake?(conn: Connection): void;
  onStreamData?(conn: Connection, streamId: number, data: Buffer, fin: boolean): void;
  onStreamReset?(conn: Connection, streamId: number, code: number): void;
  /**
   * The peer sent STOP_SENDING; the transport has answered with RESET_STREAM. ngtcp2 1.11 reports
   * this only when a write is refused, and without the peer's code: `code` is then 2^62.
   */
  onStopSending?(conn: Connection, streamId: number, code: number): void;
  /** The stream is closed in both directions; its id will not be seen again. */
  onStreamClose?(conn: Connection, streamId: number, code: number): void;
  /**
   * Datagram i is `lengths[i]` bytes, following datagram i-1 in `data`. `data` and `lengths` are
   * views of buffers the transport reuses: valid during this call only, copy what you keep.
   */
  onDatagrams?(conn: Connection, data: Buffer, lengths: Uint32Array, count: number): void;
  /** The send queue has room again after sendDatagram() returned false. */
  onDatagramDrain?(conn: Connection): void;
  /** The peer allows more streams (after open*Stream() returned -1). */
  onStreamsAvailable?(conn: Connection): void;
  /** Once per connection. */
  onClose?(conn: Connection, info: CloseInfo): void;
}

export interface ConnectionStats {
  srttUs: number;
  minRttUs: number;
  rttVarUs: number;
  latestRttUs: number;
  cwnd: number;
  bytesInFlight: number;
  bytesSent: number;
  bytesRecv: number;
  packetsSent: number;
  packetsRecv: number;
  datagramsSent: number;
  datagramsRecv: number;
  /** DATAGRAM frames in packets declared lost (ngtcp2 1.11 does not count lost packets). */
  datagramsLost: number;
  datagramsDroppedTooBig: number;
  datagramsDroppedFull: number;
  /** Queued longer than datagramMaxAgeMs and dropped unsent. */
  datagramsDroppedExpired: number;
  /** Bytes leaving flight (acknowledged or lost) per second since the previous stats() call. */
  deliveryRateBps: number;
  /** Current path's maximum UDP payload. */
  pmtu: number;
}

const STATS_KEYS: readonly (keyof ConnectionStats)[] = [
  'srttUs',
  'minRttUs',
  'rttVarUs',
  'latestRttUs',
  'cwnd',
  'bytesInFlight',
  'bytesSent',
  'bytesRecv',
  'packetsSent',
  'packetsRecv',
  'datagramsSent',
  'datagramsRecv',
  'datagramsLost',
  'datagramsDroppedTooBig',
  'datagramsDroppedFull',
  'datagramsDroppedExpired',
  'deliveryRateBps',
  'pmtu',
];

export interface EndpointCounters {
  garbage: number;
  unknownConnection: number;
  misrouted: number;
  versionNegotiationSent: number;
  statelessResetSent: number;
  acceptFailed: number;
  retrySent: number;
  retryTokenInvalid: number;
  handshakeFailed: number;
  tlsNoCertificate: number;
  tlsUntrusted: number;
  tlsWrongPurpose: number;
  tlsOther: number;
  connectionsAccepted: number;
  sendErrors: number;
  sendBlocked: number;
  recvDatagrams: number;
  gsoBatches: number;
}

// ---------------------------------------------------------------------------------------------
// Native binding

const enum Ev {
  Connection = 0,
  Handshake = 1,
  StreamData = 2,
  StreamReset = 3,
  StopSending = 4,
  StreamClose = 5,
  Datagrams = 6,
  DatagramDrain = 7,
  StreamsAvailable = 8,
  Close = 9,
  EndpointClosed = 10,
}

type NativeCallback = (type: number, conn: number, a: unknown, b: unknown, c: unknown) => void;

interface NativeEndpoint {
  address(): [string, number, boolean, boolean];
  connect(host: string, port: number): number;
  openStream(conn: number, bidi: boolean): number;
  writeStream(conn: number, stream: number, data: Uint8Array, fin: boolean): number;
  resetStream(conn: number, stream: number, code: number): number;
  stopSending(conn: number, stream: number, code: number): number;
  extendStreamCredit(conn: number, stream: number, bytes: number): void;
  sendDatagram(conn: number, data: Uint8Array): number;
  closeConnection(conn: number, code: number, reason: string): void;
  stats(conn: number, out: Float64Array): void;
  counters(): EndpointCounters;
  rebind(): void;
  setCredentials(certPem: string, keyPem: string, caPem: string): void;
  close(): void;
}

interface NativeModule {
  NativeEndpoint: new (options: EndpointOptions, cb: NativeCallback) => NativeEndpoint;
  statsFields: number;
  maxDatagramSize: number;
}

let nativeModule: NativeModule | undefined;
function native(): NativeModule {
  nativeModule ??= loadAddon() as unknown as NativeModule;
  return nativeModule;
}

/** Largest DATAGRAM payload that fits a 1452-byte UDP payload with a 16-byte CID. */
export function maxDatagramSize(): number {
  return native().maxDatagramSize;
}

function rethrow(err: unknown): never {
  if (err instanceof Error) {
    const code = (err as Error & { code?: string }).code;
    throw new QuicError(err.message, typeof code === 'string' ? code : 'ERR_QUIC');
  }
  throw err;
}

const WHY: readonly CloseWhy[] = ['close', 'idle', 'handshake', 'reset', 'endpoint', 'error'];

// ---------------------------------------------------------------------------------------------

export class Connection {
  /** The peer's leaf certificate (DER) once the handshake is confirmed. */
  peerCertDer: Buffer | undefined;
  closed = false;
  /** Free for the owner (e.g. the HTTP/3 session). */
  userData: unknown;

  constructor(
    private readonly endpoint: Endpoint,
    readonly id: number,
    readonly remoteAddress: string,
    readonly remotePort: number,
  ) {}

  private get native(): NativeEndpoint {
    return this.endpoint.nativeHandle;
  }

  /** New stream id, or -1 while the peer's stream limit is reached. */
  openBidiStream(): number {
    return this.closed ? -1 : this.native.openStream(this.id, true);
  }

  openUniStream(): number {
    return this.closed ? -1 : this.native.openStream(this.id, false);
  }

  /**
   * Queues a copy of `data` (kept until acknowledged); returns the stream's unacknowledged bytes
   * (0 once the connection is closing). Throws QuicError for an unknown or finished stream.
   */
  writeStream(streamId: number, data: Uint8Array, fin = false): number {
    if (this.closed) throw new QuicError('connection is closed', 'ERR_QUIC_CLOSED');
    const r = this.call(() => this.native.writeStream(this.id, streamId, data, fin));
    if (r === -1) return 0; // closing: the data goes nowhere, onClose follows
    if (r === -2) throw new QuicError(`stream ${streamId} is not writable`, 'ERR_QUIC_NO_STREAM');
    if (r === -3) throw new QuicError(`stream ${streamId} already finished`, 'ERR_QUIC_STREAM_FIN');
    return r;
  }

  resetStream(streamId: number, code: number): void {
    if (!this.closed) this.call(() => this.native.resetStream(this.id, streamId, code));
  }

  stopSending(streamId: number, code: number): void {
    if (!this.closed) this.call(() => this.native.stopSending(this.id, streamId, code));
  }

  /** With manualStreamCredit: return flow-control credit for `bytes` consumed from the stream. */
  extendStreamCredit(streamId: number, bytes: number): void {
    if (!this.closed) this.call(() => this.native.extendStreamCredit(this.id, streamId, bytes));
  }

  /**
   * Queues a DATAGRAM. false: the queue is full, wait for onDatagramDrain. A datagram that can never
   * fit a packet is dropped and counted (stats().datagramsDroppedTooBig) and true is returned.
   */
  sendDatagram(data: Uint8Array): boolean {
    if (this.closed) return true;
    return this.native.sendDatagram(this.id, data) !== 1;
  }

  /** Application close (CONNECTION_CLOSE with an application error code). */
  close(code = 0, reason = ''): void {
    if (!this.closed) this.call(() => this.native.closeConnection(this.id, code, reason));
  }

  stats(): ConnectionStats {
    const buf = this.endpoint.statsBuffer;
    this.call(() => this.native.stats(this.id, buf));
    const out = {} as ConnectionStats;
    STATS_KEYS.forEach((k, i) => (out[k] = buf[i]));
    return out;
  }

  private call<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      return rethrow(err);
    }
  }
}

export class Endpoint {
  readonly role: Role;
  /** @internal */
  readonly nativeHandle: NativeEndpoint;
  /** @internal */
  readonly statsBuffer: Float64Array;
  private readonly conns = new Map<number, Connection>();
  private closedPromise: Promise<void> | undefined;
  private resolveClosed: (() => void) | undefined;
  private isClosed = false;

  constructor(
    options: EndpointOptions,
    private readonly handlers: EndpointHandlers = {},
  ) {
    this.role = options.role;
    const mod = native();
    this.statsBuffer = new Float64Array(mod.statsFields);
    try {
      this.nativeHandle = new mod.NativeEndpoint(options, this.onNative);
    } catch (err) {
      rethrow(err);
    }
  }

  address(): { address: string; port: number; gso: boolean; gro: boolean } {
    const [address, port, gso, gro] = this.nativeHandle.address();
    return { address, port, gso, gro };
  }

  /** Starts a handshake; onHandshake or onClose follows. */
  connect(host: string, port: number): Connection {
    let id: number;
    try {
      id = this.nativeHandle.connect(host, port);
    } catch (err) {
      rethrow(err);
    }
    const conn = new Connection(this, id, host, port);
    this.conns.set(id, conn);
    return conn;
  }

  connections(): IterableIterator<Connection> {
    return this.conns.values();
  }

  counters(): EndpointCounters {
    return this.nativeHandle.counters();
  }

  /** Client: continue every connection from a fresh local port (what a NAT rebinding looks like). */
  rebind(): void {
    try {
      this.nativeHandle.rebind();
    } catch (err) {
      rethrow(err);
    }
  }

  /**
   * Replaces the certificate, key and CA for handshakes from now on (a renewed certificate);
   * connections already up keep what they were made with. Throws QuicError
   * `ERR_QUIC_CREDENTIALS` on unusable PEM or a key that does not match, keeping the old ones.
   */
  setCredentials(credentials: { certPem: string; keyPem: string; caPem: string }): void {
    try {
      this.nativeHandle.setCredentials(credentials.certPem, credentials.keyPem, credentials.caPem);
    } catch (err) {
      rethrow(err);
    }
  }

  /** Closes every connection (onClose with why 'endpoint'), then the socket. */
  close(): Promise<void> {
    if (!this.closedPromise) {
      this.closedPromise = this.isClosed
        ? Promise.resolve()
        : new Promise<void>((resolveFn) => {
            this.resolveClosed = resolveFn;
          });
      this.nativeHandle.close();
    }
    return this.closedPromise;
  }

  private readonly onNative: NativeCallback = (type, id, a, b, c) => {
    const h = this.handlers;
    if (type === Ev.Datagrams) {
      const conn = this.conns.get(id);
      const u8 = a as Uint8Array;
      if (conn)
        h.onDatagrams?.(
          conn,
          Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength),
          b as Uint32Array,
          c as number,
        );
      return;
    }
    if (type === Ev.StreamData) {
      const conn = this.conns.get(id);
      if (conn) h.onStreamData?.(conn, a as number, b as Buffer, c as boolean);
      return;
    }
    switch (type) {
      case Ev.Connection: {
        const conn = new Connection(this, id, a as string, b as number);
        conn.peerCertDer = c as Buffer;
        this.conns.set(id, conn);
        h.onConnection?.(conn);
        return;
      }
      case Ev.EndpointClosed:
        this.isClosed = true;
        this.resolveClosed?.();
        return;
    }
    const conn = this.conns.get(id);
    if (!conn) return;
    switch (type) {
      case Ev.Handshake:
        conn.peerCertDer = a as Buffer;
        h.onHandshake?.(conn);
        break;
      case Ev.StreamReset:
        h.onStreamReset?.(conn, a as number, b as number);
        break;
      case Ev.StopSending:
        h.onStopSending?.(conn, a as number, b as number);
        break;
      case Ev.StreamClose:
        h.onStreamClose?.(conn, a as number, b as number);
        break;
      case Ev.DatagramDrain:
        h.onDatagramDrain?.(conn);
        break;
      case Ev.StreamsAvailable:
        h.onStreamsAvailable?.(conn);
        break;
      case Ev.Close: {
        const flags = c as number;
        conn.closed = true;
        this.conns.delete(id);
        h.onClose?.(conn, {
          code: a as number,
          reason: b as string,
          kind: flags & 1 ? 'application' : 'transport',
          local: (flags & 2) !== 0,
          why: WHY[flags >> 4] ?? 'error',
        });
        break;
      }
    }
  };
}
