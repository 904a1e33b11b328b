// What client and proxy tunnels share (RFC 9484 §4.1, §7): the capsule intake on the request
// stream, the full-set address and route state, the packet path in both directions, and teardown.
// Sans-I/O: bytes and events come in through methods, everything to send goes out through the
// TunnelOutput the owner supplies.

import { type IpPrefix } from './address.js';
import { copyBytes } from './bytes.js';
import {
  CapsuleParser,
  encodeCapsule,
  isRejection,
  type AddressEntry,
  type Capsule,
  type CapsuleLimits,
} from './capsule.js';
import { ContextRegistry, CONTEXT_ID_IP, writeDatagramPayload, type Role } from './datagram.js';
import { CapsuleError, H3_MESSAGE_ERROR } from './errors.js';
import { ICMP_ERROR_BUFFER_SIZE, IcmpError, writeIcmpError } from './icmp.js';
import {
  Verdict,
  PacketInfo,
  checkPacket,
  decrementHopLimit,
  inspectPacket,
  isLinkLocal,
  type PacketRules,
} from './ip.js';
import type { HeaderList } from './request.js';
import { rangeFromPrefix, type IpRange } from './route.js';

/** Everything a tunnel emits. The owner maps these onto the HTTP/3 request stream and the TUN. */
export interface TunnelOutput {
  /** Send a field section (request or response) on the request stream. */
  sendHeaders(headers: HeaderList): void;
  /** Send capsule bytes in DATA frames; `fin` ends our direction of the stream. */
  sendData(bytes: Uint8Array, fin: boolean): void;
  /** Abort the stream: RESET_STREAM and STOP_SENDING, both with `code`. */
  resetStream(code: number): void;
  /**
   * Send one HTTP Datagram Payload (context ID + packet) as a QUIC DATAGRAM; the HTTP/3 layer
   * prefixes the quarter stream ID. The bytes are valid only during the call.
   */
  sendDatagram(payload: Uint8Array, offset: number, length: number): void;
  /** Hand an IP packet to the local side (TUN, or the shard's ring). Valid only during the call. */
  deliverPacket(packet: Uint8Array, offset: number, length: number): void;
}

export type TunnelState = 'idle' | 'requesting' | 'authorizing' | 'open' | 'closed';

export interface TunnelClosed {
  /** `fin`: both directions finished; `reset`: the peer reset (any code counts); `aborted`: we reset. */
  readonly how: 'fin' | 'reset' | 'aborted' | 'rejected';
  readonly code: number | undefined;
  readonly reason: string;
  /** `rejected` on the client: the proxy's retry-after hint, in seconds. */
  readonly retryAfterSeconds?: number;
}

export interface TunnelEvents {
  onOpen?(): void;
  /** The full set of addresses assigned to us changed (rejections removed). */
  onLocalAddresses?(addresses: readonly IpPrefix[]): void;
  /** The peer's full route set changed. */
  onPeerRoutes?(routes: readonly IpRange[]): void;
  onClosed?(closed: TunnelClosed): void;
}

export interface TunnelOptions {
  output: TunnelOutput;
  events?: TunnelEvents;
  /** Tunnel MTU: larger packets get Packet Too Big / Fragmentation Needed (default 1280). */
  mtu?: number;
  /** Send IP packets in DATAGRAM capsules because QUIC DATAGRAM was not negotiated. */
  datagramsInCapsules?: boolean;
  capsuleLimits?: Partial<CapsuleLimits>;
  /** Operator policy on packets from the peer, after the address checks. */
  ingressPolicy?: PacketRules['policy'];
  /** ICMP errors we may originate per second (RFC 4443 §2.4(f) requires a limit). */
  icmpPerSecond?: number;
  /** Clock in milliseconds, for the ICMP rate limit. */
  now?: () => number;
}

export interface TunnelStats {
  packetsFromPeer: number;
  packetsToPeer: number;
  droppedMalformed: number;
  droppedSource: number;
  droppedDestination: number;
  droppedPolicy: number;
  droppedTooBig: number;
  droppedHopLimit: number;
  droppedNotOpen: number;
  /** Link-local traffic from the peer, which a proxy never forwards. */
  droppedLinkLocal: number;
  icmpSent: number;
}

