// `masque-client` entry (bin/masque-client.js imports this). Wires the real packet stack and
// signals into the CLI; everything else lives in cli.ts and run.ts.
import { runCli } from './cli.js';
import { stackDeps } from './stack.js';

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => stop.abort());
}

process.exitCode = await runCli(
  process.argv.slice(2),
  { stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) },
  { ...stackDeps(), stop: stop.signal },
);
// Nothing should be left running; if something is (a socket the stack forgot), do not hang.
setTimeout(() => process.exit(), 2000).unref();
