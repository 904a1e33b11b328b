// The client side of one CONNECT-IP tunnel (RFC 9484 §4–7; PROTOCOL.md §10.1 items 3–6, 10, 15,
// 19–20): send the Extended CONNECT, accept any 2xx, track the full address and route sets,
// request addresses only after a grace period (or never), and carry packets.

import { addressLength, maxPrefixLength, type IpPrefix, type IpVersion } from './address.js';
import { rejectionFor, type AddressEntry } from './capsule.js';
import { H3_MESSAGE_ERROR, H3_REQUEST_CANCELLED } from './errors.js';
import {
  buildConnectIpRequest,
  classifyResponse,
  type ClientRequestOptions,
  type HeaderList,
} from './request.js';
import { type IpRange } from './route.js';
import { Tunnel, type TunnelOptions } from './tunnel.js';

export interface ClientSessionOptions extends TunnelOptions, ClientRequestOptions {
  /** The request stream's ID, if known up front; else set `streamId` once the stream exists. */
  streamId?: number;
  /**
   * `after-grace` (default): send ADDRESS_REQUEST if no ADDRESS_ASSIGN arrived `addressGraceMs`
   * after the 2xx. `never`: for old connect-ip-go proxies, which abort the stream on it.
   */
  addressRequest?: 'after-grace' | 'never';
  addressGraceMs?: number;
  /** Families to request (default IPv4 and IPv6). */
  requestFamilies?: readonly IpVersion[];
  /** Used as our addresses when the proxy assigns none (Cloudflare, PROTOCOL.md §9.3). */
  staticAddresses?: readonly IpPrefix[];
  /** Used as the peer's routes when the proxy advertises none. */
  staticRoutes?: readonly IpRange[];
}

export class ClientSession extends Tunnel {
  private readonly opts: ClientSessionOptions;
  private openedAt: number | undefined;
  private assignmentSeen = false;
  private requestSent = false;
  private nextRequestId = 1;
  private statusValue: number | undefined;
  private responseValue: HeaderList | undefined;
  /** The request stream (for GOAWAY); the owner sets it when the HTTP/3 layer assigns it. */
  streamId: number | undefined;

  constructor(opts: ClientSessionOptions) {
    super('client', opts);
    this.opts = opts;
    this.streamId = opts.streamId;
    this.rebuildRules();
  }

  /** The final response status, once known. */
  get status(): number | undefined {
    return this.statusValue;
  }

  /** The 2xx field section, once it arrived (extensions read their answers from it). */
  get responseHeaders(): HeaderList | undefined {
    return this.responseValue;
  }

  /**
   * Sends the request. The caller must have the server's SETTINGS (§10.1 item 3). `extraHeaders`
   * go after the configured ones: an extension's offer that needs context IDs allocated on
   * this session's registry first (FEC).
   */
  start(extraHeaders: HeaderList = []): void {
    if (this.stateValue !== 'idle') return;
    this.stateValue = 'requesting';
    const extra = [...(this.opts.extraHeaders ?? []), ...extraHeaders];
    this.output.sendHeaders(buildConnectIpRequest({ ...this.opts, extraHeaders: extra }));
  }

  /** A response field section (interim or final). `now` in milliseconds starts the grace timer. */
  onResponseHeaders(headers: HeaderList, now: number): void {
    if (this.stateValue !== 'requesting') {
      // Any field section after the 2xx is trailers, which the HTTP/3 layer rejects; ignore here.
      return;
    }
    const r = classifyResponse(headers);
    switch (r.kind) {
      case 'interim':
        return;
      case 'malformed':
        this.abort(H3_MESSAGE_ERROR, `malformed response: ${r.reason}`);
        return;
      case 'failure':
        this.statusValue = r.status;
        this.output.resetStream(H3_REQUEST_CANCELLED);
        this.finish({
          how: 'rejected',
          code: r.status,
          reason: `proxy answered ${r.status}${r.proxyStatus ? ` (${r.proxyStatus})` : ''}`,
          retryAfterSeconds: r.retryAfterSeconds,
        });
        return;
      case 'success':
        this.statusValue = r.status;
        this.responseValue = headers;
        this.stateValue = 'open';
        this.openedAt = now;
        this.events.onOpen?.();
        return;
    }
  }

  /**
   * The connection received GOAWAY with `lastStreamId`: a request at or above it was not
   * processed, so the tunnel is gone and may be retried elsewhere; tunnels below it continue.
   * Returns true if this tunnel survives.
   */
  onGoaway(lastStreamId: number): boolean {
    if (this.stateValue === 'closed') return false;
    if (this.streamId !== undefined && this.streamId < lastStreamId) return true;
    this.finish({ how: 'reset', code: undefined, reason: 'request not processed before GOAWAY' });
    return false;
  }

  /** When `onTimeout` wants to run next (ms), or undefined when no timer is pending. */
  nextTimeout(): number | undefined {
    if (!this.wantsAddressRequest() || this.openedAt === undefined) return undefined;
    return this.openedAt + (this.opts.addressGraceMs ?? 100);
  }

  onTimeout(now: number): void {
    const due = this.nextTimeout();
    if (due === undefined || now < due) return;
    this.requestSent = true;
    const families = this.opts.requestFamilies ?? [4, 6];
    this.sendCapsules({
      kind: 'address-request',
      addresses: families.map((version) => ({
        requestId: this.nextRequestId++,
        prefix: {
          version,
          address: new Uint8Array(addressLength(version)),
          prefixLength: maxPrefixLength(version),
        },
      })),
    });
  }

  private wantsAddressRequest(): boolean {
    return (
      this.stateValue === 'open' &&
      !this.assignmentSeen &&
      !this.requestSent &&
      (this.opts.addressRequest ?? 'after-grace') === 'after-grace'
    );
  }

  protected override onAssignmentReceived(_entries: readonly AddressEntry[]): void {
    // Any ADDRESS_ASSIGN counts, whatever its IDs: quiche never echoes them (§10.1 item 10).
    this.assignmentSeen = true;
  }

  /** We assign nothing to the proxy, but every request entry is answered (with a rejection). */
  protected onAddressRequest(entries: readonly AddressEntry[]): void {
    if (this.stateValue !== 'open') return;
    this.sendCapsules({
      kind: 'address-assign',
      addresses: entries.map((e) => rejectionFor(e.requestId, e.prefix.version)),
    });
  }

  protected override staticLocalAddresses(): readonly IpPrefix[] {
    return this.opts.staticAddresses ?? [];
  }

  protected override staticPeerRoutes(): readonly IpRange[] {
    return this.opts.staticRoutes ?? [];
  }
}
