// The data plane daemon's own behaviour seen from outside: client-to-client traffic switched
// inside the data plane (no kernel forwarding) on one shard and across shards, refused with ICMP
// when policy says no; SIGHUP reloading the config file; the server certificate renewed at its
// renew-at time (control plane clock set back with libfaketime) without touching live tunnels; a
// data plane joining a control plane in another namespace over TCP with a one-time token.
// Namespace tags: dh1, dh2, dr, dc, dj.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, ROOT, Topology, type Proc } from './netns.js';
import {
  addUser,
  eventually,
  metric,
  ping,
  scrape,
  startClient,
  startControlPlane,
  startDataplane,
  vpnctl,
  type Stack,
} from './stack.js';

async function addRule(stack: Stack, args: string[]): Promise<number> {
  const rule = JSON.parse(await vpnctl(stack, ['--json', 'policy', 'add', ...args])) as {
    id: number | string;
  };
  return Number(rule.id);
}

/** The shard serving the only session that `before` did not have, from the per-worker gauge. */
async function shardsWithSessions(topo: Topology, address: string): Promise<number[]> {
  const text = await scrape(topo, topo.srv, address);
  const out: number[] = [];
  for (let w = 0; w < 8; w++) {
    const n = metric(text, 'masque_vpn_worker_sessions', { worker: String(w) }) ?? 0;
    for (let i = 0; i < n; i++) out.push(w);
  }
  return out;
}

function hairpinCount(text: string): { local: number; shard: number } {
  return {
    local: metric(text, 'masque_vpn_hairpin_packets_total', { path: 'local' }) ?? 0,
    shard: metric(text, 'masque_vpn_hairpin_packets_total', { path: 'shard' }) ?? 0,
  };
}

