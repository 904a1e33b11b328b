// Policy seen from the clients: client-to-client reachability through the server follows the
// rules, route changes reach a running client's routing table, and a default-route rule makes a
// full tunnel (server pinned via the veth, default halves via the TUN) that SIGTERM undoes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, Topology } from './netns.js';
import {
  addUser,
  eventually,
  ping,
  startClient,
  startControlPlane,
  startDataplane,
  vpnctl,
} from './stack.js';

async function addRule(stack: Parameters<typeof vpnctl>[0], args: string[]): Promise<number> {
  const rule = JSON.parse(await vpnctl(stack, ['--json', 'policy', 'add', ...args])) as {
    id: number | string;
  };
  return Number(rule.id);
}

test('two clients reach each other through the server only while policy allows it', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('cc');
  try {
    const stack = await startControlPlane(topo);
    // Client-to-client packets are switched inside the data plane (daemon.test.ts proves it
    // without forwarding); with --nat the policy must hold just the same, and traffic between
    // clients must not be masqueraded.
    await startDataplane(stack, 2, ['--nat']);
    const alice = await addUser(stack, 'alice');
    const bob = await addUser(stack, 'bob');
    const bobNs = await topo.addClient('b', '10.200.0.3');
    await startClient(topo, topo.cli, alice.bundle);
    await startClient(topo, bobNs, bob.bundle);

    // Out of the box only the server's own address is allowed: alice has no route to bob.
    assert.equal((await ping(topo, topo.cli, bob.ipv4, 2)).received, 0, 'reached bob unallowed');

    await vpnctl(stack, ['group', 'add', 'team']);
    await vpnctl(stack, ['group', 'add-member', 'team', 'alice']);
    await vpnctl(stack, ['group', 'add-member', 'team', 'bob']);
    await addRule(stack, ['team', 'allow', '10.77.0.0/16']);
    const reached = await eventually(
      async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 1,
      8_000,
    );
    assert.ok(reached, 'alice cannot reach bob although the team may reach the pool');
    assert.equal((await ping(topo, bobNs, alice.ipv4, 3)).received, 3, 'bob -> alice');

    // A higher-priority deny for bob's address: alice keeps her route to the pool, so the
    // packets go into the tunnel and it is the server that must refuse them.
    const deny = await addRule(stack, ['team', 'deny', `${bob.ipv4}/32`, '--priority', '10']);
    const cut = await eventually(
      async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 0,
      5_000,
    );
    assert.ok(cut, 'alice still reaches bob after a deny rule');
    const r = await topo.exec(topo.cli, ['ping', '-c', '1', '-W', '2', bob.ipv4], {
      allowFail: true,
    });
    t.diagnostic(`alice -> bob while denied: ${r.stdout.split('\n').slice(1, 2).join('')}`);
    const routes = await topo.ip('-n', topo.cli, 'route', 'show');
    assert.match(routes, /10\.77\.0\.0\/16 dev mq0/, 'the pool route stayed');
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1, 'server still up');

    await vpnctl(stack, ['policy', 'remove', String(deny)]);
    const again = await eventually(
      async () => (await ping(topo, topo.cli, bob.ipv4, 1)).received === 1,
      5_000,
    );
    assert.ok(again, 'alice does not reach bob again after the deny is removed');
  } finally {
    await topo.destroy();
  }
});

test('an allow rule added and removed live: the client route follows', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('rt');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 1);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    const routes = () => topo.ip('-n', topo.cli, 'route', 'show');
    assert.doesNotMatch(await routes(), /10\.99\.0\.0\/24/);

    const addedAt = Date.now();
    const id = await addRule(stack, ['*', 'allow', '10.99.0.0/24']);
    const appeared = await eventually(
      async () => /10\.99\.0\.0\/24 dev mq0/.test(await routes()),
      5_000,
    );
    assert.ok(appeared, `route not installed:\n${await routes()}\n${client.output().slice(-2000)}`);
    t.diagnostic(`route installed ${Date.now() - addedAt} ms after the rule`);

    const removedAt = Date.now();
    await vpnctl(stack, ['policy', 'remove', String(id)]);
    const gone = await eventually(async () => !/10\.99\.0\.0\/24/.test(await routes()), 5_000);
    assert.ok(gone, `route still there:\n${await routes()}`);
    t.diagnostic(`route removed ${Date.now() - removedAt} ms after the rule`);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1);
  } finally {
    await topo.destroy();
  }
});

test('full tunnel: server pinned via the veth, default halves via the TUN, all undone on SIGTERM', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('ft');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 1);
    await addRule(stack, ['*', 'allow', '0.0.0.0/0']);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    const routes = await topo.ip('-n', topo.cli, 'route', 'show');
    const veth = `v${topo.cli}`.slice(0, 15);
    assert.match(routes, /^0\.0\.0\.0\/1 dev mq0/m, routes);
    assert.match(routes, /^128\.0\.0\.0\/1 dev mq0/m, routes);
    assert.match(routes, new RegExp(`^10\\.200\\.0\\.1 (via \\S+ )?dev ${veth}`, 'm'), routes);
    // The QUIC packets themselves still leave through the veth.
    const get = await topo.ip('-n', topo.cli, 'route', 'get', '10.200.0.1');
    assert.match(get, new RegExp(`dev ${veth}`), get);
    const other = await topo.ip('-n', topo.cli, 'route', 'get', '192.0.2.1');
    assert.match(other, /dev mq0/, other);

    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 5)).received, 5);

    const stopped = await client.stop(10_000);
    assert.equal(stopped.code, 0, client.output().slice(-2000));
    const after = await topo.ip('-n', topo.cli, 'route', 'show');
    assert.doesNotMatch(after, /0\.0\.0\.0\/1|128\.0\.0\.0\/1|mq0/, after);
    assert.doesNotMatch(after, /^10\.200\.0\.1 /m, `pinned host route left behind:\n${after}`);
    assert.match(after, /10\.200\.0\.0\/24 dev/, 'the veth route is untouched');
  } finally {
    await topo.destroy();
  }
});
