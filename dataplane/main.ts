// `dataplane`: the server daemon's command line. Parses flags and the config file into one
// validated configuration, then hands over to the supervisor. User errors are one line, exit 1.
import { Command, InvalidArgumentError, Option } from 'commander';
import { buildConfig, ConfigError, loadConfigFile, type DataplaneConfig } from './daemon/config.js';

function integer(name: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
    return Number(value);
  };
}

const program = new Command('dataplane')
  .description(
    [
      'masque-vpn data plane: terminates QUIC + HTTP/3 CONNECT-IP tunnels and forwards their IP',
      'packets through a TUN device. Shards connections over worker threads sharing one UDP port.',
      'It fetches its server certificate, the CA, the address pools and settings from the control',
      'plane, and asks it to authorize every tunnel.',
    ].join('\n'),
  )
  .option(
    '-c, --config <file>',
    'TOML config file (keys as the long flags, with _; unknown keys are errors)',
  )
  .option(
    '--control <address>',
    'control plane: unix:PATH, or tcp://HOST:PORT (gRPC with mTLS, see --join-token)',
  )
  .option('--control-ca <file>', "over TCP: the control plane's CA (PEM, from `vpnctl cert ca`)")
  .option(
    '--control-server-name <name>',
    "over TCP: the name in the control plane's certificate (default: the host of --control)",
  )
  .option(
    '--join-token <token>',
    'over TCP, first start: one-time token from `vpnctl dataplane token`',
  )
  .option('--state-dir <dir>', 'where the identity from joining is kept (default ./var/dataplane)')
  .option('--listen <host:port>', 'UDP address for QUIC (default 0.0.0.0:4433)')
  .option(
    '-w, --workers <n>',
    'shard worker threads (default: number of cores)',
    integer('--workers'),
  )
  .option('--tun <name>', 'TUN device name (default mqvpn0)')
  .option('--mtu <bytes>', 'TUN MTU (default 1280)', integer('--mtu'))
  .option('--fec <on|off>', "answer clients' FEC offers (default on; [fec] in the file for more)")
  .option('--nat', 'enable forwarding and masquerading for the client pools (undone on exit)')
  .option(
    '--drain <seconds>',
    'on SIGTERM, how long clients get to leave after GOAWAY (default 5)',
    integer('--drain'),
  )
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .addOption(
    new Option('--log-level <level>', 'log level').choices([
      'trace',
      'debug',
      'info',
      'warn',
      'error',
      'fatal',
    ]),
  )
  .addHelpText(
    'after',
    [
      '',
      'Examples:',
      '  dataplane --control unix:./var/mq/control.sock --listen 0.0.0.0:4433 --workers 2',
      '  dataplane --config /etc/masque-vpn/dataplane.toml --metrics 127.0.0.1:9091',
      '  dataplane --control tcp://cp.example:7443 --control-ca ca.crt --join-token TOKEN',
      '',
      'Signals: SIGTERM/SIGINT send GOAWAY, drain, then remove the TUN. SIGHUP re-reads the config',
      'file: log_level, fec, paths, drain_seconds and metrics apply at once; other keys need a',
      'restart (logged). An invalid file is refused and the running configuration kept.',
    ].join('\n'),
  )
  .showHelpAfterError('(run dataplane --help for usage)')
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

program.parse(process.argv);
const opts = program.opts<{
  config?: string;
  control?: string;
  controlCa?: string;
  controlServerName?: string;
  joinToken?: string;
  stateDir?: string;
  listen?: string;
  workers?: number;
  tun?: string;
  mtu?: number;
  nat?: boolean;
  fec?: string;
  drain?: number;
  metrics?: string;
  logLevel?: DataplaneConfig['log_level'];
}>();

const flags = {
  control: opts.control,
  control_ca: opts.controlCa,
  control_server_name: opts.controlServerName,
  join_token: opts.joinToken,
  state_dir: opts.stateDir,
  listen: opts.listen,
  workers: opts.workers,
  tun_name: opts.tun,
  mtu: opts.mtu,
  nat: opts.nat,
  fec: opts.fec === undefined ? undefined : { enabled: opts.fec },
  drain_seconds: opts.drain,
  metrics: opts.metrics,
  log_level: opts.logLevel,
};
/** The file as it is now, under the same flags (they keep winning over the file on SIGHUP). */
const readConfig = (): DataplaneConfig =>
  buildConfig(
    opts.config === undefined ? undefined : loadConfigFile(opts.config),
    flags,
    opts.config,
  );

let config: DataplaneConfig;
try {
  config = readConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`dataplane: ${err.message}\n`);
    process.exit(1);
  }
  throw err;
}

const { runDataplane } = await import('./daemon/supervisor.js');
process.exitCode = await runDataplane(config, {
  configFile: opts.config,
  reload: opts.config === undefined ? undefined : readConfig,
});
