// `masque-bench impair`: runs the UDP impairment proxy until SIGINT/SIGTERM (or --duration).
import { type ImpairmentConfig, validateImpairment } from './model.js';
import { AddressError, type ImpairProxy, startImpairProxy } from './proxy.js';
import { parseBurst, parseDuration, parsePercent, parseRate } from './units.js';

const USAGE = `usage: masque-bench impair --listen HOST:PORT --target HOST:PORT [impairments]

  --loss P            random loss, e.g. 5%
  --burst p,r[,b[,g]] Gilbert–Elliott loss: P(good→bad), P(bad→good), loss in bad (100%), in good (0%)
  --delay T           one-way delay, e.g. 10ms
  --jitter T          delay varies uniformly by ±T
  --reorder P         share of packets held back (--reorder-delay, default max(delay, 5ms))
  --reorder-delay T
  --rate R            bottleneck rate, e.g. 100mbit, 1gbit (tc units: mbps = megabytes/s)
  --queue T           bottleneck queue before drop-tail (default 100ms)
  --direction D       both (default), up (client→target) or down (target→client)
  --seed N            fixes every random decision (default 1)
  --duration T        stop after T (default: run until SIGINT/SIGTERM)
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface ImpairCli {
  listen: string;
  target: string;
  impairment: ImpairmentConfig;
  direction: 'both' | 'up' | 'down';
  seed: number;
  durationMs?: number;
}

export function parseImpairArgs(argv: readonly string[]): ImpairCli | 'help' {
  const c: Partial<ImpairCli> & { impairment: ImpairmentConfig } = {
    impairment: {},
    direction: 'both',
    seed: 1,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return 'help';
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--'))
      throw new UsageError(`${flag} needs a value`);
    i++;
    const im = c.impairment;
    switch (flag) {
      case '--listen':
        c.listen = value;
        break;
      case '--target':
        c.target = value;
        break;
      case '--loss':
        im.loss = parsePercent(value);
        break;
      case '--burst':
        im.burst = parseBurst(value);
        break;
      case '--delay':
        im.delayMs = parseDuration(value);
        break;
      case '--jitter':
        im.jitterMs = parseDuration(value);
        break;
      case '--reorder':
        im.reorder = parsePercent(value);
        break;
      case '--reorder-delay':
        im.reorderDelayMs = parseDuration(value);
        break;
      case '--rate':
        im.rateBps = parseRate(value);
        break;
      case '--queue':
        im.queueMs = parseDuration(value);
        break;
      case '--direction':
        if (value !== 'both' && value !== 'up' && value !== 'down') {
          throw new UsageError('--direction is both, up or down');
        }
        c.direction = value;
        break;
      case '--seed':
        if (!/^\d+$/.test(value)) throw new UsageError('--seed is a non-negative integer');
        c.seed = Number(value) >>> 0;
        break;
      case '--duration':
        c.durationMs = parseDuration(value);
        break;
      default:
        throw new UsageError(`unknown option ${flag}`);
    }
  }
  if (c.listen === undefined || c.target === undefined) {
    throw new UsageError('--listen and --target are required');
  }
  validateImpairment(c.impairment);
  return c as ImpairCli;
}

export async function main(argv: string[]): Promise<number> {
  let cli: ImpairCli | 'help';
  try {
    cli = parseImpairArgs(argv);
  } catch (err) {
    process.stderr.write(`masque-bench impair: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (cli === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const none: ImpairmentConfig = {};
  let proxy: ImpairProxy;
  try {
    proxy = await startImpairProxy({
      listen: cli.listen,
      target: cli.target,
      up: cli.direction === 'down' ? none : cli.impairment,
      down: cli.direction === 'up' ? none : cli.impairment,
      seed: cli.seed,
    });
  } catch (err) {
    process.stderr.write(`masque-bench impair: ${(err as Error).message}\n`);
    return err instanceof AddressError ? 2 : 1;
  }
  const a = proxy.address;
  process.stdout.write(
    `impair: ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port} → ${cli.target}\n`,
  );
  await new Promise<void>((resolve) => {
    const timer =
      cli.durationMs !== undefined ? setTimeout(() => stop(), cli.durationMs) : undefined;
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      if (timer !== undefined) clearTimeout(timer);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const s = proxy.stats();
  await proxy.close();
  for (const [name, d] of [
    ['up', s.up],
    ['down', s.down],
  ] as const) {
    const lossPct = d.packets > 0 ? ((100 * (d.lost + d.queueDrops)) / d.packets).toFixed(2) : '0';
    process.stdout.write(
      `${name.padEnd(4)} packets ${d.packets}  forwarded ${d.forwarded}  lost ${d.lost}` +
        `  queue drops ${d.queueDrops}  reordered ${d.reordered}  (${lossPct}% dropped)\n`,
    );
  }
  return 0;
}
