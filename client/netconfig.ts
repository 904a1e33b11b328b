// The host side of the tunnel: the TUN device, its addresses, the routes through it, the host
// routes that keep the server reachable outside it, and DNS. Every address or route set arrives
// whole (RFC 9484 §4.7.1, §4.7.3) and is applied as a difference, so an update never blips
// routes that stay. Everything changed is recorded in the state file before the next step.
import type { DnsControl } from './dns.js';
import { NetConfigError } from './errors.js';
import { CommandError, type IpTool } from './ip.js';
import { formatPrefix, parsePrefix, prefixContains, type IpPrefix } from './prefix.js';
import { processAlive, type NetState, type PinnedRoute, type StateFile } from './statefile.js';
import type { NetworkTarget, SupervisorLog } from './supervisor.js';

export interface NetConfigOptions {
  readonly ip: IpTool;
  readonly tun: string;
  readonly mtu: number;
  /** The server's addresses (every resolved endpoint address): pinned outside the tunnel. */
  readonly servers: readonly string[];
  readonly state: StateFile;
  /** Always given: a crash-recovery may have DNS to restore even when this run does not set it. */
  readonly dns: DnsControl;
  readonly log: SupervisorLog;
}

/** A full-tunnel default becomes two halves: more specific than the existing default, which
 * therefore stays in place (for the pinned server route, and for when we leave). */
export function splitDefault(prefix: IpPrefix): IpPrefix[] {
  if (prefix.length !== 0) return [prefix];
  return prefix.version === 4
    ? [parsePrefix('0.0.0.0/1'), parsePrefix('128.0.0.0/1')]
    : [parsePrefix('::/1'), parsePrefix('8000::/1')];
}

/** Entries of `next` not in `prev`, and of `prev` not in `next`, by canonical text. */
export function diffSets(
  prev: readonly string[],
  next: readonly string[],
): { add: string[]; remove: string[] } {
  const before = new Set(prev);
  const after = new Set(next);
  return {
    add: [...after].filter((x) => !before.has(x)),
    remove: [...before].filter((x) => !after.has(x)),
  };
}

export class NetConfig implements NetworkTarget {
  readonly #o: NetConfigOptions;
  #state: NetState;