/**
 * An extension that encapsulates outgoing IP packets itself (FEC): once installed, every packet
 * `sendPacket` accepts goes to it instead of straight onto context 0. It sends through
 * `sendPlainPacket` (context 0) and `sendContextDatagram` (its own context).
 */
export interface PacketEncapsulator {
  /** A checked packet (TTL already decremented). The view is valid only during the call. */
  encapsulate(packet: Uint8Array, offset: number, length: number): void;
}

/** Outcome of `sendPacket`, for the caller's counters. */
export const SendResult = {
  Sent: 0,
  NotOpen: 1,
  Malformed: 2,
  Refused: 3,
  TooBig: 4,
  HopLimit: 5,
} as const;
export type SendResult = (typeof SendResult)[keyof typeof SendResult];

function prefixesToRanges(prefixes: readonly IpPrefix[]): IpRange[] {
  return prefixes.map((p) => rangeFromPrefix(p));
}

export abstract class Tunnel {
  readonly stats: TunnelStats = {
    packetsFromPeer: 0,
    packetsToPeer: 0,
    droppedMalformed: 0,
    droppedSource: 0,
    droppedDestination: 0,
    droppedPolicy: 0,
    droppedTooBig: 0,
    droppedHopLimit: 0,
    droppedNotOpen: 0,
    droppedLinkLocal: 0,
    icmpSent: 0,
  };
  readonly contexts: ContextRegistry;
  protected stateValue: TunnelState = 'idle';
  protected readonly output: TunnelOutput;
  protected readonly events: TunnelEvents;
  protected readonly parser: CapsuleParser;
  protected readonly mtu: number;
  private maxDatagramPayload = Number.MAX_SAFE_INTEGER;
  private localFinished = false;
  private remoteFinished = false;

  /** Addresses the peer assigned to us (full set, rejections removed). */
  protected localAssigned: IpPrefix[] = [];
  /** Addresses we assigned to the peer, with the request IDs they answer. */
  protected peerAssigned: AddressEntry[] = [];
  /** Routes we advertised to the peer. */
  protected localRoutes: IpRange[] = [];
  /** Routes the peer advertised to us. */
  protected peerRoutes: IpRange[] = [];

  protected readonly ingress: PacketRules = { sources: undefined, destinations: [] };
  protected readonly egress: PacketRules = { sources: [], destinations: [] };

  private readonly info = new PacketInfo();
  private readonly datagramBuffer: Uint8Array;
  private readonly icmpBuffer = new Uint8Array(ICMP_ERROR_BUFFER_SIZE + 8);
  private readonly datagramsInCapsules: boolean;
  private readonly icmpPerSecond: number;
  private readonly now: () => number;
  private icmpTokens: number;
  private icmpRefilledAt = 0;
  private encapsulator: PacketEncapsulator | undefined;

  protected constructor(role: Role, opts: TunnelOptions) {
    this.output = opts.output;
    this.events = opts.events ?? {};
    this.mtu = opts.mtu ?? 1280;
    this.parser = new CapsuleParser(opts.capsuleLimits);
    this.contexts = new ContextRegistry(role, (buf, off, len) => this.receivePacket(buf, off, len));
    // Per tunnel (outputs may re-enter another tunnel synchronously), so sized to what we send:
    // packets up to the MTU and our own ICMP errors, plus the context ID.
    // 24 more: the context ID (up to 8) and an extension's own header (FEC uses 8).
    this.datagramBuffer = new Uint8Array(Math.max(this.mtu, ICMP_ERROR_BUFFER_SIZE) + 24);
    this.datagramsInCapsules = opts.datagramsInCapsules ?? false;
    this.ingress.policy = opts.ingressPolicy;
    this.icmpPerSecond = opts.icmpPerSecond ?? 100;
    this.icmpTokens = this.icmpPerSecond;
    this.now = opts.now ?? Date.now;
  }

  get state(): TunnelState {
    return this.stateValue;
  }

  /** Addresses assigned to us, as currently in force. */
  get localAddresses(): readonly IpPrefix[] {
    return this.localAssigned;
  }

  get routesFromPeer(): readonly IpRange[] {
    return this.peerRoutes;
  }

