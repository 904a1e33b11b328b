// `--nat`: forwarding and masquerading for the client pools, so clients reach beyond the server.
// Everything done here is recorded and undone on exit: the previous sysctl values are restored and
// our nftables table (one table, our own name) is deleted, leaving the host's own rules untouched.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export class NatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NatError';
  }
}

export interface NatPlan {
  /** Client pools, e.g. ["10.77.0.0/16", "fd77::/64"]. */
  pools: string[];
  /** The TUN device the pools live behind. */
  tun: string;
  /** nftables table name; one per data plane so two instances never collide. */
  table?: string;
}

const SYSCTLS = {
  v4: '/proc/sys/net/ipv4/ip_forward',
  v6: '/proc/sys/net/ipv6/conf/all/forwarding',
} as const;

/** The nftables script for a plan: masquerade pool traffic leaving through any other interface. */
export function natRuleset(plan: NatPlan): string {
  const table = plan.table ?? 'masque_vpn';
  const v4 = plan.pools.filter((p) => !p.includes(':'));
  const v6 = plan.pools.filter((p) => p.includes(':'));
  const lines = [
    `table inet ${table} {`,
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    ...v4.map((p) => `    ip saddr ${p} oifname != "${plan.tun}" masquerade`),
    ...v6.map((p) => `    ip6 saddr ${p} oifname != "${plan.tun}" masquerade`),
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy accept;',
    `    iifname "${plan.tun}" accept`,
    `    oifname "${plan.tun}" ct state established,related accept`,
    '  }',
    '}',
  ];
  return lines.join('\n') + '\n';
}

/** An applied NAT set-up; `undo()` restores what was there before. */
export interface AppliedNat {
  undo(): Promise<void>;
}

async function nft(args: string[], input?: string): Promise<void> {
  try {
    if (input === undefined) {
      await run('nft', args);
    } else {
      await new Promise<void>((resolve, reject) => {
        const child = execFile('nft', args, (err) => (err ? reject(err) : resolve()));
        child.stdin?.end(input);
      });
    }
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new NatError('--nat needs nftables (the nft command) installed');
    throw new NatError(`nft ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

export async function applyNat(plan: NatPlan): Promise<AppliedNat> {
  for (const pool of plan.pools) {
    if (!/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(pool)) throw new NatError(`invalid pool '${pool}'`);
  }
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(plan.tun))
    throw new NatError(`invalid interface '${plan.tun}'`);
  const table = plan.table ?? 'masque_vpn';
  const before: Partial<Record<keyof typeof SYSCTLS, string>> = {};
  for (const [family, path] of Object.entries(SYSCTLS) as [keyof typeof SYSCTLS, string][]) {
    before[family] = (await readFile(path, 'utf8')).trim();
    await writeFile(path, '1\n');
  }
  // A table left by a crashed run is replaced, not duplicated.
  await nft(['delete', 'table', 'inet', table]).catch(() => undefined);
  await nft(['-f', '-'], natRuleset(plan));
  return {
    async undo() {
      await nft(['delete', 'table', 'inet', table]).catch(() => undefined);
      for (const [family, value] of Object.entries(before) as [keyof typeof SYSCTLS, string][]) {
        await writeFile(SYSCTLS[family], `${value}\n`).catch(() => undefined);
      }
    },
  };
}
