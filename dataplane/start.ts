// `npm start`: the main job on embedded defaults. Starts the control plane and then the data plane
// as two child processes (the same commands an operator runs by hand), tells the user what to do
// next, forwards SIGINT/SIGTERM to both and exits when either stops.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = process.env.MASQUE_DATA_DIR ?? join(root, 'var', 'mq');
const socket = join(dataDir, 'control.sock');
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(
    [
      'usage: npm start [-- --workers N]',
      '',
      'Starts the control plane (data in ./var/mq, or $MASQUE_DATA_DIR) and the data plane',
      '(UDP 4433, TUN mqvpn0, workers = cores) together on their embedded defaults.',
      'Extra arguments go to the data plane. Needs root (it creates a TUN device).',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const children: ChildProcess[] = [];
let stopping = false;

function launch(bin: string, argv: string[]): ChildProcess {
  // Own process groups: a Ctrl-C reaches only this supervisor, which then stops the children in
  // order (the data plane drains its clients while the control plane is still there to answer).
  const child = spawn(process.execPath, [join(root, 'bin', bin), ...argv], {
    stdio: 'inherit',
    detached: true,
  });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(
        `start: ${bin} stopped (${signal ?? `exit ${code}`}); stopping the rest\n`,
      );
      stop(code ?? 1);
    }
  });
  return child;
}

function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  void (async () => {
    // Newest first: the data plane, then the control plane.
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    }
    process.exit(code);
  })();
}

process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

launch('controlplane.js', ['--data-dir', dataDir]);
const deadline = Date.now() + 30_000;
while (!existsSync(socket)) {
  if (stopping) break;
  if (Date.now() > deadline) {
    process.stderr.write(`start: the control plane did not create ${socket} within 30 s\n`);
    stop(1);
    break;
  }
  await new Promise((r) => setTimeout(r, 100));
}
if (!stopping) {
  launch('dataplane.js', ['--control', `unix:${socket}`, ...args]);
  process.stdout.write(
    [
      '',
      'masque-vpn is starting: control plane (gRPC on ' + socket + ') and data plane (UDP 4433).',
      'Next steps, in another shell from this folder:',
      '  npx vpnctl user add alice --out alice.toml     # a user, its addresses and a config bundle',
      '  npx masque-client --config alice.toml           # on the client machine, as root',
      '  npx masque-client status                        # what the tunnel is doing',
      'Stop with Ctrl-C.',
      '',
    ].join('\n'),
  );
}
