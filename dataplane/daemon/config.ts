// Data plane configuration: embedded defaults, then a TOML file, then command-line flags, each
// layer validated by one schema so a typo in a file is an error naming the key, not a silent default.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { fecConfigSchema } from '../fec/config.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected HOST:PORT (IPv6 as [::]:4433)');

const controlAddress = z
  .string()
  // tcp://HOST:PORT is HOST:PORT: gRPC over TCP with mTLS.
  .transform((v) => (v.startsWith('tcp://') ? v.slice('tcp://'.length) : v))
  .pipe(
    z
      .string()
      .regex(
        /^(unix:.+|[^:\s/]+:\d{1,5}|\[[0-9a-fA-F:.]+\]:\d{1,5})$/,
        'expected unix:PATH, HOST:PORT or tcp://HOST:PORT',
      ),
  );

export const configSchema = z
  .object({
    listen: hostPort.default('0.0.0.0:4433'),
    workers: z.number().int().min(1).max(64).default(availableParallelism()),
    control: controlAddress.default('unix:./var/mq/control.sock'),
    /** Over TCP: the control plane's CA (PEM file), which its TLS certificate must chain to. */
    control_ca: z.string().min(1).optional(),
    /** Over TCP: the name its TLS certificate must carry (default: the host of `control`). */
    control_server_name: z.string().min(1).optional(),
    /** Over TCP, first start: a one-time token from `vpnctl dataplane token`. */
    join_token: z.string().min(1).optional(),
    /** Where the identity obtained by joining is kept (key and certificate, mode 0600). */
    state_dir: z.string().min(1).default('./var/dataplane'),
    tun_name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,15}$/, 'an interface name of 1-15 letters, digits, _ . -')
      .default('mqvpn0'),
    mtu: z.number().int().min(1280).max(9000).default(1280),
    nat: z.boolean().default(false),
    drain_seconds: z.number().min(0).max(300).default(5),
    metrics: hostPort.optional(),
    log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    /** Extra request paths accepted besides the RFC 9484 default template (e.g. "/vpn"). */
    paths: z.array(z.string().startsWith('/')).default(['/vpn']),
    quic: z
      .object({
        idle_timeout_ms: z.number().int().min(1000).max(600_000).default(30_000),
        keepalive_ms: z.number().int().min(0).max(300_000).default(10_000),
        cc: z.enum(['bbr', 'cubic']).default('bbr'),
      })
      .strict()
      .default({ idle_timeout_ms: 30_000, keepalive_ms: 10_000, cc: 'bbr' }),
    /**
     * FEC (dataplane/fec, same keys as the client's engine). Unlike the client, the proxy accepts
     * by default: it only ever answers an offer, so peers that do not offer are untouched.
     * block_size and max_repair cap what a client may ask for.
     */
    fec: z
      .preprocess(
        (v) =>
          v !== null && typeof v === 'object' && !Array.isArray(v) ? { enabled: true, ...v } : v,
        fecConfigSchema,
      )
      .default(() => fecConfigSchema.parse({ enabled: true })),
  })
  .strict();

export type DataplaneConfig = z.infer<typeof configSchema>;

/** Turns zod's issues into one line per problem, naming the key as the user wrote it. */
export function describeIssues(error: z.ZodError, source: string): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join('.');
      if (issue.code === 'unrecognized_keys') {
        const where = path === '' ? '' : ` in [${path}]`;
        return `${source}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}${where}`;
      }
      return `${source}: ${path === '' ? '' : `'${path}': `}${issue.message}`;
    })
    .join('\n');
}

/**
 * Builds the effective configuration. `fileText` is the TOML file's content (if any), `flags`
 * the values given on the command line (already converted to the schema's types).
 */
export function buildConfig(
  fileText: string | undefined,
  flags: Partial<Record<keyof DataplaneConfig, unknown>>,
  fileName = 'config',
): DataplaneConfig {
  let fromFile: Record<string, unknown> = {};
  if (fileText !== undefined) {
    try {
      fromFile = parseToml(fileText) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(
        `${fileName}: not valid TOML: ${(err as Error).message.split('\n')[0]}`,
      );
    }
    const checked = configSchema.safeParse(fromFile);
    if (!checked.success) throw new ConfigError(describeIssues(checked.error, fileName));
  }
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value;
  // --fec on|off switches the [fec] table of the file on or off and keeps its other keys.
  if (flags.fec !== undefined) {
    const enabled = (flags.fec as { enabled: unknown }).enabled;
    merged.fec = {
      ...(fromFile.fec as object | undefined),
      enabled: enabled === 'on' ? true : enabled === 'off' ? false : enabled,
    };
  }
  const result = configSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(describeIssues(result.error, 'command line'));
  return result.data;
}

export function loadConfigFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? err}`,
    );
  }
}

/** Splits HOST:PORT (with [v6] brackets) into parts. */
export function splitHostPort(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(value);
  if (m === null) throw new ConfigError(`'${value}' is not HOST:PORT`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`port ${port} in '${value}' is out of range`);
  return { host: m[1] ?? m[2], port };
}
