// `vpnctl`: the control plane's admin CLI (see cli.ts).
import { run } from './cli.js';

process.exitCode = await run(process.argv.slice(2), {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
});