  /**
   * The HTTP/3 layer reports the largest HTTP Datagram Payload the QUIC path carries; packets
   * above it (less the context ID) get Packet Too Big like packets above the MTU.
   */
  setMaxDatagramPayload(bytes: number): void {
    this.maxDatagramPayload = bytes;
  }

  /** Largest IP packet we send to the peer. */
  get maxPacketSize(): number {
    return Math.min(this.mtu, this.maxDatagramPayload - 1);
  }

  // ---- request stream --------------------------------------------------------------------

  /** DATA frame payload bytes of the request stream, in order, in any chunking. */
  onData(chunk: Uint8Array): void {
    if (this.stateValue === 'closed') return;
    try {
      this.parser.push(chunk, (c) => this.onCapsule(c));
    } catch (err) {
      if (err instanceof CapsuleError) this.abort(err.code, err.message);
      else throw err;
    }
  }

  /** The peer finished its direction of the request stream. */
  onFin(): void {
    if (this.stateValue === 'closed') return;
    try {
      this.parser.finish();
    } catch (err) {
      if (err instanceof CapsuleError) return this.abort(err.code, err.message);
      throw err;
    }
    this.remoteFinished = true;
    // A FIN means "no more capsules"; answer with ours (as connect-ip-go does) and close.
    if (!this.localFinished) {
      this.localFinished = true;
      this.output.sendData(new Uint8Array(0), true);
    }
    this.finish({ how: 'fin', code: undefined, reason: 'stream finished' });
  }

  /** The peer reset the stream or sent STOP_SENDING: whatever the code, the tunnel is gone. */
  onReset(code: number): void {
    if (this.stateValue === 'closed') return;
    this.finish({ how: 'reset', code, reason: `stream reset by peer (0x${code.toString(16)})` });
  }

  /** Graceful close: FIN our direction; the tunnel closes when the peer's FIN arrives. */
  close(): void {
    if (this.stateValue === 'closed' || this.localFinished) return;
    this.localFinished = true;
    this.output.sendData(new Uint8Array(0), true);
    // The owner may deliver the peer's answering FIN synchronously, which already closed us.
    if (this.remoteFinished && (this.stateValue as TunnelState) !== 'closed')
      this.finish({ how: 'fin', code: undefined, reason: 'closed' });
  }

  /** Abortive close: reset both directions with `code`. */
  abort(code: number = H3_MESSAGE_ERROR, reason = 'aborted'): void {
    if (this.stateValue === 'closed') return;
    this.output.resetStream(code);
    this.finish({ how: 'aborted', code, reason });
  }

  protected finish(closed: TunnelClosed): void {
    this.stateValue = 'closed';
    this.events.onClosed?.(closed);
  }

  /** One DATA frame per capsule, as quic-go writes them (and as PROTOCOL.md Appendix B shows). */
  protected sendCapsules(...capsules: Capsule[]): void {
    if (this.localFinished || this.stateValue === 'closed') return;
    for (const c of capsules) this.output.sendData(encodeCapsule(c), false);
  }

  private onCapsule(c: Capsule): void {
    switch (c.kind) {
      case 'datagram':
        this.receiveDatagram(c.payload, 0, c.payload.length);
        return;
      case 'address-assign':
        this.setLocalAssigned(c.addresses);
        return;
      case 'route-advertisement':
        this.peerRoutes = c.ranges.slice();
        this.rebuildRules();
        this.events.onPeerRoutes?.(this.peerRoutes);
        return;
      case 'address-request':
        this.onAddressRequest(c.addresses);
        return;
      case 'other':
        return;
    }
  }

  /** Full-set semantics (RFC 9484 §4.7.1): the capsule replaces everything assigned before. */
  private setLocalAssigned(entries: readonly AddressEntry[]): void {
    this.localAssigned = entries.filter((e) => !isRejection(e)).map((e) => e.prefix);
    this.onAssignmentReceived(entries);
    this.rebuildRules();
    this.events.onLocalAddresses?.(this.localAssigned);
  }

  protected onAssignmentReceived(_entries: readonly AddressEntry[]): void {}

  protected abstract onAddressRequest(entries: readonly AddressEntry[]): void;

  /** Address sets used when nothing was assigned/advertised (static configuration). */
  protected staticLocalAddresses(): readonly IpPrefix[] {
    return [];
  }

  protected staticPeerRoutes(): readonly IpRange[] {
    return [];
  }

