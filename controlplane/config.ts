// Control plane configuration: embedded defaults, then a TOML file, then command-line flags, all
// validated by one schema. Unknown keys are errors that name the key, so a typo never silently
// falls back to a default.
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):\d{1,5}$/, 'expected HOST:PORT (IPv6 as [::1]:4433)');

const dnsName = z
  .string()
  .regex(
    /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    'expected a DNS name such as vpn.example.com',
  );

export const configSchema = z
  .object({
    data_dir: z.string().min(1).default('./var/mq'),
    /** Optional TCP listener for remote admins and data planes (mTLS). */
    grpc: hostPort.optional(),
    /** UDP endpoints clients dial (written into bundles); the first one also names the server. */
    endpoints: z.array(hostPort).min(1).default(['127.0.0.1:4433']),
    server_name: dnsName.default('localhost'),
    metrics: hostPort.optional(),
    log_level: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info'),
    pools: z
      .object({
        /** "" disables the family. */
        ipv4: z.string().default('10.77.0.0/16'),
        ipv6: z.string().default('fd77::/64'),
      })
      .strict()
      .default({ ipv4: '10.77.0.0/16', ipv6: 'fd77::/64' }),
    tunnel: z
      .object({
        mtu: z.number().int().min(1280).max(9000).default(1280),
        template_path: z
          .string()
          .startsWith('/')
          .default('/.well-known/masque/ip/{target}/{ipproto}/'),
      })
      .strict()
      .default({ mtu: 1280, template_path: '/.well-known/masque/ip/{target}/{ipproto}/' }),
    fec: z
      .object({
        enabled: z.boolean().default(false),
        block_size: z.number().int().min(2).max(255).default(10),
        redundancy_percent: z.number().int().min(1).max(100).default(20),
      })
      .strict()
      .default({ enabled: false, block_size: 10, redundancy_percent: 20 }),
    policy: z
      .object({
        /** Used while no administrator has set one with `vpnctl policy default`. */
        default_action: z.enum(['allow', 'deny']).default('deny'),
      })
      .strict()
      .default({ default_action: 'deny' }),
    ca: z
      .object({
        /** PEM files of an existing CA, imported on first start instead of creating one. */
        cert: z.string().optional(),
        key: z.string().optional(),
        common_name: z.string().min(1).max(64).default('masque-vpn CA'),
      })
      .strict()
      .default({ common_name: 'masque-vpn CA' }),
    certificates: z
      .object({
        client_days: z.number().int().min(1).max(3650).default(365),
        server_days: z.number().int().min(2).max(825).default(90),
      })
      .strict()
      .default({ client_days: 365, server_days: 90 }),
    store: z
      .object({
        /** "full": fsync per commit (survives power loss); "normal": survives kill -9 only. */
        synchronous: z.enum(['full', 'normal']).default('full'),
      })
      .strict()
      .default({ synchronous: 'full' }),
  })
  .strict();

export type ControlPlaneConfig = z.infer<typeof configSchema>;

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

export interface ConfigFlags {
  dataDir?: string;
  grpc?: string;
  endpoint?: string[];
  serverName?: string;
  metrics?: string;
  logLevel?: string;
}

/** File values, overridden by flags, over the defaults; throws ConfigError naming the problem. */
export function buildConfig(
  fileText: string | undefined,
  flags: ConfigFlags,
  fileName = 'config',
): ControlPlaneConfig {
  let raw: Record<string, unknown> = {};
  if (fileText !== undefined) {
    try {
      raw = parseToml(fileText) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`${fileName}: not valid TOML: ${(err as Error).message}`);
    }
  }
  const file = configSchema.safeParse(raw);
  if (!file.success) throw new ConfigError(describeIssues(file.error, fileName));
  const merged: Record<string, unknown> = { ...raw };
  if (flags.dataDir !== undefined) merged.data_dir = flags.dataDir;
  if (flags.grpc !== undefined) merged.grpc = flags.grpc;
  if (flags.endpoint !== undefined && flags.endpoint.length > 0) merged.endpoints = flags.endpoint;
  if (flags.serverName !== undefined) merged.server_name = flags.serverName;
  if (flags.metrics !== undefined) merged.metrics = flags.metrics;
  if (flags.logLevel !== undefined) merged.log_level = flags.logLevel;
  const all = configSchema.safeParse(merged);
  if (!all.success) {
    // The file was valid on its own, so what is wrong now came from a flag: name the flag.
    const flagOf: Record<string, string> = {
      data_dir: '--data-dir',
      grpc: '--grpc',
      endpoints: '--endpoint',
      server_name: '--server-name',
      metrics: '--metrics',
      log_level: '--log-level',
    };
    throw new ConfigError(
      all.error.issues
        .map((i) => `${flagOf[String(i.path[0])] ?? i.path.join('.')}: ${i.message}`)
        .join('\n'),
    );
  }
  return all.data;
}

export function loadConfig(path: string | undefined, flags: ConfigFlags): ControlPlaneConfig {
  let text: string | undefined;
  if (path !== undefined) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
    }
  }
  return buildConfig(text, flags, path);
}
