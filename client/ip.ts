// The `ip` (iproute2) commands the client needs, each built as an argument array and run through
// an injected runner: no shell, no string splicing, and tests can record or redirect them (the
// `netns` option runs every command inside a network namespace via `ip -n`).
import { execFile } from 'node:child_process';
import { formatPrefix, type IpPrefix } from './prefix.js';

export class CommandError extends Error {
  readonly command: string;
  readonly stderr: string;
  constructor(command: string, stderr: string) {
    super(`${command}: ${stderr.trim() || 'failed'}`);
    this.name = 'CommandError';
    this.command = command;
    this.stderr = stderr;
  }
}

/** Runs a program with arguments, resolving with stdout; rejects with CommandError. */
export type CommandRunner = (file: string, args: readonly string[]) => Promise<string>;

export const execRunner: CommandRunner = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, [...args], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new CommandError([file, ...args].join(' '), stderr || err.message));
      else resolve(stdout);
    });
  });

/** Where `ip route get` says a destination goes now. */
export interface RouteLookup {
  readonly dev: string;
  readonly gateway: string | undefined;
  /** "local" for addresses of this host: nothing to pin, the local table wins anyway. */
  readonly local: boolean;
}

export interface RouteTarget {
  readonly dev: string;
  readonly via?: string;
}

interface JsonRouteGet {
  type?: string;
  dev?: string;
  gateway?: string;
}

export class IpTool {
  readonly #run: CommandRunner;
  readonly #netns: string | undefined;

  constructor(run: CommandRunner = execRunner, options: { netns?: string } = {}) {
    this.#run = run;
    this.#netns = options.netns;
  }

  #ip(args: readonly string[]): Promise<string> {
    return this.#run('ip', this.#netns ? ['-n', this.#netns, ...args] : args);
  }

  async linkExists(name: string): Promise<boolean> {
    try {
      await this.#ip(['link', 'show', 'dev', name]);
      return true;
    } catch (err) {
      if (err instanceof CommandError && /does not exist/.test(err.stderr)) return false;
      throw err;
    }
  }

  /** A persistent TUN (IFF_TUN | IFF_NO_PI): it outlives the process that attaches to it, which
   * is what keeps routes in place while the client reconnects or restarts its packet I/O. */
  async addTun(name: string): Promise<void> {
    await this.#ip(['tuntap', 'add', 'dev', name, 'mode', 'tun']);
  }

  async setLinkUp(name: string, mtu: number): Promise<void> {
    await this.#ip(['link', 'set', 'dev', name, 'mtu', String(mtu), 'up']);
  }

  async deleteLink(name: string): Promise<void> {
    await this.#ip(['link', 'del', 'dev', name]);
  }

  async addAddress(dev: string, prefix: IpPrefix): Promise<void> {
    // No duplicate address detection on a point-to-point tunnel link (RFC 9484 §7.1): without
    // `nodad` an IPv6 address stays tentative and unusable for a second or so.
    const extra = prefix.version === 6 ? ['nodad'] : [];
    await this.#ip(['addr', 'replace', formatPrefix(prefix), 'dev', dev, ...extra]);
  }

  async deleteAddress(dev: string, prefix: IpPrefix): Promise<void> {
    await this.#ip(['addr', 'del', formatPrefix(prefix), 'dev', dev]);
  }

  async replaceRoute(prefix: IpPrefix, target: RouteTarget): Promise<void> {
    const via = target.via ? ['via', target.via] : [];
    await this.#ip([
      `-${prefix.version}`,
      'route',
      'replace',
      formatPrefix(prefix),
      ...via,
      'dev',
      target.dev,
    ]);
  }

  async deleteRoute(prefix: IpPrefix, target: RouteTarget): Promise<void> {
    await this.#ip([`-${prefix.version}`, 'route', 'del', formatPrefix(prefix), 'dev', target.dev]);
  }

  async routeGet(address: string): Promise<RouteLookup> {
    const out = await this.#ip(['-j', 'route', 'get', address]);
    const parsed = JSON.parse(out) as JsonRouteGet[];
    const first = parsed[0];
    if (!first?.dev) throw new CommandError(`ip route get ${address}`, 'no route');
    return { dev: first.dev, gateway: first.gateway, local: first.type === 'local' };
  }

  /** Destinations routed through `dev` in the main table, as printed by ip ("default" included). */
  async routesVia(dev: string, version: 4 | 6): Promise<string[]> {
    const out = await this.#ip([`-${version}`, '-j', 'route', 'show', 'dev', dev]);
    return (JSON.parse(out || '[]') as { dst: string }[]).map((r) => r.dst);
  }

  /** Addresses on `dev` as CIDR strings. */
  async addressesOf(dev: string): Promise<string[]> {
    const out = await this.#ip(['-j', 'addr', 'show', 'dev', dev]);
    const links = JSON.parse(out || '[]') as {
      addr_info?: { local: string; prefixlen: number; scope?: string }[];
    }[];
    return links.flatMap((l) =>
      (l.addr_info ?? []).filter((a) => a.scope !== 'link').map((a) => `${a.local}/${a.prefixlen}`),
    );
  }
}
