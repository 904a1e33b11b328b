// Where a packet from a client goes once its tunnel has checked it (source, destination, policy):
// to another client of the data plane (hairpin: the same shard at once, another shard through
// its hairpin ring), or else to the TUN writer for the kernel. Client-to-client traffic thus
// never depends on the host's forwarding settings or firewall, and it costs one ring hop instead
// of a TUN write, a kernel route lookup and a TUN read.
//
// The receiving tunnel's own egress checks still apply when it sends (`Tunnel.sendPacket`): the
// destination must be an address assigned to its client and the source inside the routes
// advertised to that client, and TTL / Hop Limit is decremented there (one router hop, as the
// kernel path would count it).
import { readWord } from '../ring/ip-address.js';
import { ROUTE_NONE, routeSession, routeShard, type RouteTable } from '../ring/route-table.js';
import type { RingProducer } from '../ring/spsc.js';
import { copyBytes } from '../masque/bytes.js';

export const SwitchPath = {
  /** Not a client address: to the TUN (the server itself or, with forwarding, beyond). */
  Tun: 0,
  /** A client on this shard: handed to its tunnel directly. */
  Local: 1,
  /** A client on another shard: through the hairpin ring to that shard. */
  Shard: 2,
  /** The ring it needed was full (or the packet was larger than a slot): counted, dropped. */
  Dropped: 3,
} as const;
export type SwitchPath = (typeof SwitchPath)[keyof typeof SwitchPath];

export interface SwitchCounters {
  tun: number;
  local: number;
  shard: number;
  tunDrops: number;
  hairpinDrops: number;
}

export interface PacketSwitchOptions {
  /** This shard's id. */
  shard: number;
  routes: RouteTable;
  toTun: RingProducer;
  /** `toShards[d]`: the hairpin ring to shard d (undefined for this shard). */
  toShards: readonly (RingProducer | undefined)[];
  /** Delivers a packet to the tunnel in `slot` of this shard (synchronously; the view is borrowed). */
  local(slot: number, packet: Uint8Array, offset: number, length: number): void;
}

/**
 * Route of the destination of the IP packet at `packet[offset..offset+length)`, read in place
 * (no view allocated); `ROUTE_NONE` for anything that is not a well-formed IPv4/IPv6 header.
 */
export function destinationRoute(
  routes: RouteTable,
  packet: Uint8Array,
  offset: number,
  length: number,
): number {
  if (length < 1) return ROUTE_NONE;
  const version = packet[offset] >> 4;
  if (version === 4 && length >= 20) return routes.lookupV4(readWord(packet, offset + 16));
  if (version === 6 && length >= 40) {
    return routes.lookupV6(
      readWord(packet, offset + 24),
      readWord(packet, offset + 28),
      readWord(packet, offset + 32),
      readWord(packet, offset + 36),
    );
  }
  return ROUTE_NONE;
}

export class PacketSwitch {
  readonly counters: SwitchCounters = { tun: 0, local: 0, shard: 0, tunDrops: 0, hairpinDrops: 0 };
  private readonly opts: PacketSwitchOptions;

  constructor(opts: PacketSwitchOptions) {
    this.opts = opts;
  }

  forward(packet: Uint8Array, offset: number, length: number): SwitchPath {
    const o = this.opts;
    const route = destinationRoute(o.routes, packet, offset, length);
    if (route < 0) {
      if (!copyInto(o.toTun, packet, offset, length, 0)) {
        this.counters.tunDrops++;
        return SwitchPath.Dropped;
      }
      this.counters.tun++;
      return SwitchPath.Tun;
    }
    const shard = routeShard(route);
    const slot = routeSession(route);
    if (shard === o.shard) {
      this.counters.local++;
      o.local(slot, packet, offset, length);
      return SwitchPath.Local;
    }
    const ring = o.toShards[shard];
    if (ring === undefined || !copyInto(ring, packet, offset, length, slot)) {
      this.counters.hairpinDrops++;
      return SwitchPath.Dropped;
    }
    this.counters.shard++;
    return SwitchPath.Shard;
  }
}

/** Copies a packet into the ring's next slot and commits it; false (drop counted) when full. */
function copyInto(
  ring: RingProducer,
  packet: Uint8Array,
  offset: number,
  length: number,
  tag: number,
): boolean {
  const slot = ring.reserve();
  if (slot === null || length > slot.length) {
    ring.countDrop();
    return false;
  }
  copyBytes(packet, offset, slot, 0, length);
  ring.commit(length, tag);
  return true;
}
