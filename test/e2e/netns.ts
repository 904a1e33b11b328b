// End-to-end topology: two network namespaces joined by a veth pair, as in the data plane issue's
// acceptance steps, plus bookkeeping so every namespace and process a test starts is removed when
// the test ends, whether it passed, failed or timed out.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Repository root (this file runs from dist/test/e2e/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface Proc {
  child: ChildProcess;
  name: string;
  /** Everything the process wrote so far (stdout + stderr), for assertions and failure reports. */
  output(): string;
  /** Resolves when `pattern` appears in the output; rejects on exit or after `timeoutMs`. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code/signal. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export class Topology {
  readonly srv: string;
  readonly cli: string;
  readonly dir: string;
  readonly srvAddr = '10.200.0.1';
  readonly cliAddr = '10.200.0.2';
  private readonly procs: Proc[] = [];
  private readonly extraNs: string[] = [];

  private constructor(tag: string) {
    const id = `${tag}${process.pid % 100000}`;
    this.srv = `${id}s`;
    this.cli = `${id}c`;
    this.dir = mkdtempSync(join(tmpdir(), `mq-e2e-${tag}-`));
  }

  /** Creates srv and cli namespaces joined by veth 10.200.0.1/24 <-> 10.200.0.2/24. */
  static async create(tag: string): Promise<Topology> {
    const t = new Topology(tag);
    try {
      await t.ip('netns', 'add', t.srv);
      await t.ip('netns', 'add', t.cli);
      const vs = `v${t.srv}`.slice(0, 15);
      const vc = `v${t.cli}`.slice(0, 15);
      await t.ip('link', 'add', vs, 'type', 'veth', 'peer', 'name', vc);
      await t.ip('link', 'set', vs, 'netns', t.srv);
      await t.ip('link', 'set', vc, 'netns', t.cli);
      await t.ip('-n', t.srv, 'addr', 'add', `${t.srvAddr}/24`, 'dev', vs);
      await t.ip('-n', t.cli, 'addr', 'add', `${t.cliAddr}/24`, 'dev', vc);
      await t.ip('-n', t.srv, '-6', 'addr', 'add', 'fd00:200::1/64', 'dev', vs, 'nodad');
      await t.ip('-n', t.cli, '-6', 'addr', 'add', 'fd00:200::2/64', 'dev', vc, 'nodad');
      for (const [ns, dev] of [
        [t.srv, vs],
        [t.cli, vc],
      ]) {
        await t.ip('-n', ns, 'link', 'set', dev, 'up');
        await t.ip('-n', ns, 'link', 'set', 'lo', 'up');
      }
    } catch (err) {
      await t.destroy();
      throw err;
    }
    return t;
  }

  /** A further namespace (e.g. a second client) joined to srv; removed with the topology. */
  async addClient(name: string, addr: string): Promise<string> {
    const ns = `${this.cli}${name}`.slice(0, 15);
    await this.ip('netns', 'add', ns);
    this.extraNs.push(ns);
    const a = `v${ns}`.slice(0, 15);
    const b = `w${ns}`.slice(0, 15);
    await this.ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    await this.ip('link', 'set', a, 'netns', this.srv);
    await this.ip('link', 'set', b, 'netns', ns);
    await this.ip('-n', ns, 'addr', 'add', `${addr}/32`, 'dev', b);
    await this.ip('-n', ns, 'link', 'set', b, 'up');
    await this.ip('-n', ns, 'link', 'set', 'lo', 'up');
    await this.ip('-n', this.srv, 'link', 'set', a, 'up');
    await this.ip('-n', this.srv, 'route', 'add', `${addr}/32`, 'dev', a);
    await this.ip('-n', ns, 'route', 'add', `${this.srvAddr}/32`, 'dev', b);
    return ns;
  }

  async ip(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('ip', args);
    return stdout;
  }

  /** Runs a command to completion inside a namespace. */
  async exec(
    ns: string,
    argv: string[],
    opts: { timeoutMs?: number; allowFail?: boolean } = {},
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await execFileP('ip', ['netns', 'exec', ns, ...argv], {
        cwd: ROOT,
        timeout: opts.timeoutMs ?? 60_000,
        maxBuffer: 16 << 20,
      });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
      const r = {
        code: typeof err.code === 'number' ? err.code : -1,
        stdout: err.stdout ?? '',
        stderr: err.stderr ?? err.message,
      };
      if (opts.allowFail) return r;
      throw new Error(`${argv.join(' ')} in ${ns} failed (${r.code}): ${r.stderr}${r.stdout}`, {
        cause: e,
      });
    }
  }

  /** Starts one of our bin/ commands (e.g. 'dataplane') inside a namespace. */
  start(ns: string, bin: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
    const argv = ['netns', 'exec', ns, process.execPath, join(ROOT, 'bin', `${bin}.js`), ...args];
    return this.spawnTracked(`${bin}@${ns}`, 'ip', argv, env);
  }

  /** Starts any command inside a namespace (iperf3, ping, ...). */
  startCmd(ns: string, argv: string[]): Proc {
    return this.spawnTracked(`${argv[0]}@${ns}`, 'ip', ['netns', 'exec', ns, ...argv], {});
  }

  private spawnTracked(name: string, cmd: string, argv: string[], env: NodeJS.ProcessEnv): Proc {
    const child = spawn(cmd, argv, {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const waiters = new Set<() => void>();
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.length > 4 << 20) out = out.slice(-(2 << 20));
      for (const w of waiters) w();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    const proc: Proc = {
      child,
      name,
      output: () => out,
      waitFor(pattern, timeoutMs = 20_000) {
        return new Promise((ok, fail) => {
          const check = () => {
            const m = pattern.exec(out);
            if (m) {
              done();
              ok(m);
            }
          };
          const timer = setTimeout(() => {
            done();
            fail(
              new Error(
                `${name}: no ${pattern} within ${timeoutMs} ms; output:\n${out.slice(-4000)}`,
              ),
            );
          }, timeoutMs);
          const onExit = () => {
            done();
            fail(new Error(`${name} exited before ${pattern}; output:\n${out.slice(-4000)}`));
          };
          const done = () => {
            clearTimeout(timer);
            waiters.delete(check);
            child.off('exit', onExit);
          };
          waiters.add(check);
          child.once('exit', onExit);
          check();
        });
      },
      async stop(graceMs = 5_000) {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        return { code: child.exitCode, signal: child.signalCode };
      },
    };
    this.procs.push(proc);
    return proc;
  }

  /** Stops every process (by the PID we started), deletes the namespaces and the temp dir. */
  async destroy(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.stop(3_000).catch(() => undefined)));
    for (const ns of [...this.extraNs, this.cli, this.srv]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // already gone, or never created
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Interfaces present in a namespace (to prove nothing was left behind). */
export async function links(t: Topology, ns: string): Promise<string[]> {
  const out = await t.ip('-n', ns, '-o', 'link', 'show');
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1].trim().split('@')[0]);
}