for (const [workers, path] of [
  [1, 'local'],
  [2, 'shard'],
] as const) {
  test(`client-to-client without kernel forwarding (--workers ${workers}, ${path} hairpin), refused when policy says no`, async (t) => {
    if (!isRoot()) return t.skip('needs root');
    const topo = await Topology.create(`dh${workers}`);
    const metrics = `127.0.0.1:${9600 + workers}`;
    try {
      const stack = await startControlPlane(topo);
      // No --nat: the server namespace never forwards a packet.
      const dp = await startDataplane(stack, workers, ['--metrics', metrics]);
      for (const f of ['/proc/sys/net/ipv4/ip_forward', '/proc/sys/net/ipv6/conf/all/forwarding']) {
        const v = (await topo.exec(topo.srv, ['cat', f])).stdout.trim();
        assert.equal(v, '0', `${f} is ${v} in the server namespace`);
      }
      const alice = await addUser(stack, 'alice');
      const bob = await addUser(stack, 'bob');
      const bobNs = await topo.addClient('b', '10.200.0.3');
      await startClient(topo, topo.cli, alice.bundle);
      const sessionsAre = async (n: number) =>
        eventually(async () => (await shardsWithSessions(topo, metrics)).length === n, 5_000);
      assert.ok(await sessionsAre(1), 'alice not visible in the per-worker gauge');
      const aliceShard = (await shardsWithSessions(topo, metrics))[0];

      let bobClient: Proc | undefined;
      // With two shards, reconnect bob until the kernel's steering puts him on the other shard
      // than alice (each start has a fresh source port: one chance in two per try).
      for (let attempt = 0; ; attempt++) {
        bobClient = await startClient(topo, bobNs, bob.bundle);
        assert.ok(await sessionsAre(2), 'bob not visible in the per-worker gauge');
        const shards = await shardsWithSessions(topo, metrics);
        const apart = shards[0] !== shards[1];
        if (workers === 1 || apart || attempt === 7) {
          t.diagnostic(`alice on shard ${aliceShard}, shards in use: ${shards.join(',')}`);
          if (workers > 1) assert.ok(apart, 'bob never landed on the other shard in 8 tries');
          break;
        }
        await bobClient.stop(10_000);
        assert.ok(await sessionsAre(1), 'bob did not leave');
      }

      await vpnctl(stack, ['group', 'add', 'team']);
      await vpnctl(stack, ['group', 'add-member', 'team', 'alice']);
      await vpnctl(stack, ['group', 'add-member', 'team', 'bob']);
      await addRule(stack, ['team', 'allow', '10.77.0.0/16']);
      await addRule(stack, ['team', 'allow', 'fd77::/64']);
      const before = hairpinCount(await scrape(topo, topo.srv, metrics));
      const reached = await eventually(
        async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 1,
        8_000,
      );
      assert.ok(reached, `alice cannot reach bob:\n${dp.output().slice(-3000)}`);
      assert.equal((await ping(topo, bobNs, alice.ipv4, 5)).received, 5, 'bob -> alice (v4)');
      assert.equal((await ping(topo, topo.cli, bob.ipv6, 5)).received, 5, 'alice -> bob (v6)');

      // Every echo and reply went shard to shard (or within the shard): at least 2 x 10.
      let after = before;
      const counted = await eventually(async () => {
        after = hairpinCount(await scrape(topo, topo.srv, metrics));
        return after[path] - before[path] >= 20;
      }, 5_000);
      assert.ok(counted, `hairpin ${path} counter ${before[path]} -> ${after[path]}`);
      t.diagnostic(`hairpin packets: local ${after.local}, across shards ${after.shard}`);

      // A TCP stream between the two clients: the hairpin under load, in order, no kernel.
      const server = topo.startCmd(bobNs, ['iperf3', '-s', '-1', '-B', bob.ipv4, '--forceflush']);
      await server.waitFor(/Server listening/, 10_000);
      const r = await topo.exec(topo.cli, ['iperf3', '-c', bob.ipv4, '-t', '2', '-J'], {
        timeoutMs: 30_000,
      });
      const moved = (
        JSON.parse(r.stdout) as {
          end: { sum_received: { bits_per_second: number; bytes: number } };
        }
      ).end.sum_received;
      assert.ok(moved.bytes > 1_000_000, `alice -> bob TCP moved ${moved.bytes} bytes`);
      const text = await scrape(topo, topo.srv, metrics);
      const drops = [0, 1]
        .map((w) => metric(text, 'masque_vpn_ring_drops_total', { ring: `shard${w}_hairpin` }) ?? 0)
        .reduce((a, b) => a + b, 0);
      t.diagnostic(
        `TCP alice -> bob: ${(moved.bits_per_second / 1e6).toFixed(0)} Mbit/s, hairpin ring drops ${drops}`,
      );

      // Denied by a higher-priority rule: alice keeps her route to the pool, so the packets go
      // into the tunnel and the data plane answers with ICMP administratively prohibited.
      const deny = await addRule(stack, ['team', 'deny', `${bob.ipv4}/32`, '--priority', '10']);
      const cut = await eventually(
        async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 0,
        5_000,
      );
      assert.ok(cut, 'alice still reaches bob after a deny rule');
      const refused = await topo.exec(topo.cli, ['ping', '-c', '1', '-W', '2', bob.ipv4], {
        allowFail: true,
      });
      assert.match(refused.stdout, /filtered|prohibited/i, refused.stdout);
      assert.equal((await ping(topo, bobNs, '10.77.0.1', 1)).received, 1, 'server still up');

      // The receiver's side counts too: bob loses his route to the pool, so alice's packets
      // (allowed by her policy again) are refused by bob's tunnel and never reach him.
      await vpnctl(stack, ['policy', 'remove', String(deny)]);
      assert.ok(
        await eventually(
          async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 1,
          5_000,
        ),
        'alice does not reach bob again after the deny is removed',
      );
      await vpnctl(stack, ['group', 'remove-member', 'team', 'bob']);
      const oneWay = await eventually(
        async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 0,
        5_000,
      );
      assert.ok(oneWay, 'alice still reaches bob after bob lost the route to her');
      assert.ok(bobClient !== undefined);
    } finally {
      await topo.destroy();
    }
  });
}

