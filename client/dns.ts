// Opt-in DNS: point the host's resolver at the tunnel's DNS servers, and put everything back on
// exit. With systemd-resolved (resolvectl present and running) the servers are set per link, so
// they vanish with the TUN by construction; otherwise /etc/resolv.conf is replaced and the
// original (file or symlink) is restored from a backup recorded in the state file.
import { existsSync } from 'node:fs';
import { lstat, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import type { CommandRunner } from './ip.js';
import type { DnsRecord } from './statefile.js';

export interface DnsOptions {
  readonly run: CommandRunner;
  /** Normally /etc/resolv.conf. */
  readonly resolvConf: string;
  /** Where the original resolv.conf is copied before it is replaced. */
  readonly backupPath: string;
  /** Use resolvectl; by default when systemd-resolved is running. */
  readonly useResolvectl?: boolean;
}

export function resolvedRunning(): boolean {
  return existsSync('/run/systemd/resolve/io.systemd.Resolve');
}

export class DnsControl {
  readonly #o: DnsOptions;

  constructor(options: DnsOptions) {
    this.#o = options;
  }

  /** Applies `servers` for `tun`; returns what to record so that restore() can undo it. */
  async apply(tun: string, servers: readonly string[]): Promise<DnsRecord> {
    if (this.#o.useResolvectl ?? resolvedRunning()) {
      await this.#o.run('resolvectl', ['dns', tun, ...servers]);
      // "~." makes this link the route for every domain: a full-tunnel resolver.
      await this.#o.run('resolvectl', ['domain', tun, '~.']);
      return { mode: 'resolvectl', link: tun };
    }
    const path = this.#o.resolvConf;
    const record: DnsRecord = { mode: 'resolv.conf', path };
    const info = await lstat(path).catch(() => undefined);
    if (info?.isSymbolicLink()) {
      record.symlink = await readlink(path);
    } else if (info) {
      await writeFile(this.#o.backupPath, await readFile(path), { mode: 0o600 });
      record.backup = this.#o.backupPath;
    }
    const body = servers.map((s) => `nameserver ${s}\n`).join('');
    // Unlink first: writing through a symlink would edit the resolver manager's own file.
    await rm(path, { force: true });
    await writeFile(path, `# written by masque-client for ${tun}; restored on exit\n${body}`, {
      mode: 0o644,
    });
    return record;
  }

  async restore(record: DnsRecord): Promise<void> {
    if (record.mode === 'resolvectl') {
      // The link may be gone already (that reverts it too); nothing else to undo then.
      await this.#o.run('resolvectl', ['revert', record.link]).catch(() => undefined);
      return;
    }
    if (record.symlink !== undefined) {
      await rm(record.path, { force: true });
      await symlink(record.symlink, record.path);
    } else if (record.backup !== undefined) {
      const original = await readFile(record.backup);
      await writeFile(record.path, original);
      await rm(record.backup, { force: true });
    } else {
      // There was no resolv.conf before: remove ours.
      await rm(record.path, { force: true });
    }
  }
}
