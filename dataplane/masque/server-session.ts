// The proxy side of one CONNECT-IP tunnel (RFC 9484 §4–7; PROTOCOL.md §10.1 items 5, 7–9, 15, 20):
// validate the request, ask the owner's authorisation hook, answer 200 with an unsolicited
// ADDRESS_ASSIGN and a ROUTE_ADVERTISEMENT, answer ADDRESS_REQUESTs, and carry packets.

import { prefixEquals, type IpPrefix } from './address.js';
import { rejectionFor, type AddressEntry } from './capsule.js';
import { H3_REQUEST_REJECTED } from './errors.js';
import {
  connectIpErrorResponse,
  connectIpSuccessResponse,
  validateConnectIpRequest,
  type ConnectIpRequest,
  type HeaderList,
  type ProxyRequestConfig,
} from './request.js';
import { normaliseRoutes, type IpRange } from './route.js';
import { Tunnel, type TunnelOptions } from './tunnel.js';

export type Authorization =
  | {
      readonly ok: true;
      /** Addresses for the client: at least one IPv4 /32 (quiche needs one), plus IPv6 if any. */
      readonly addresses: readonly IpPrefix[];
      /** Routes to advertise; normalised before sending. */
      readonly routes: readonly IpRange[];
      /** Extra response fields. */
      readonly responseHeaders?: HeaderList;
    }
  | {
      readonly ok: false;
      readonly status: 401 | 403 | 503;
      readonly reason: string;
      /** Sent as `retry-after` (503: when trying again makes sense). */
      readonly retryAfterSeconds?: number;
    };

export interface ServerSessionOptions extends TunnelOptions {
  request: ProxyRequestConfig;
  /** Decides whether the validated request may open a tunnel, and with which addresses. */
  authorize(request: ConnectIpRequest): Promise<Authorization>;
  /**
   * Answers ADDRESS_REQUEST entries: return a prefix to assign, or undefined to reject. By default
   * an entry is answered with an address of its family already assigned, else rejected.
   */
  assignRequested?(entry: AddressEntry, current: readonly IpPrefix[]): IpPrefix | undefined;
}

export class ServerSession extends Tunnel {
  private readonly opts: ServerSessionOptions;
  private requestValue: ConnectIpRequest | undefined;
  private pendingRequests: AddressEntry[] = [];

  constructor(opts: ServerSessionOptions) {
    super('proxy', opts);
    this.opts = opts;
  }

  get request(): ConnectIpRequest | undefined {
    return this.requestValue;
  }

  /** Addresses currently assigned to the client. */
  get clientAddresses(): readonly IpPrefix[] {
    return this.peerAssigned.map((e) => e.prefix);
  }