/** Waits for `pattern` in what `proc` wrote after `since` characters of output. */
async function waitForAfter(proc: Proc, since: number, pattern: RegExp, ms = 10_000) {
  const ok = await eventually(async () => pattern.test(proc.output().slice(since)), ms);
  assert.ok(ok, `no ${pattern} in:\n${proc.output().slice(since).slice(-3000)}`);
  return proc.output().slice(since);
}

test('SIGHUP reloads log level and metrics listener; a bad file or a restart-only key keeps the running values', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('dr');
  const file = join(topo.dir, 'dataplane.toml');
  const metrics = '127.0.0.1:9611';
  try {
    writeFileSync(file, 'log_level = "info"\n');
    const stack = await startControlPlane(topo);
    const dp = await startDataplane(stack, 1, ['--config', file]);
    const alice = await addUser(stack, 'alice');
    const scrapeOk = async () =>
      (
        await topo.exec(topo.srv, ['curl', '-sf', '--max-time', '2', `http://${metrics}/metrics`], {
          allowFail: true,
        })
      ).code === 0;
    assert.equal(await scrapeOk(), false, 'metrics served before they were configured');

    // 1. Debug logging and a metrics listener, live.
    let mark = dp.output().length;
    writeFileSync(file, `log_level = "debug"\nmetrics = "${metrics}"\n`);
    dp.child.kill('SIGHUP');
    await waitForAfter(dp, mark, /SIGHUP: configuration reloaded/);
    assert.ok(await scrapeOk(), 'metrics not served after the reload');
    assert.doesNotMatch(dp.output(), /"level":20/, 'debug lines before debug was asked for');
    mark = dp.output().length;
    await startClient(topo, topo.cli, alice.bundle);
    // The shard's own debug line: the level reached the worker threads too.
    await waitForAfter(dp, mark, /"level":20[^\n]*"shard":0[^\n]*QUIC connection accepted/);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 2)).received, 2);

    // 2. An invalid file: refused with the key's name, nothing changes.
    mark = dp.output().length;
    writeFileSync(file, `log_level = "error"\nmetrics = "${metrics}"\nbogus = 1\n`);
    dp.child.kill('SIGHUP');
    const refused = await waitForAfter(dp, mark, /config file refused/);
    assert.match(refused, /unknown key 'bogus'/);
    assert.doesNotMatch(refused, /configuration reloaded/);
    assert.equal(dp.child.exitCode, null, 'the data plane must survive a bad file');
    assert.ok(await scrapeOk(), 'metrics listener lost on a refused reload');
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 2)).received, 2);

    // 3. A restart-only key is named and kept; the reloadable ones still apply.
    mark = dp.output().length;
    // (workers would not do: the --workers flag the helper passes keeps winning over the file.)
    writeFileSync(file, 'log_level = "warn"\nmtu = 1400\n');
    dp.child.kill('SIGHUP');
    const out = await waitForAfter(dp, mark, /SIGHUP: configuration reloaded/);
    assert.match(out, /"keys":\["mtu"\][^\n]*need a restart/);
    assert.equal(await scrapeOk(), false, 'metrics still served after they were removed');
    // Warn level: a tunnel closing (an info line) is no longer logged, by any thread.
    mark = dp.output().length;
    await vpnctl(stack, ['device', 'revoke', 'alice', 'default']);
    const cut = await eventually(
      async () => (await ping(topo, topo.cli, '10.77.0.1', 1)).received === 0,
      5_000,
    );
    assert.ok(cut, 'the revoked tunnel was not closed');
    await new Promise((r) => setTimeout(r, 1_000));
    assert.doesNotMatch(dp.output().slice(mark), /"level":(20|30)/);
  } finally {
    await topo.destroy();
  }
});

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
/** Seconds after issue at which the control plane says renew, for `server_days = 2`. */
const RENEW_AFTER_S = Math.floor(((2 * 86_400 + 300) * 2) / 3) - 300;

