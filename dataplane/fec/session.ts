// FEC attached to one CONNECT-IP tunnel: negotiation on both sides of the Extended CONNECT, and
// the glue between a `FecTunnel` and the tunnel's packet path. The tunnel is described here by the
// few methods FEC calls (`FecTunnelPort`, which dataplane/masque's `Tunnel` provides), so this
// folder still imports nothing outside itself.
//
// Once attached, the tunnel hands every checked outgoing packet to the FEC sender, which sends it
// plainly on context 0 (FEC currently off) or on the FEC context with its header; FEC-context
// datagrams from the peer go through the receiver, and what it delivers (data packets at once,
// recovered ones when their block allows) goes through the tunnel's usual receive checks.
import type { FecConfig } from './config.js';
import { fecPolicy } from './config.js';
import type { FecMetrics } from './metrics.js';
import {
  FEC_HEADER_FIELD,
  type FecAgreement,
  type FecOfferItem,
  FecNegotiationError,
  formatFecAnswer,
  formatFecOffer,
  offerFromConfig,
  parseFecAnswer,
  parseFecOffer,
  selectFec,
} from './negotiation.js';
import type { FecSendSink } from './sender.js';
import { FecTunnel } from './tunnel.js';

type FieldList = readonly (readonly [string, string])[];

/** What FEC needs from a CONNECT-IP tunnel (dataplane/masque `Tunnel` has all of it). */
export interface FecTunnelPort {
  readonly contexts: {
    allocate(): number;
    register(id: number, handler: (buf: Uint8Array, offset: number, length: number) => void): void;
    unregister(id: number): void;
  };
  setEncapsulator(
    e: { encapsulate(buf: Uint8Array, offset: number, length: number): void } | undefined,
  ): void;
  sendPlainPacket(buf: Uint8Array, offset: number, length: number): void;
  sendContextDatagram(
    contextId: number,
    head: Uint8Array | undefined,
    body: Uint8Array,
    offset: number,
    length: number,
  ): void;
  receiveExtensionPacket(buf: Uint8Array, offset: number, length: number): void;
}

export interface QuicDatagramCounters {
  datagramsSent: number;
  datagramsLost: number;
}

// ---- negotiation ---------------------------------------------------------------------------

/**
 * The client's offer: one context ID per configured scheme, allocated on the tunnel's registry
 * (so they are even and never reused), and the request field to send. Undefined when disabled.
 */
export function clientFecOffer(
  config: FecConfig,
  port: Pick<FecTunnelPort, 'contexts'>,
): { offer: FecOfferItem[]; field: [string, string] } | undefined {
  if (!config.enabled) return undefined;
  const ids = config.schemes.map(() => port.contexts.allocate());
  const offer = offerFromConfig(config, ids);
  return { offer, field: [FEC_HEADER_FIELD, formatFecOffer(offer)] };
}

/**
 * The client reads the proxy's answer from the 2xx. No field: no FEC. A field that does not match
 * the offer is a FecNegotiationError; the caller then runs without FEC (and may log it).
 */
export function clientFecAgreement(
  response: FieldList,
  offer: readonly FecOfferItem[],
): FecAgreement | undefined {
  const value = fieldValue(response, FEC_HEADER_FIELD);
  if (value === undefined) return undefined;
  return parseFecAnswer(value, offer);
}

/**
 * The proxy's choice for a request: undefined (answer nothing) when FEC is disabled here, the
 * client offered nothing we accept, or the offer is malformed (a bad offer never fails the
 * request; the tunnel simply runs without FEC). `limits` lowers k and m if given.
 */
export function proxyFecChoice(
  request: FieldList,
  config: FecConfig,
  limits?: { maxK?: number; maxM?: number },
): { agreement: FecAgreement; field: [string, string] } | undefined {
  if (!config.enabled) return undefined;
  const value = fieldValue(request, FEC_HEADER_FIELD);
  if (value === undefined) return undefined;
  // The field comes from the network: whatever is wrong with it, the answer is "no FEC".
  try {
    const offer = parseFecOffer(value);
    const policy = fecPolicy(config);
    const agreement = selectFec(offer, {
      schemes: policy.schemes,
      maxK: limits?.maxK ?? policy.maxK,
      maxM: limits?.maxM ?? policy.maxM,
    });
    if (agreement === undefined) return undefined;
    return { agreement, field: [FEC_HEADER_FIELD, formatFecAnswer(agreement)] };
  } catch (err) {
    if (err instanceof FecNegotiationError) return undefined;
    throw err;
  }
}

function fieldValue(fields: FieldList, name: string): string | undefined {
  const values = fields.filter(([n]) => n === name).map(([, v]) => v);
  // Repeated fields combine as one list (RFC 9110 §5.3).
  return values.length === 0 ? undefined : values.join(', ');
}

// ---- the running extension -----------------------------------------------------------------

/** FEC running on one tunnel. `attach()` after the tunnel opened, `detach()` when it closes. */
export class FecSession {
  readonly fec: FecTunnel;
  readonly scheme: FecAgreement['scheme'];
  private readonly port: FecTunnelPort;
  private readonly now: () => number;
  private readonly sink: FecSendSink;
  private readonly deliver: (packet: Uint8Array) => void;
  private attached = false;

  constructor(o: {
    port: FecTunnelPort;
    agreement: FecAgreement;
    config: FecConfig;
    /** The tunnel MTU; FEC adds at most 8 bytes (plus the context ID) to a datagram. */
    maxPacketSize: number;
    quicBaseline?: QuicDatagramCounters;
    /** Monotonic clock in ms (the engines' time base). */
    now: () => number;
  }) {
    this.port = o.port;
    this.now = o.now;
    this.scheme = o.agreement.scheme;
    this.fec = new FecTunnel({
      agreement: o.agreement,
      config: o.config,
      maxPacketSize: o.maxPacketSize,
      quicBaseline: o.quicBaseline,
    });
    const context = this.fec.context;
    const port = o.port;
    this.sink = {
      sendPlain: (packet) => port.sendPlainPacket(packet, 0, packet.length),
      sendFec: (header, body) => port.sendContextDatagram(context, header, body, 0, body.length),
    };
    this.deliver = (packet) => port.receiveExtensionPacket(packet, 0, packet.length);
  }

  get metrics(): FecMetrics {
    return this.fec.metrics;
  }

  /** Registers the FEC context and takes over encapsulation. */
  attach(): void {
    if (this.attached) return;
    this.attached = true;
    this.port.contexts.register(this.fec.context, (buf, offset, length) =>
      // The engine works on exact views: one small view object per FEC datagram.
      this.fec.receive(buf.subarray(offset, offset + length), this.now(), this.deliver),
    );
    this.port.setEncapsulator(this);
  }

  /** Sends what an open block has, then hands context 0 back and retires the FEC context. */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.fec.flush(this.sink);
    this.port.setEncapsulator(undefined);
    this.port.contexts.unregister(this.fec.context);
  }

  /** Called by the tunnel for each checked outgoing packet. */
  encapsulate(buf: Uint8Array, offset: number, length: number): void {
    this.fec.send(buf.subarray(offset, offset + length), this.now(), this.sink);
  }

  /** When `onTimer` must run next (the `now` clock), or undefined. */
  nextDeadline(): number | undefined {
    return this.attached ? this.fec.nextDeadline() : undefined;
  }

  onTimer(now: number = this.now()): void {
    if (this.attached) this.fec.onTimer(now, this.sink);
  }

  /** QUIC's cumulative datagram counters for the connection, every ~200 ms. */
  observe(quic: QuicDatagramCounters): void {
    if (this.attached) this.fec.observe(quic);
  }
}
