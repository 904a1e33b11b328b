// The [fec] configuration section, shared by the data plane and the client. Unknown keys are
// rejected by name; limits match what the header and the negotiation can express.
import { z } from 'zod';
import type { FecScheme } from './code.js';

export const fecConfigSchema = z
  .object({
    /** Offer (client) or accept (server) FEC at all. */
    enabled: z.boolean().default(false),
    /** Schemes in order of preference. */
    schemes: z
      .array(z.enum(['rs', 'xor']))
      .min(1)
      .refine((s) => new Set(s).size === s.length, 'a scheme is listed twice')
      .default(['rs', 'xor']),
    /** Data packets per block (k). */
    block_size: z.number().int().min(1).max(255).default(10),
    /** Largest number of Reed–Solomon repair packets per block (m). */
    max_repair: z.number().int().min(1).max(255).default(4),
    /** Longest wait for a block's repair after its first packet, in ms. */
    flush_ms: z.number().min(0).max(1000).default(5),
    /**
     * A block too short at flush_ms for one repair to stay within the planned ratio waits up to
     * this long (ms after its first packet) for more packets; recovery of a lost packet may wait
     * that long, data packets never do. Equal to flush_ms: never stretch. Default: 20, or
     * flush_ms when that is longer.
     */
    max_flush_ms: z.number().min(0).max(1000).optional(),
    /**
     * Blocks this end fills in turn (1 = none). A burst of up to this many consecutive lost
     * datagrams then costs each block at most one packet. Purely a sender choice (every datagram
     * names its block), so the peer needs nothing. Each block gets 1/interleave of the packets in
     * its flush_ms, so raise flush_ms with it unless the flow is fast.
     */
    interleave: z.number().int().min(1).max(16).default(1),
    /** Follow observed loss; without it every block carries max_repair (RS) or one parity (XOR). */
    adaptive: z.boolean().default(true),
    min_redundancy_percent: z.number().min(0).max(100).default(10),
    max_redundancy_percent: z.number().min(1).max(100).default(40),
    /** Delivered loss the adaptive mode aims for, in percent. */
    target_loss_percent: z.number().min(0.0001).max(10).default(0.05),
    /** Blocks the receiver tracks for reordering and dedupe. */
    window_blocks: z.number().int().min(2).max(16384).default(128),
    /** Receiver memory bound per tunnel for buffered symbols, KiB. */
    max_buffer_kib: z.number().int().min(16).max(65536).default(512),
    /** An incomplete block is given up after this long, ms. */
    hold_ms: z.number().min(1).max(10_000).default(100),
  })
  .strict()
  .transform((c) => ({ ...c, max_flush_ms: c.max_flush_ms ?? Math.max(20, c.flush_ms) }))
  .refine((c) => c.block_size + c.max_repair <= 256, {
    message: 'block_size + max_repair must not exceed 256',
    path: ['max_repair'],
  })
  .refine((c) => c.max_flush_ms >= c.flush_ms, {
    message: 'max_flush_ms is below flush_ms',
    path: ['max_flush_ms'],
  })
  .refine((c) => c.min_redundancy_percent <= c.max_redundancy_percent, {
    message: 'min_redundancy_percent is above max_redundancy_percent',
    path: ['min_redundancy_percent'],
  });

export type FecConfig = z.infer<typeof fecConfigSchema>;

export class FecConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid [fec] configuration: ${problems.join('; ')}`);
    this.name = 'FecConfigError';
  }
}

/** Validates a [fec] table (e.g. from TOML). Every unknown key is named in the error. */
export function parseFecConfig(input: unknown): FecConfig {
  const r = fecConfigSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw new FecConfigError(
    r.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
      }
      return `'${issue.path.join('.')}': ${issue.message}`;
    }),
  );
}

/** The schemes and limits this configuration offers or accepts. */
export function fecPolicy(c: FecConfig): { schemes: FecScheme[]; maxK: number; maxM: number } {
  return { schemes: [...c.schemes], maxK: c.block_size, maxM: c.max_repair };
}