/** The serial of the certificate the QUIC server presents to a new handshake, seen from `ns`. */
async function presentedSerial(topo: Topology, ns: string, bundle: string): Promise<string> {
  const script = join(topo.dir, 'probe.mjs');
  writeFileSync(
    script,
    `import { X509Certificate } from 'node:crypto';
     import { Endpoint } from ${JSON.stringify(join(ROOT, 'dist/dataplane/quic/endpoint.js'))};
     import { loadBundle } from ${JSON.stringify(join(ROOT, 'dist/client/bundle.js'))};
     const { bundle } = await loadBundle(process.argv[2]);
     setTimeout(() => { console.error('no handshake'); process.exit(1); }, 10000).unref();
     const ep = new Endpoint(
       { role: 'client', certPem: bundle.certPem, keyPem: bundle.keyPem, caPem: bundle.caPem,
         serverName: bundle.serverName, alpn: 'h3' },
       { onHandshake: (c) => {
           console.log(new X509Certificate(c.peerCertDer).serialNumber.toLowerCase());
           process.exit(0);
         },
         onClose: (_c, info) => { console.error('closed', JSON.stringify(info)); process.exit(1); } });
     ep.connect(${JSON.stringify(topo.srvAddr)}, 4433);`,
  );
  const r = await topo.exec(ns, [process.execPath, script, bundle], { timeoutMs: 20_000 });
  return r.stdout.trim();
}

test('server certificate renewed at its renew-at time; live tunnels untouched', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  if (!existsSync(LIBFAKETIME)) return t.skip('needs libfaketime (apt-get install faketime)');
  const topo = await Topology.create('dc');
  try {
    // The control plane runs with its clock set back so that the shortest certificate it will
    // issue (2 days) is due for renewal about 25 s after it is issued, in real time.
    const dataDir = join(topo.dir, 'mq');
    const cpConfig = join(topo.dir, 'controlplane.toml');
    writeFileSync(cpConfig, '[certificates]\nserver_days = 2\n');
    const control = topo.start(
      topo.srv,
      'controlplane',
      [
        '--config',
        cpConfig,
        '--data-dir',
        dataDir,
        '--endpoint',
        `${topo.srvAddr}:4433`,
        '--server-name',
        'vpn.test',
      ],
      {
        LD_PRELOAD: LIBFAKETIME,
        FAKETIME: `-${RENEW_AFTER_S - 25}`,
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      },
    );
    await control.waitFor(/control plane ready/, 30_000);
    const stack: Stack = { topo, dataDir, socket: join(dataDir, 'control.sock'), control };
    const dp = await startDataplane(stack, 2);
    const first =
      /"serial":"([0-9a-f]+)"[^\n]*"renewAt":"([^"]+)"[^\n]*server certificate in use/.exec(
        dp.output(),
      );
    assert.ok(first, `no 'server certificate in use' line:\n${dp.output().slice(-2000)}`);
    const renewIn = Date.parse(first[2]) - Date.now();
    assert.ok(renewIn > 0 && renewIn < 60_000, `renewal due in ${renewIn} ms`);

    const alice = await addUser(stack, 'alice');
    await startClient(topo, topo.cli, alice.bundle);
    assert.equal(await presentedSerial(topo, topo.cli, alice.bundle), first[1]);
    // Pings every 0.2 s from now until a few seconds past the renewal.
    const pingSeconds = Math.ceil((Date.parse(first[2]) - Date.now()) / 1000) + 6;
    const pinger = topo.startCmd(topo.cli, [
      'ping',
      '-i',
      '0.2',
      '-w',
      String(Math.max(pingSeconds, 6)),
      '10.77.0.1',
    ]);

    const mark = dp.output().length;
    const renewed = await dp.waitFor(
      /"serial":"([0-9a-f]+)"[^\n]*server certificate renewed/,
      renewIn + 30_000,
    );
    const serial = renewed[1];
    assert.notEqual(serial, first[1], 'the renewal brought the same certificate');

    // The live tunnel never noticed: the same tunnel, replies all along.
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 3)).received, 3);
    assert.doesNotMatch(dp.output().slice(mark), /tunnel closed|tunnel open/);
    const summary = await pinger.waitFor(/(\d+) packets transmitted, (\d+) received/, 60_000);
    t.diagnostic(`continuous ping across the renewal: ${summary[0]}`);
    assert.ok(
      Number(summary[2]) >= Number(summary[1]) * 0.9,
      `ping across the renewal: ${summary[0]}`,
    );

    const presented = await presentedSerial(topo, topo.cli, alice.bundle);
    assert.equal(presented, serial, 'a new handshake gets the renewed certificate');
  } finally {
    await topo.destroy();
  }
});