  /**
   * The request's decoded field section. Rejections answer at once; a valid request waits for the
   * authorisation hook. Resolves when the tunnel is open or refused (for tests and logs; the
   * outputs have been emitted by then).
   */
  async onRequestHeaders(headers: HeaderList): Promise<void> {
    if (this.stateValue !== 'idle') return;
    const v = validateConnectIpRequest(headers, this.opts.request);
    if (!v.ok) {
      this.output.sendHeaders(v.response);
      if (v.resetCode !== undefined) this.output.resetStream(v.resetCode);
      else this.output.sendData(new Uint8Array(0), true);
      this.finish({ how: 'rejected', code: v.status, reason: v.reason });
      return;
    }
    this.requestValue = v.request;
    this.stateValue = 'authorizing';
    let auth: Authorization;
    try {
      auth = await this.opts.authorize(v.request);
    } catch (err) {
      auth = { ok: false, status: 503, reason: `authorisation failed: ${String(err)}` };
    }
    // The client may have reset or finished the stream while we waited.
    if (this.stateValue !== 'authorizing') return;
    if (auth.ok && auth.addresses.length === 0)
      auth = { ok: false, status: 503, reason: 'no address available', retryAfterSeconds: 30 };
    if (!auth.ok) {
      const hint: HeaderList =
        auth.retryAfterSeconds === undefined
          ? []
          : [['retry-after', String(Math.max(0, Math.round(auth.retryAfterSeconds)))]];
      this.output.sendHeaders(connectIpErrorResponse(auth.status, auth.reason, hint));
      // No tunnel state was created, so REQUEST_REJECTED would also do; FIN is kinder to peers
      // that read the body of an error response.
      this.output.sendData(new Uint8Array(0), true);
      this.finish({ how: 'rejected', code: auth.status, reason: auth.reason });
      return;
    }
    this.output.sendHeaders(connectIpSuccessResponse(auth.responseHeaders));
    this.stateValue = 'open';
    this.peerAssigned = auth.addresses.map((prefix) => ({ requestId: 0, prefix }));
    this.localRoutes = normaliseRoutes(auth.routes);
    this.rebuildRules();
    // Addressing first, then routes (RFC 9484 §9), in one write so they share a DATA frame.
    this.sendCapsules(
      { kind: 'address-assign', addresses: this.peerAssigned },
      { kind: 'route-advertisement', ranges: this.localRoutes },
    );
    this.events.onOpen?.();
    const pending = this.pendingRequests;
    this.pendingRequests = [];
    if (pending.length > 0) this.onAddressRequest(pending);
  }

  /** Replaces the client's address set; the capsule carries the full new set. */
  updateAddresses(addresses: readonly IpPrefix[]): void {
    if (this.stateValue !== 'open') return;
    this.peerAssigned = addresses.map((prefix) => {
      const old = this.peerAssigned.find((e) => prefixEquals(e.prefix, prefix));
      return { requestId: old?.requestId ?? 0, prefix };
    });
    this.rebuildRules();
    this.sendCapsules({ kind: 'address-assign', addresses: this.peerAssigned });
  }

  /** Replaces the advertised routes (full set, normalised). */
  updateRoutes(routes: readonly IpRange[]): void {
    if (this.stateValue !== 'open') return;
    this.localRoutes = normaliseRoutes(routes);
    this.rebuildRules();
    this.sendCapsules({ kind: 'route-advertisement', ranges: this.localRoutes });
  }

  /** Refuses the request before any processing (e.g. shutting down): REQUEST_REJECTED. */
  refuse(): void {
    if (this.stateValue === 'idle' || this.stateValue === 'authorizing')
      this.abort(H3_REQUEST_REJECTED, 'refused');
  }

  /**
   * RFC 9484 §4.7.2: answer every entry with the same request ID, in a full-set ADDRESS_ASSIGN.
   * Rejections go out once and are not repeated in later capsules.
   */
  protected onAddressRequest(entries: readonly AddressEntry[]): void {
    if (this.stateValue === 'authorizing' || this.stateValue === 'idle') {
      this.pendingRequests.push(...entries);
      return;
    }
    if (this.stateValue !== 'open') return;
    const rejections: AddressEntry[] = [];
    const current = () => this.peerAssigned.map((e) => e.prefix);
    for (const entry of entries) {
      const choice = this.opts.assignRequested
        ? this.opts.assignRequested(entry, current())
        : current().find((p) => p.version === entry.prefix.version);
      if (!choice) {
        rejections.push(rejectionFor(entry.requestId, entry.prefix.version));
        continue;
      }
      const i = this.peerAssigned.findIndex((e) => prefixEquals(e.prefix, choice));
      // An address answers the latest request for it; an unrequested one keeps ID 0.
      if (i >= 0) this.peerAssigned[i] = { requestId: entry.requestId, prefix: choice };
      else this.peerAssigned.push({ requestId: entry.requestId, prefix: choice });
    }
    this.rebuildRules();
    this.sendCapsules({ kind: 'address-assign', addresses: [...this.peerAssigned, ...rejections] });
  }
}
