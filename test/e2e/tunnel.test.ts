// The data plane issue's acceptance flow, through real TUN devices between network namespaces,
// driven by the real CLIs: control plane, data plane, vpnctl, masque-client, then ping and iperf3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, links, Topology } from './netns.js';
import { addUser, ping, startClient, startControlPlane, startDataplane, vpnctl } from './stack.js';

for (const workers of [1, 2, 4]) {
  test(`acceptance with --workers ${workers}: ping v4 and v6 through the tunnel`, async (t) => {
    if (!isRoot()) return t.skip('needs root');
    const topo = await Topology.create(`w${workers}`);
    try {
      const stack = await startControlPlane(topo);
      await startDataplane(stack, workers);
      const alice = await addUser(stack, 'alice');
      const client = await startClient(topo, topo.cli, alice.bundle);
      const v4 = await ping(topo, topo.cli, '10.77.0.1');
      assert.equal(v4.received, 3, v4.output);
      const v6 = await ping(topo, topo.cli, 'fd77::1');
      assert.equal(v6.received, 3, v6.output);
      assert.match(client.output(), /addresses applied/);
      assert.ok(client.output().includes(alice.ipv4), 'client got the address vpnctl printed');
    } finally {
      await topo.destroy();
    }
  });
}

test('iperf3 TCP through the tunnel, then SIGTERM leaves no TUN or route behind', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('ip');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 2);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    const server = topo.startCmd(topo.srv, [
      'iperf3',
      '-s',
      '-1',
      '-B',
      '10.77.0.1',
      '--forceflush',
    ]);
    await server.waitFor(/Server listening/, 10_000);
    const r = await topo.exec(topo.cli, ['iperf3', '-c', '10.77.0.1', '-t', '3', '-J'], {
      timeoutMs: 30_000,
    });
    const result = JSON.parse(r.stdout) as {
      end: { sum_received: { bits_per_second: number; bytes: number } };
    };
    assert.ok(
      result.end.sum_received.bytes > 1_000_000,
      `moved ${result.end.sum_received.bytes} bytes`,
    );
    t.diagnostic(
      `TCP through the tunnel: ${(result.end.sum_received.bits_per_second / 1e6).toFixed(0)} Mbit/s`,
    );

    assert.ok((await links(topo, topo.cli)).includes('mq0'));
    const stopped = await client.stop(10_000);
    assert.equal(stopped.code, 0, client.output().slice(-2000));
    assert.ok(!(await links(topo, topo.cli)).includes('mq0'), 'TUN removed on SIGTERM');
    const routes = await topo.ip('-n', topo.cli, 'route', 'show');
    assert.doesNotMatch(routes, /10\.77\./);
  } finally {
    await topo.destroy();
  }
});

test('a revoked device is cut off and refused when it comes back', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('rv');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 2);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1);
    const revokedAt = Date.now();
    await vpnctl(stack, ['device', 'revoke', 'alice', 'default']);
    await client.waitFor(/denied|403/i, 15_000);
    t.diagnostic(`client saw the denial ${Date.now() - revokedAt} ms after the revocation`);
    const after = await ping(topo, topo.cli, '10.77.0.1', 1);
    assert.equal(after.received, 0, 'no traffic after revocation');
  } finally {
    await topo.destroy();
  }
});

test('data plane restarted under a live client: the client comes back with the same address', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('rs');
  try {
    const stack = await startControlPlane(topo);
    const dp = await startDataplane(stack, 2);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1);
    await dp.stop(15_000);
    const restartedAt = Date.now();
    await startDataplane(stack, 2);
    let back = false;
    while (Date.now() - restartedAt < 30_000) {
      if ((await ping(topo, topo.cli, '10.77.0.1', 1)).received === 1) {
        back = true;
        break;
      }
    }
    assert.ok(back, `client did not come back; output:\n${client.output().slice(-3000)}`);
    t.diagnostic(`tunnel back ${Date.now() - restartedAt} ms after the data plane restarted`);
    const addr = await topo.ip('-n', topo.cli, 'addr', 'show', 'dev', 'mq0');
    assert.ok(addr.includes(alice.ipv4), 'same IPv4 address after the restart');
  } finally {
    await topo.destroy();
  }
});

test('control plane down: live tunnels carry on, a new one gets 503 + retry-after, then gets in', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('cd');
  try {
    const stack = await startControlPlane(topo);
    const dp = await startDataplane(stack, 2);
    const alice = await addUser(stack, 'alice');
    const bob = await addUser(stack, 'bob');
    await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1);

    await stack.control.stop(10_000);
    await dp.waitFor(/control plane link lost/, 10_000);
    const live = await ping(topo, topo.cli, '10.77.0.1', 5);
    assert.equal(live.received, 5, `live tunnel during the outage:\n${live.output}`);

    // Bob, from a namespace of his own, asks while the control plane is away.
    const bobNs = await topo.addClient('b', '10.200.1.2');
    const bobClient = topo.start(bobNs, 'masque-client', [
      '--config',
      bob.bundle,
      '--tun',
      'mq0',
      '--state-dir',
      `${topo.dir}/state-bob`,
    ]);
    const refused = await bobClient.waitFor(/"retryInMs":(\d+)[^\n]*|503[^\n]*/, 30_000);
    assert.match(bobClient.output(), /503/, bobClient.output().slice(-2000));
    const retry = /"retryInMs":(\d+)/.exec(bobClient.output());
    assert.ok(retry !== null && Number(retry[1]) >= 5_000, `retry hint honoured: ${refused[0]}`);

    // The control plane returns on the same data directory: the data plane's link reconnects by
    // itself and bob's next attempt succeeds.
    const back = Date.now();
    await startControlPlane(topo);
    await dp.waitFor(/control plane link up[\s\S]*control plane link up/, 30_000);
    await bobClient.waitFor(/routes applied/, 60_000);
    t.diagnostic(`bob's tunnel up ${Date.now() - back} ms after the control plane came back`);
    assert.equal((await ping(topo, bobNs, '10.77.0.1', 2)).received, 2);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 2)).received, 2);
  } finally {
    await topo.destroy();
  }
});
