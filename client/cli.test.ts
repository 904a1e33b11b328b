// The CLI as people run it: `node bin/masque-client.js …` in a child process, checking the one
// line it prints and the exit code. Every bad-bundle case of issue 6 is here.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleText, makePki, type BundleParts, type Pki } from './pki-fixture.js';
import { buildStatus, ControlServer } from './status.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'masque-client.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Result> {
  return new Promise((done) => {
    execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? -1) : 0;
      done({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

let pki: Pki;
let dir: string;
let n = 0;

function bundle(parts: BundleParts = {}, raw?: string): string {
  const file = join(dir, `b${n++}.toml`);
  writeFileSync(file, raw ?? bundleText(pki, parts), { mode: 0o600 });
  return file;
}

/** Exactly one line on stderr, matching `pattern`, nothing on stdout, exit `code`. */
function assertOneLine(r: Result, pattern: RegExp, code = 1): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stdout, '');
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0], pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

before(() => {
  pki = makePki();
  dir = mkdtempSync(join(tmpdir(), 'mqc-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe(
  'masque-client CLI: bad bundles exit 1 with one line naming the problem',
  { concurrency: 6 },
  () => {
    const cases: [string, () => string, RegExp][] = [
      [
        'missing file',
        () => join(dir, 'absent.toml'),
        /absent\.toml: cannot read the bundle \(no such file\)$/,
      ],
      ['missing key', () => bundle({ omit: ['cert'] }), /: missing key tls\.cert$/],
      ['missing server', () => bundle({ omit: ['endpoints'] }), /: missing key server\.endpoints$/],
      ['unknown key', () => bundle({ top: 'colour = "blue"\n' }), /: unknown key colour$/],
      ['not TOML', () => bundle({}, 'version = 1\n[server\n'), /: not valid TOML/],
      [
        'unreadable certificate',
        () => bundle({ cert: 'garbage' }),
        /: tls\.cert is not a PEM certificate$/,
      ],
      [
        'unreadable key',
        () => bundle({ key: 'garbage' }),
        /: tls\.key is not a readable private key$/,
      ],
      [
        'certificate/key mismatch',
        () => bundle({ key: pki.strayKeyPem }),
        /certificate\/key mismatch/,
      ],
      [
        'expired certificate',
        () => bundle({ cert: pki.expired.certPem, key: pki.expired.keyPem }),
        /the client certificate \(tls\.cert\) expired on /,
      ],
      [
        'not yet valid certificate',
        () => bundle({ cert: pki.notYetValid.certPem, key: pki.notYetValid.keyPem }),
        /is not valid before /,
      ],
      [
        'certificate from another CA',
        () => bundle({ cert: pki.foreign.certPem, key: pki.foreign.keyPem }),
        /tls\.cert was not signed by tls\.ca/,
      ],
      ['bad MTU', () => bundle({ mtu: 100 }), /tunnel\.mtu 100 is out of range \(1280-9000\)$/],
      [
        'unresolvable server',
        () => bundle({ endpoint: 'no-such-host.invalid:4433' }),
        /server no-such-host\.invalid cannot be resolved/,
      ],
      ['unknown version', () => bundle({ version: 7 }), /bundle format version 7 is not supported/],
    ];
    for (const [name, file, pattern] of cases) {
      it(name, async () => {
        assertOneLine(
          await cli(['--config', file()]),
          new RegExp(`^masque-client: .*${pattern.source}`),
        );
      });
    }

    it(
      'unreadable file (permissions)',
      { skip: process.getuid?.() === 0 ? 'root reads anything' : false },
      async () => {
        const file = bundle();
        chmodSync(file, 0o000);
        assertOneLine(
          await cli(['--config', file]),
          /cannot read the bundle \(permission denied\)$/,
        );
      },
    );
  },
);

describe('masque-client CLI: flags', { concurrency: 4 }, () => {
  it('--help prints usage and exits 0', async () => {
    const r = await cli(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: masque-client --config FILE/);
    for (const flag of [
      '--tun',
      '--mtu',
      '--metrics',
      '--log-level',
      '--template',
      '--no-address-request',
      '--static-address',
      '--static-route',
      '--dns',
      '--control-socket',
    ]) {
      assert.ok(r.stdout.includes(flag), `help mentions ${flag}`);
    }
    const s = await cli(['status', '--help']);
    assert.equal(s.code, 0);
    assert.match(s.stdout, /--json/);
  });

  it('usage errors exit 2', async () => {
    assertOneLine(await cli([]), /required option '--config <file>' not specified/, 2);
    assertOneLine(await cli(['--config']), /argument missing/, 2);
    assertOneLine(await cli(['--confg', 'x']), /unknown option '--confg'/, 2);
    assertOneLine(await cli(['--config', 'x', '--mtu', 'big']), /--mtu needs a whole number/, 2);
  });

  it('bad flag values exit 1 naming the flag', async () => {
    const file = bundle();
    assertOneLine(await cli(['--config', file, '--mtu', '70000']), /--mtu 70000 is out of range/);
    assertOneLine(
      await cli(['--config', file, '--static-route', '10.0.0.1/8']),
      /--static-route: "10\.0\.0\.1\/8" has host bits set/,
    );
    assertOneLine(
      await cli(['--config', file, '--static-address', 'nope']),
      /--static-address: "nope" is not an IP address/,
    );
    assertOneLine(
      await cli(['--config', file, '--tun', 'a-name-far-too-long']),
      /--tun "a-name-far-too-long" is not a valid interface name/,
    );
    assertOneLine(
      await cli(['--config', file, '--metrics', 'localhost']),
      /--metrics "localhost" is not HOST:PORT/,
    );
    assertOneLine(
      await cli(['--config', file, '--template', 'vpn']),
      /--template "vpn" must start with \//,
    );
    assertOneLine(await cli(['--config', file, '--dns']), /--dns: .* names no DNS servers/);
  });

  it('status asks the running client: human summary, or --json for scripts', async () => {
    const stateDir = join(dir, 'state-live');
    const snapshot = buildStatus(
      {
        state: 'up',
        stateSince: Date.now(),
        startedAt: Date.now() - 5000,
        connectedAt: Date.now() - 3000,
        reconnects: 1,
        failedAttempts: 0,
        lastError: undefined,
        deniedReason: undefined,
        addresses: ['10.77.0.2/32'],
        routes: ['10.77.0.0/16'],
        traffic: { bytesSent: 1, bytesReceived: 2, packetsSent: 3, packetsReceived: 4 },
        droppedWhileDown: 0,
        rttMs: 1.5,
        lossRatio: 0,
        fec: undefined,
        nextAttemptAt: undefined,
      },
      {
        tun: 'mq7',
        identity: 'alice/laptop',
        serverName: 'vpn.test',
        endpoints: ['10.200.0.1:4433'],
      },
      Date.now(),
    );
    const server = await ControlServer.listen(join(stateDir, 'mq7.sock'), () => snapshot);
    try {
      // The only socket in the state directory is found without --tun.
      const human = await cli(['status', '--state-dir', stateDir]);
      assert.equal(human.code, 0, human.stderr);
      assert.match(human.stdout, /^state: +up for 3s$/m);
      assert.match(human.stdout, /^addresses: +10\.77\.0\.2\/32$/m);
      const json = await cli(['status', '--json', '--control-socket', join(stateDir, 'mq7.sock')]);
      assert.equal(json.code, 0, json.stderr);
      assert.deepEqual(JSON.parse(json.stdout), JSON.parse(JSON.stringify(snapshot)));
    } finally {
      await server.close();
    }
  });

  it('status without a running client says so', async () => {
    const stateDir = join(dir, 'state');
    mkdirSync(stateDir, { recursive: true });
    assertOneLine(
      await cli(['status', '--state-dir', stateDir]),
      /no masque-client is running \(no control socket at .*mq0\.sock\)/,
    );
  });
});
