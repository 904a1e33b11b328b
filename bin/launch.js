// Shared by the bin/ shims: runs a compiled entry point, or says how to build it.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export async function launch(entry) {
  const file = join(root, 'dist', entry);
  if (!existsSync(file)) {
    process.stderr.write(
      `masque-vpn is not built (${entry} missing): run \`npm run setup\` first\n`,
    );
    process.exit(1);
  }
  await import(pathToFileURL(file).href);
}