  constructor(options: NetConfigOptions) {
    this.#o = options;
    this.#state = {
      version: 1,
      pid: process.pid,
      tun: options.tun,
      createdTun: false,
      addresses: [],
      routes: [],
      pins: [],
    };
  }

  /** What is applied right now (status, tests). */
  get current(): Readonly<NetState> {
    return this.#state;
  }

  /**
   * Undoes what a previous run left behind, then creates the TUN and brings it up. Refuses to
   * touch a device that another live masque-client owns, or one it did not create.
   */
  async prepare(): Promise<void> {
    const { ip, tun, state, log } = this.#o;
    const stale = state.read();
    if (stale) {
      if (stale.pid !== process.pid && processAlive(stale.pid)) {
        throw new NetConfigError(
          `another masque-client (pid ${stale.pid}) is running on ${tun}; stop it or use --tun`,
          'prepare',
        );
      }
      log.warn({ pid: stale.pid, routes: stale.routes.length }, 'cleaning up after a previous run');
      await this.#undo(stale);
      state.remove();
    }
    if (await ip.linkExists(tun)) {
      throw new NetConfigError(
        `a network device named ${tun} already exists; choose another name with --tun`,
        'prepare',
      );
    }
    await this.#step(`ip tuntap add ${tun}`, () => ip.addTun(tun));
    this.#state.createdTun = true;
    this.#save();
    await this.#step(`ip link set ${tun} up`, () => ip.setLinkUp(tun, this.#o.mtu));
  }

  async setAddresses(set: readonly IpPrefix[]): Promise<void> {
    const { ip, tun } = this.#o;
    const next = set.map(formatPrefix);
    const { add, remove } = diffSets(this.#state.addresses, next);
    for (const text of remove) {
      await this.#step(`ip addr del ${text}`, () =>
        ignoreMissing(ip.deleteAddress(tun, parsePrefix(text))),
      );
      this.#state.addresses = this.#state.addresses.filter((a) => a !== text);
      this.#save();
    }
    for (const text of add) {
      await this.#step(`ip addr add ${text}`, () => ip.addAddress(tun, parsePrefix(text)));
      this.#state.addresses = [...this.#state.addresses, text];
      this.#save();
    }
    // Logged for every set, changed or not: each one is a server event worth a line (and the e2e
    // harness waits for these lines).
    this.#o.log.info({ addresses: next, added: add, removed: remove }, 'addresses applied');
  }

  async setRoutes(set: readonly IpPrefix[]): Promise<void> {
    const { ip, tun } = this.#o;
    const kernel = set.flatMap(splitDefault);
    const next = [...new Set(kernel.map(formatPrefix))];
    await this.#pinServers(kernel);
    const { add, remove } = diffSets(this.#state.routes, next);
    // Add before removing: a route that moves to a neighbouring prefix never has a gap.
    for (const text of add) {
      await this.#step(`ip route replace ${text}`, () =>
        ip.replaceRoute(parsePrefix(text), { dev: tun }),
      );
      this.#state.routes = [...this.#state.routes, text];
      this.#save();
    }
    for (const text of remove) {
      await this.#step(`ip route del ${text}`, () =>
        ignoreMissing(ip.deleteRoute(parsePrefix(text), { dev: tun })),
      );
      this.#state.routes = this.#state.routes.filter((r) => r !== text);
      this.#save();
    }
    await this.#unpinUnneeded(kernel);
    this.#o.log.info({ routes: next, added: add, removed: remove }, 'routes applied');
  }

  /** Points the resolver at `servers`; undone by teardown(). */
  async setDns(servers: readonly string[]): Promise<void> {
    if (servers.length === 0 || this.#state.dns) return;
    const record = await this.#o.dns.apply(this.#o.tun, servers);
    this.#state.dns = record;
    this.#save();
    this.#o.log.info({ servers }, 'DNS applied');
  }

  /** Removes everything this run changed: routes, pins, DNS, the TUN, the state file. */
  async teardown(): Promise<void> {
    await this.#undo(this.#state);
    this.#state = { ...this.#state, createdTun: false, addresses: [], routes: [], pins: [] };
    delete this.#state.dns;
    this.#o.state.remove();
  }

  /**
   * A route through the tunnel that covers the server's own address would send the tunnel's
   * packets into itself. Before installing such routes, pin a host route to that address along
   * the path it takes now (`ip route get`, i.e. the current gateway).
   */
  async #pinServers(routes: readonly IpPrefix[]): Promise<void> {
    const { ip, tun } = this.#o;
    for (const server of this.#o.servers) {
      if (!routes.some((r) => prefixContains(r, server))) continue;
      const host = parsePrefix(server);
      const text = formatPrefix(host);
      if (this.#state.pins.some((p) => p.prefix === text)) continue;
      const path = await this.#step(`ip route get ${server}`, () => ip.routeGet(server));
      if (path.local) continue;
      if (path.dev === tun) {
        throw new NetConfigError(
          `the route to the server ${server} already goes through ${tun}; cannot pin it`,
          `ip route get ${server}`,
        );
      }
      const pin: PinnedRoute = { prefix: text, dev: path.dev };
      if (path.gateway) pin.via = path.gateway;
      await this.#step(`ip route replace ${text}`, () => ip.replaceRoute(host, pin));
      this.#state.pins = [...this.#state.pins, pin];
      this.#save();
      this.#o.log.info({ server, via: path.gateway, dev: path.dev }, 'server route pinned');
    }
  }

  async #unpinUnneeded(routes: readonly IpPrefix[]): Promise<void> {
    for (const pin of this.#state.pins) {
      const server = parsePrefix(pin.prefix).address;
      if (routes.some((r) => prefixContains(r, server))) continue;
      await ignoreMissing(this.#o.ip.deleteRoute(parsePrefix(pin.prefix), pin)).catch(() => {});
      this.#state.pins = this.#state.pins.filter((p) => p !== pin);
      this.#save();
    }
  }

  /** Best effort: a step that fails is logged and the rest still runs, so one stuck route does
   * not leave DNS or the TUN behind. */
  async #undo(state: NetState): Promise<void> {
    const { ip, log } = this.#o;
    const attempt = async (what: string, action: () => Promise<void>): Promise<void> => {
      try {
        await ignoreMissing(action());
      } catch (err) {
        log.warn({ err: (err as Error).message }, `cleanup: ${what} failed`);
      }
    };
    for (const route of state.routes) {
      await attempt(`route ${route}`, () => ip.deleteRoute(parsePrefix(route), { dev: state.tun }));
    }
    for (const pin of state.pins) {
      await attempt(`pinned route ${pin.prefix}`, () =>
        ip.deleteRoute(parsePrefix(pin.prefix), pin),
      );
    }
    if (state.dns) {
      const record = state.dns;
      await attempt('DNS restore', () => this.#o.dns.restore(record));
    }
    if (state.createdTun) {
      await attempt(`device ${state.tun}`, () => ip.deleteLink(state.tun));
    }
  }

  async #step<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      const detail = err instanceof CommandError ? err.stderr.trim() : (err as Error).message;
      throw new NetConfigError(`${what} failed: ${detail}`, what);
    }
  }

  #save(): void {
    this.#o.state.write(this.#state);
  }
}

/** Deleting what is already gone is success (the kernel drops routes with their device). */
async function ignoreMissing(action: Promise<void>): Promise<void> {
  try {
    await action;
  } catch (err) {
    if (
      err instanceof CommandError &&
      /No such process|Cannot find device|does not exist|Cannot assign requested address|Address not found/.test(
        err.stderr,
      )
    ) {
      return;
    }
    throw err;
  }
}
