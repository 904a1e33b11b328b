// Loading the native addon (build/Release/quic.node): the QUIC endpoint and the fd packet reader
// both live in it, since both must run on the calling thread's own libuv loop.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Misuse or failure reported by the transport; `code` is a stable string. */
export class QuicError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'QuicError';
  }
}

function addonPath(): string {
  const override = process.env.MASQUE_QUIC_ADDON;
  if (override) return resolve(override);
  const here = dirname(fileURLToPath(import.meta.url));
  // Running from dist/dataplane/quic/ or from the source folder.
  const candidates = [
    join(here, '..', '..', '..', 'dataplane', 'quic', 'build', 'Release', 'quic.node'),
    join(here, 'build', 'Release', 'quic.node'),
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new QuicError('QUIC addon not built: run `npm run build`', 'ERR_QUIC_NO_ADDON');
  return found;
}

let addon: Record<string, unknown> | undefined;

/** The addon's exports; each user narrows the part it binds to. */
export function loadAddon(): Record<string, unknown> {
  addon ??= createRequire(import.meta.url)(addonPath()) as Record<string, unknown>;
  return addon;
}
