// The peers' programs come from Debian packages, installed by the benchmark itself when missing
// (never by the test suite): the benchmark is the only thing that needs them.
import { execFileSync } from 'node:child_process';

/** Program → Debian package, per peer (and for the per-hop captures of `--hops`). */
const NEEDS: Record<Need, Record<string, string>> = {
  wg: { 'wireguard-go': 'wireguard-go', wg: 'wireguard-tools' },
  ovpn: { openvpn: 'openvpn', openssl: 'openssl' },
  hops: { tcpdump: 'tcpdump' },
};

export type Need = 'wg' | 'ovpn' | 'hops';

function have(program: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore', timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/** Debian packages missing for `peers` (pure apart from the PATH look-ups). */
export function missingPackages(peers: readonly Need[]): string[] {
  const out = new Set<string>();
  for (const p of peers) {
    for (const [program, pkg] of Object.entries(NEEDS[p])) if (!have(program)) out.add(pkg);
  }
  return [...out];
}

function apt(args: string[]): void {
  execFileSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'ignore', 'inherit'],
    timeout: 300_000,
  });
}

/** Installs what is missing with apt-get (one update + retry on failure); returns what was installed. */
export function installPeerPackages(peers: readonly Need[], log: (msg: string) => void): string[] {
  const missing = missingPackages(peers);
  if (missing.length === 0) return [];
  log(`installing ${missing.join(' ')} with apt-get (Debian packages the benchmark needs)`);
  const install = ['install', '-y', '-q', '--no-install-recommends', ...missing];
  try {
    apt(install);
  } catch {
    log('apt-get install failed; running apt-get update and retrying');
    apt(['update', '-q']);
    apt(install);
  }
  const still = missingPackages(peers);
  if (still.length > 0) throw new Error(`still missing after apt-get: ${still.join(' ')}`);
  return missing;
}