  /**
   * Recomputes the packet rules after any address or route change (RFC 9484 §7.2):
   * ingress: source ∈ what we assigned to the peer (if anything), destination ∈ our advertised
   * routes ∪ addresses assigned to us; egress: source ∈ addresses assigned to us ∪ our advertised
   * routes, destination ∈ the peer's routes ∪ addresses we assigned to it. Static sets stand in
   * when the peer assigned or advertised nothing (Cloudflare).
   */
  protected rebuildRules(): void {
    const local = this.localAssigned.length > 0 ? this.localAssigned : this.staticLocalAddresses();
    const peerRoutes = this.peerRoutes.length > 0 ? this.peerRoutes : this.staticPeerRoutes();
    const peerAddrs = this.peerAssigned.filter((e) => !isRejection(e)).map((e) => e.prefix);
    this.ingress.sources = peerAddrs.length > 0 ? prefixesToRanges(peerAddrs) : undefined;
    this.ingress.destinations = [...this.localRoutes, ...prefixesToRanges(local)];
    this.egress.sources = [...prefixesToRanges(local), ...this.localRoutes];
    this.egress.destinations = [...peerRoutes, ...prefixesToRanges(peerAddrs)];
  }

  // ---- datagrams and packets -------------------------------------------------------------

  /**
   * An HTTP Datagram Payload for this stream (after the quarter stream ID), from a QUIC DATAGRAM
   * or a DATAGRAM capsule. Never throws and never affects the stream: drops are counted.
   */
  receiveDatagram(buf: Uint8Array, offset: number, length: number): void {
    if (this.stateValue !== 'open') {
      // Optimistic datagrams before the tunnel is up may be dropped (RFC 9484 §7.1).
      this.stats.droppedNotOpen++;
      return;
    }
    this.contexts.dispatch(buf, offset, length);
  }

  /**
   * Installs (or with undefined removes) the extension that encapsulates outgoing packets. Only
   * after both ends agreed on it (negotiation is the extension's business), so peers that never
   * did see context 0 untouched.
   */
  setEncapsulator(encapsulator: PacketEncapsulator | undefined): void {
    this.encapsulator = encapsulator;
  }

  /** For the encapsulator: one IP packet on context 0, as `sendPacket` would send it. */
  sendPlainPacket(buf: Uint8Array, offset: number, length: number): void {
    this.sendDatagramOn(CONTEXT_ID_IP, undefined, buf, offset, length);
  }

  /**
   * For an extension: one HTTP Datagram on `contextId` carrying `head` (if any) followed by
   * `body[offset, offset+length)`; at most 16 bytes of head. Copied, so the views may be reused.
   */
  sendContextDatagram(
    contextId: number,
    head: Uint8Array | undefined,
    body: Uint8Array,
    offset: number,
    length: number,
  ): void {
    if (this.stateValue !== 'open') return;
    this.sendDatagramOn(contextId, head, body, offset, length);
  }

  /**
   * For an extension: an IP packet it took out of its own context (FEC: a protected or recovered
   * packet). It passes the same checks as a context-0 packet before `deliverPacket`.
   */
  receiveExtensionPacket(buf: Uint8Array, offset: number, length: number): void {
    if (this.stateValue !== 'open') return;
    this.receivePacket(buf, offset, length);
  }

  /** Context 0: an IP packet from the peer. */
  private receivePacket(buf: Uint8Array, offset: number, length: number): void {
    const info = this.info;
    if (!inspectPacket(buf, offset, length, info)) {
      this.stats.droppedMalformed++;
      return;
    }
    if (
      this.contexts.role === 'proxy' &&
      (isLinkLocal(buf, info.srcOffset, info.version) ||
        isLinkLocal(buf, info.dstOffset, info.version))
    ) {
      // The tunnel is a link of its own: link-local traffic never leaves it (RFC 9484 §7.1).
      this.stats.droppedLinkLocal++;
      return;
    }
    const verdict = checkPacket(buf, info, this.ingress);
    if (verdict !== Verdict.Ok) {
      this.countDrop(verdict);
      const kind =
        verdict === Verdict.DestinationNotAllowed ? IcmpError.NoRoute : IcmpError.AdminProhibited;
      const n = this.buildIcmp(buf, offset, length, kind);
      if (n > 0) this.sendToPeer(this.icmpBuffer, 0, n);
      return;
    }
    this.stats.packetsFromPeer++;
    this.output.deliverPacket(buf, offset, length);
  }