test('a data plane joins a control plane over TCP with a one-time token, then restarts without it', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('dj');
  try {
    // The control plane on a machine of its own (a namespace behind srv), gRPC over TCP.
    const cpNs = await topo.addClient('k', '10.200.0.9');
    const dataDir = join(topo.dir, 'mq');
    const control = topo.start(cpNs, 'controlplane', [
      '--data-dir',
      dataDir,
      '--grpc',
      '10.200.0.9:7443',
      '--endpoint',
      `${topo.srvAddr}:4433`,
      '--server-name',
      'vpn.test',
    ]);
    await control.waitFor(/control plane ready/, 30_000);
    const stack: Stack = { topo, dataDir, socket: join(dataDir, 'control.sock'), control };
    const ca = JSON.parse(await vpnctl(stack, ['--json', 'cert', 'ca'])) as { caPem: string };
    const caFile = join(topo.dir, 'control-ca.crt');
    writeFileSync(caFile, ca.caPem);
    const { token } = JSON.parse(await vpnctl(stack, ['--json', 'dataplane', 'token'])) as {
      token: string;
    };
    const stateDir = join(topo.dir, 'dp-state');
    const dataplane = (extra: string[], state = stateDir) =>
      topo.start(topo.srv, 'dataplane', [
        '--control',
        'tcp://10.200.0.9:7443',
        '--control-ca',
        caFile,
        '--state-dir',
        state,
        '--listen',
        '0.0.0.0:4433',
        '--workers',
        '1',
        ...extra,
      ]);

    const dp = dataplane(['--join-token', token]);
    await dp.waitFor(/data plane ready/, 30_000);
    assert.match(dp.output(), /joined the control plane/);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 3)).received, 3);
    // The data plane's only way to the control plane is that TCP connection.
    const ss = await topo.exec(topo.srv, ['ss', '-tnH', 'state', 'established']);
    assert.match(ss.stdout, /10\.200\.0\.9:7443/, ss.stdout);

    // The token is spent: another data plane cannot join with it.
    const thief = dataplane(['--join-token', token, '--tun', 'mqthief'], join(topo.dir, 'other'));
    const [code] = (await Promise.race([
      once(thief.child, 'close'),
      new Promise((_, fail) => setTimeout(() => fail(new Error('thief still running')), 30_000)),
    ])) as [number | null];
    assert.equal(code, 1, thief.output());
    assert.match(thief.output(), /join token unknown, already used or expired/);

    // Restarted without the token: the stored identity is enough, the client comes back.
    await dp.stop(15_000);
    const again = dataplane([]);
    await again.waitFor(/data plane ready/, 30_000);
    assert.match(again.output(), /using the stored control plane identity/);
    const back = await eventually(
      async () => (await ping(topo, topo.cli, '10.77.0.1', 1)).received === 1,
      30_000,
    );
    assert.ok(back, `client not back:\n${client.output().slice(-2000)}`);
  } finally {
    await topo.destroy();
  }
});
