// The seam between the client's lifecycle logic and the packet stack. The supervisor only knows
// this interface; the real implementation (QUIC + HTTP/3 + CONNECT-IP from dataplane/) is wired in
// by whoever builds the transport, and tests drive the supervisor with a fake.
import type { IpPrefix, IpRange } from './prefix.js';

/** What the client asks of a transport, from the bundle and flags. */
export interface TransportSettings {
  /** host:port candidates in order of preference, with their resolved addresses. */
  readonly endpoints: readonly ResolvedEndpoint[];
  /** TLS server name (SNI and certificate verification). */
  readonly serverName: string;
  /**
   * URI template path (`/…`), or an absolute `https://` template from --template. The template
   * for an endpoint is uriTemplate(serverName, endpoint.port, templatePath) (bundle.ts): its
   * authority goes into :authority byte for byte (PROTOCOL.md §10.1 item 4).
   */
  readonly templatePath: string;
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Send ADDRESS_REQUEST when no assignment arrives shortly after the 2xx (§10.1 item 10). */
  readonly addressRequest: boolean;
  readonly fec: FecPreference;
  readonly mtu: number;
}

export interface ResolvedEndpoint {
  readonly host: string;
  readonly port: number;
  /** Addresses from resolution, IPv4 and IPv6, in resolver order. */
  readonly addresses: readonly string[];
}

/** FEC the client offers (docs/bundle.md [fec]). */
export interface FecPreference {
  readonly enabled: boolean;
  /** Data packets per block. */
  readonly blockSize: number;
  /** Repair packets as a share of data packets, in %. */
  readonly redundancyPercent: number;
  /** Longest wait of a half-full block for its repair, ms (default 5). */
  readonly flushMs?: number;
  /** Blocks filled in turn against burst loss (default 1: none). */
  readonly interleave?: number;
}

/** Events a live tunnel reports. Given to connect() so nothing that arrives early is lost. */
export interface TunnelEvents {
  /** The complete current address set (every ADDRESS_ASSIGN replaces the last, §6.3). */
  addresses(set: readonly IpPrefix[]): void;
  /** The complete current route set (every ROUTE_ADVERTISEMENT replaces the last, §6.5). */
  routes(set: readonly IpRange[]): void;
  /** An inner IP packet from the server, to be written to the TUN. */
  packet(packet: Uint8Array): void;
  /** The tunnel ended; called once, and not after the client itself called close(). */
  closed(reason: TunnelCloseReason): void;
}

export type TunnelCloseReason =
  /** The connection or stream died (idle timeout, reset, network loss). */
  | { readonly kind: 'lost'; readonly message: string }
  /** The server sent GOAWAY or closed with H3_NO_ERROR: reconnect at once (§10.1 item 20). */
  | { readonly kind: 'goaway'; readonly message: string }
  /** The server ended the tunnel deliberately with a definitive refusal (e.g. device revoked). */
  | { readonly kind: 'denied'; readonly message: string };

/** Counters one tunnel has accumulated; monotonic for its lifetime. */
export interface TunnelStats {
  readonly bytesSent: number;
  readonly bytesReceived: number;
  readonly packetsSent: number;
  readonly packetsReceived: number;
  /** Smoothed RTT in ms, undefined before the first sample. */
  readonly rttMs: number | undefined;
  /** Fraction of sent QUIC packets declared lost, 0..1. */
  readonly lossRatio: number;
  readonly fec: FecStats | undefined;
}

export interface FecStats {
  readonly scheme: string;
  readonly repairSent: number;
  readonly repairReceived: number;
  readonly recovered: number;
  readonly unrecoverable: number;
  /** Data packets sent inside FEC blocks. */
  readonly protected?: number;
  /** Bytes spent on FEC headers and repair packets. */
  readonly overheadBytes?: number;
  /** Repair-to-data ratio currently in use (0: adaptive mode sees no loss). */
  readonly ratio?: number;
}

export interface TunnelHandle {
  /** Sends one inner IP packet; false when it was dropped (congestion, too large, closing). */
  send(packet: Uint8Array): boolean;
  stats(): TunnelStats;
  /** Closes the tunnel (FIN / H3_REQUEST_CANCELLED) and the connection; idempotent. */
  close(): Promise<void>;
}

export interface TunnelTransport {
  /**
   * Opens QUIC + HTTP/3 + the CONNECT-IP stream and resolves once a 2xx arrived. Rejects with
   * TunnelDeniedError for a definitive refusal; any other rejection is treated as transient.
   * `signal` aborts an attempt in progress (the client is stopping).
   */
  connect(events: TunnelEvents, signal: AbortSignal): Promise<TunnelHandle>;
}

/** A refusal that retrying cannot fix: the supervisor stops and reports `reason`. */
export class TunnelDeniedError extends Error {
  readonly status: number | undefined;
  readonly proxyStatus: string | undefined;
  constructor(message: string, status?: number, proxyStatus?: string) {
    super(message);
    this.name = 'TunnelDeniedError';
    this.status = status;
    this.proxyStatus = proxyStatus;
  }
}

/** A non-2xx response that may succeed later (503 no address / control plane down, 5xx). */
export class TunnelRefusedError extends Error {
  readonly status: number;
  readonly proxyStatus: string | undefined;
  /** The server's retry hint (retry-after), if any. */
  readonly retryAfterMs: number | undefined;
  constructor(message: string, status: number, proxyStatus?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'TunnelRefusedError';
    this.status = status;
    this.proxyStatus = proxyStatus;
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * Classifies a non-2xx CONNECT-IP response. Definitive are the statuses that say who we are is
 * the problem: 403 (revoked or unknown device), and 401/407 (the server wants credentials we do
 * not have). Everything else, including 4xx that point at a template mismatch, is retried: the
 * issue is explicit that only a denial ends the client, and a server being redeployed can answer
 * oddly for a moment.
 */
export function classifyResponse(
  status: number,
  proxyStatus?: string,
  retryAfterSeconds?: number,
): TunnelDeniedError | TunnelRefusedError {
  const detail = proxyStatus ? ` (${proxyStatus})` : '';
  if (status === 401 || status === 403 || status === 407) {
    return new TunnelDeniedError(
      `server denied the tunnel: ${status}${detail}`,
      status,
      proxyStatus,
    );
  }
  const retryAfterMs = retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000;
  return new TunnelRefusedError(
    `server refused the tunnel: ${status}${detail}`,
    status,
    proxyStatus,
    retryAfterMs,
  );
}
