// `controlplane`: the control plane daemon. Starts on embedded defaults (data directory ./var/mq,
// unix socket control.sock in it, pools 10.77.0.0/16 and fd77::/64, a CA made on first start).
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { startControlPlane } from './daemon.js';
import { ApiError } from './service/errors.js';

const program = new Command('controlplane')
  .description(
    'masque-vpn control plane: users, devices, certificates, address pools and policy over gRPC',
  )
  .option('--config <file>', 'TOML configuration file')
  .option('--data-dir <dir>', 'data directory: database, CA, control.sock (default ./var/mq)')
  .option('--grpc <host:port>', 'also serve gRPC over TCP with mTLS (remote admins, data planes)')
  .option(
    '--endpoint <host:port>',
    'UDP endpoint clients dial, written into bundles (repeatable; default 127.0.0.1:4433)',
    (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
  )
  .option('--server-name <name>', 'TLS server name of the data planes (default localhost)')
  .option('--metrics <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics')
  .addOption(
    new Option('--log-level <level>', 'log level').choices([
      'trace',
      'debug',
      'info',
      'warn',
      'error',
      'fatal',
      'silent',
    ]),
  )
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : 2);
  });

program.parse(process.argv);
const opts = program.opts<{
  config?: string;
  dataDir?: string;
  grpc?: string;
  endpoint?: string[];
  serverName?: string;
  metrics?: string;
  logLevel?: string;
}>();

let config;
try {
  config = loadConfig(opts.config, opts);
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`controlplane: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const log = pino({ name: 'controlplane', level: config.log_level });
let running;
try {
  running = await startControlPlane(config, log);
} catch (err) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`controlplane: ${message}\n`);
  process.exit(err instanceof ConfigError || err instanceof ApiError ? 2 : 1);
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) {
    log.warn({ signal }, 'second signal: exiting now');
    process.exit(1);
  }
  stopping = true;
  log.info({ signal }, 'shutting down');
  running.stop(5_000).then(
    () => {
      log.info('stopped');
      process.exit(0);
    },
    (err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