  /**
   * An IP packet from the local side, to encapsulate. Checks it, decrements TTL / Hop Limit in
   * place (unless `originated`: packets this endpoint made itself are exempt), and sends it as
   * a context-0 datagram. Refusals send the matching ICMP error back to the local side.
   */
  sendPacket(buf: Uint8Array, offset: number, length: number, originated = false): SendResult {
    if (this.stateValue !== 'open') {
      this.stats.droppedNotOpen++;
      return SendResult.NotOpen;
    }
    const info = this.info;
    if (!inspectPacket(buf, offset, length, info)) {
      this.stats.droppedMalformed++;
      return SendResult.Malformed;
    }
    const verdict = checkPacket(buf, info, this.egress);
    if (verdict !== Verdict.Ok) {
      this.countDrop(verdict);
      const kind =
        verdict === Verdict.DestinationNotAllowed ? IcmpError.NoRoute : IcmpError.AdminProhibited;
      this.icmpToLocal(buf, offset, length, kind);
      return SendResult.Refused;
    }
    if (length > this.maxPacketSize) {
      this.stats.droppedTooBig++;
      this.icmpToLocal(buf, offset, length, IcmpError.PacketTooBig);
      return SendResult.TooBig;
    }
    if (!originated && !decrementHopLimit(buf, offset, info)) {
      this.stats.droppedHopLimit++;
      this.icmpToLocal(buf, offset, length, IcmpError.TimeExceeded);
      return SendResult.HopLimit;
    }
    if (this.encapsulator !== undefined) {
      this.stats.packetsToPeer++;
      this.encapsulator.encapsulate(buf, offset, length);
      return SendResult.Sent;
    }
    this.sendToPeer(buf, offset, length);
    return SendResult.Sent;
  }

  private sendToPeer(buf: Uint8Array, offset: number, length: number): void {
    this.stats.packetsToPeer++;
    this.sendDatagramOn(CONTEXT_ID_IP, undefined, buf, offset, length);
  }

  private sendDatagramOn(
    contextId: number,
    head: Uint8Array | undefined,
    buf: Uint8Array,
    offset: number,
    length: number,
  ): void {
    let n: number;
    if (head === undefined) {
      n = writeDatagramPayload(this.datagramBuffer, 0, contextId, buf, offset, length);
    } else {
      const at = writeDatagramPayload(this.datagramBuffer, 0, contextId, head, 0, head.length);
      if (at + length > this.datagramBuffer.length) return;
      copyBytes(buf, offset, this.datagramBuffer, at, length);
      n = at + length;
    }
    if (this.datagramsInCapsules) {
      // Only when QUIC DATAGRAM is unavailable (RFC 9297 §3.5); never as an oversize fallback.
      this.sendCapsules({ kind: 'datagram', payload: this.datagramBuffer.slice(0, n) });
      return;
    }
    this.output.sendDatagram(this.datagramBuffer, 0, n);
  }

  private icmpToLocal(buf: Uint8Array, offset: number, length: number, kind: IcmpError): void {
    const n = this.buildIcmp(buf, offset, length, kind);
    if (n > 0) this.output.deliverPacket(this.icmpBuffer, 0, n);
  }

  private buildIcmp(buf: Uint8Array, offset: number, length: number, kind: IcmpError): number {
    const now = this.now();
    if (now - this.icmpRefilledAt >= 1000) {
      this.icmpTokens = this.icmpPerSecond;
      this.icmpRefilledAt = now;
    }
    if (this.icmpTokens <= 0) return 0;
    const n = writeIcmpError(
      this.icmpBuffer,
      0,
      buf,
      offset,
      length,
      this.info,
      kind,
      this.maxPacketSize,
    );
    if (n > 0) {
      this.icmpTokens--;
      this.stats.icmpSent++;
    }
    return n;
  }

  private countDrop(verdict: Verdict): void {
    if (verdict === Verdict.SourceNotAllowed) this.stats.droppedSource++;
    else if (verdict === Verdict.DestinationNotAllowed) this.stats.droppedDestination++;
    else this.stats.droppedPolicy++;
  }
}
