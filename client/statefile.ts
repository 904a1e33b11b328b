// What this run changed on the host, written after every change, so that a run after a crash
// can undo exactly that and nothing else (issue 6: "stale routes from a previous run are detected
// and cleaned at start"). Written atomically (temp file + rename): a crash mid-write leaves the
// previous record, never half a record.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';

const pinSchema = z.object({ prefix: z.string(), dev: z.string(), via: z.string().optional() });

const dnsSchema = z.discriminatedUnion('mode', [
  z.object({
    mode: z.literal('resolv.conf'),
    path: z.string(),
    /** Copy of the original file; absent when the original was a symlink or did not exist. */
    backup: z.string().optional(),
    /** The original was a symlink to this target (systemd-resolved, resolvconf). */
    symlink: z.string().optional(),
  }),
  z.object({ mode: z.literal('resolvectl'), link: z.string() }),
]);

const stateSchema = z.object({
  version: z.literal(1),
  pid: z.number().int(),
  tun: z.string(),
  createdTun: z.boolean(),
  addresses: z.array(z.string()),
  routes: z.array(z.string()),
  pins: z.array(pinSchema),
  dns: dnsSchema.optional(),
});

export type PinnedRoute = z.infer<typeof pinSchema>;
export type DnsRecord = z.infer<typeof dnsSchema>;
export type NetState = z.infer<typeof stateSchema>;

export class StateFile {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  /** The recorded state, or undefined when there is none (or it is unreadable: then nothing is
   * known to undo, and undoing a guess would be worse). */
  read(): NetState | undefined {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return undefined;
    }
    try {
      const parsed = stateSchema.safeParse(JSON.parse(text));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  write(state: NetState): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    renameSync(temp, this.path);
  }

  remove(): void {
    rmSync(this.path, { force: true });
  }
}

/** True when a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
