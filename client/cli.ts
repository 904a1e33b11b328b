// The command line: `masque-client --config FILE …` runs the client, `masque-client status`
// asks a running one. User errors are one line on stderr and exit 1; a malformed command line
// exits 2; nothing a person can cause prints a stack trace.
import { Command, CommanderError, Option } from 'commander';
import { ClientError, EXIT_OK, EXIT_USAGE, EXIT_USER } from './errors.js';
import {
  DEFAULT_STATE_DIR,
  DEFAULT_TUN,
  LOG_LEVELS,
  runClient,
  socketPath,
  type LogLevel,
  type RunDeps,
} from './run.js';
import { formatStatus, queryStatus } from './status.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Everything runClient needs besides the parsed flags. */
export type CliDeps = RunDeps;

class UsageError extends Error {}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function integer(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new UsageError(`${flag} needs a whole number, not "${value}"`);
    return Number(value);
  };
}

interface RootFlags {
  config?: string;
  key?: string;
  tun: string;
  mtu?: number;
  metrics?: string;
  logLevel: LogLevel;
  template?: string;
  addressRequest: boolean;
  staticAddress?: string[];
  staticRoute?: string[];
  dns?: boolean;
  controlSocket?: string;
  stateDir: string;
}

interface StatusFlags {
  json?: boolean;
  controlSocket?: string;
  tun?: string;
  stateDir: string;
}

/** The socket `status` talks to: explicit, or the TUN's, or the only one in the state dir. */
export function findSocket(flags: StatusFlags): string {
  if (flags.controlSocket !== undefined || flags.tun !== undefined) {
    return socketPath(flags.stateDir, flags.tun ?? DEFAULT_TUN, flags.controlSocket);
  }
  let sockets: string[] = [];
  try {
    sockets = readdirSync(flags.stateDir).filter((f) => f.endsWith('.sock'));
  } catch {
    // No state directory: no client has run; the default path gives the clearest message.
  }
  if (sockets.length > 1) {
    throw new ClientError(
      `several clients are running (${sockets.map((s) => s.replace(/\.sock$/, '')).join(', ')}); pick one with --tun`,
    );
  }
  return sockets.length === 1
    ? join(flags.stateDir, sockets[0])
    : socketPath(flags.stateDir, DEFAULT_TUN);
}

function program(io: CliIo, deps: CliDeps, setCode: (code: number) => void): Command {
  const root = new Command('masque-client')
    .description('VPN client: IP over MASQUE CONNECT-IP (RFC 9484) on HTTP/3 and QUIC')
    .usage('--config FILE [options]\n       masque-client status [--json]')
    .configureOutput({
      writeOut: (t) => io.stdout(t),
      writeErr: (t) => io.stderr(t),
      // Commander's own messages are already one line ("error: unknown option '--x'").
      outputError: (t, write) => write(`${t.trim().replace(/\s*\n\s*/g, ' ')}\n`),
    })
    .exitOverride()
    // Without this, root options (--state-dir, --control-socket, --tun) would swallow the
    // subcommand's options of the same name.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .option('-c, --config <file>', 'client bundle (TOML, from `vpnctl user add … --out FILE`)')
    .option('--key <file>', 'private key, for a bundle exported from a CSR (it has no tls.key)')
    .option('--tun <name>', 'TUN device name', DEFAULT_TUN)
    .option(
      '--mtu <n>',
      'TUN MTU (1280-9000; default from the bundle, else 1280)',
      integer('--mtu'),
    )
    .option('--metrics <addr>', 'serve Prometheus metrics on HOST:PORT, e.g. 127.0.0.1:9092')
    .addOption(
      new Option('--log-level <level>', 'log level (logs go to stderr)')
        .choices(LOG_LEVELS)
        .default('info'),
    )
    .option('--template <path>', 'CONNECT-IP URI template path, or an absolute https:// template')
    .option('--no-address-request', 'never send ADDRESS_REQUEST (old connect-ip-go proxies)')
    .option(
      '--static-address <cidr>',
      'address to use when the server assigns none (repeatable)',
      collect,
    )
    .option(
      '--static-route <cidr>',
      'route to use when the server advertises none (repeatable)',
      collect,
    )
    .option('--dns', "use the bundle's DNS servers while connected (restored on exit)")
    .option('--control-socket <path>', 'status socket (default STATE_DIR/TUN.sock)')
    .option('--state-dir <dir>', 'where state, backups and the socket live', DEFAULT_STATE_DIR)
    .action(async (flags: RootFlags) => {
      if (flags.config === undefined) {
        throw new UsageError("required option '--config <file>' not specified");
      }
      await runClient(
        {
          config: flags.config,
          key: flags.key,
          tun: flags.tun,
          mtu: flags.mtu,
          metrics: flags.metrics,
          logLevel: flags.logLevel,
          template: flags.template,
          addressRequest: flags.addressRequest,
          staticAddresses: flags.staticAddress ?? [],
          staticRoutes: flags.staticRoute ?? [],
          dns: flags.dns ?? false,
          controlSocket: flags.controlSocket,
          stateDir: flags.stateDir,
        },
        deps,
      );
      setCode(EXIT_OK);
    });

  root
    .command('status')
    .description('show what the running client is doing')
    .option('--json', 'machine-readable output')
    .option('--control-socket <path>', 'status socket of the client to ask')
    .option('--tun <name>', 'ask the client running on this TUN')
    .option('--state-dir <dir>', 'state directory of the client', DEFAULT_STATE_DIR)
    .action(async (flags: StatusFlags) => {
      const status = await queryStatus(findSocket(flags));
      io.stdout(flags.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
      setCode(EXIT_OK);
    });
  return root;
}

/** Parses `argv` (without node and script) and runs; resolves with the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  let code = EXIT_OK;
  const cmd = program(io, deps, (c) => (code = c));
  try {
    await cmd.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are not errors; everything else commander rejects is usage.
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      ) {
        return EXIT_OK;
      }
      return EXIT_USAGE;
    }
    if (err instanceof UsageError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof ClientError) {
      io.stderr(`masque-client: ${err.message}\n`);
      return EXIT_USER;
    }
    // Not a user error: a bug. Still one line (no stack on the terminal), and say so.
    const message = err instanceof Error ? err.message : String(err);
    io.stderr(`masque-client: internal error: ${message}\n`);
    return EXIT_USER;
  }
}
