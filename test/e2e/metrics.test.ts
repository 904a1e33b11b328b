// The data plane's packet checks and figures seen from outside: a spoofed source is dropped and
// counted per client on the Prometheus endpoint, per-client counters follow real traffic, and
// SIGTERM sends GOAWAY, drains, and the client comes back when the data plane does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isRoot, Topology } from './netns.js';
import {
  addUser,
  eventually,
  metric,
  ping,
  scrape,
  startClient,
  startControlPlane,
  startDataplane,
  tunnelChild,
} from './stack.js';

const METRICS = '127.0.0.1:9591';

test('spoofed source dropped and counted; per-client counters and active connections', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('mt');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 2, ['--metrics', METRICS]);
    const alice = await addUser(stack, 'alice');
    await startClient(topo, topo.cli, alice.bundle);
    const client = { client: 'alice/default' };

    // Figures reach the main thread once a second; wait for the session to be visible.
    let text = '';
    const visible = await eventually(async () => {
      text = await scrape(topo, topo.srv, METRICS);
      return metric(text, 'masque_vpn_active_connections') === 1;
    }, 5_000);
    assert.ok(visible, `active connections not 1:\n${text}`);
    const rx0 =
      metric(text, 'masque_vpn_client_packets_total', { ...client, direction: 'rx' }) ?? 0;
    const txb0 = metric(text, 'masque_vpn_client_bytes_total', { ...client, direction: 'tx' }) ?? 0;

    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 10)).received, 10);
    const grew = await eventually(async () => {
      text = await scrape(topo, topo.srv, METRICS);
      const rx = metric(text, 'masque_vpn_client_packets_total', { ...client, direction: 'rx' });
      const txb = metric(text, 'masque_vpn_client_bytes_total', { ...client, direction: 'tx' });
      return rx !== undefined && rx >= rx0 + 10 && txb !== undefined && txb >= txb0 + 10 * 84;
    }, 5_000);
    assert.ok(grew, `per-client counters did not follow 10 pings (from rx ${rx0}):\n${text}`);
    assert.equal(metric(text, 'masque_vpn_client_spoofed_packets_total', client) ?? 0, 0);

    // A second address on the client's TUN that the server never assigned. Our client refuses to
    // send from it (its own RFC 9484 §7.2 egress check), so nothing is answered ...
    const spoofed = '10.77.0.250';
    assert.notEqual(alice.ipv4, spoofed);
    await topo.ip('-n', topo.cli, 'addr', 'add', `${spoofed}/32`, 'dev', 'mq0');
    const r = await topo.exec(
      topo.cli,
      ['ping', '-c', '3', '-i', '0.2', '-W', '1', '-I', spoofed, '10.77.0.1'],
      { allowFail: true },
    );
    assert.match(r.stdout, / 0 received/, `a spoofed ping was answered:\n${r.stdout}`);
    await topo.ip('-n', topo.cli, 'addr', 'del', `${spoofed}/32`, 'dev', 'mq0');

    // ... so a hostile peer with the same credentials (the client library with its egress check
    // bypassed) sends them straight into the tunnel: the server must drop and count them.
    const hostile = await tunnelChild<{
      ownReplied: boolean;
      spoofedSent: number;
      spoofedReplies: number;
    }>(topo, topo.cli, ['spoof', alice.bundle, spoofed, '10.77.0.1']);
    assert.ok(hostile.ownReplied, `the raw path itself does not work: ${JSON.stringify(hostile)}`);
    assert.equal(hostile.spoofedReplies, 0, 'a spoofed echo request was answered');
    const counted = await eventually(async () => {
      text = await scrape(topo, topo.srv, METRICS);
      return (metric(text, 'masque_vpn_client_spoofed_packets_total', client) ?? 0) >= 5;
    }, 5_000);
    assert.ok(
      counted,
      `spoofed packets not counted:\n${text
        .split('\n')
        .filter((l) => /spoof|active/.test(l))
        .join('\n')}`,
    );
    // The legitimate address still works.
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 2)).received, 2);
  } finally {
    await topo.destroy();
  }
});

test('data plane SIGTERM: GOAWAY, drain within --drain, client back when it returns', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('ga');
  try {
    const stack = await startControlPlane(topo);
    const dp = await startDataplane(stack, 1, ['--drain', '2']);
    const alice = await addUser(stack, 'alice');
    const client = await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 1)).received, 1);

    const stoppedAt = Date.now();
    const exit = await dp.stop(15_000);
    const drainMs = Date.now() - stoppedAt;
    assert.equal(
      exit.code,
      0,
      `data plane exit ${JSON.stringify(exit)}:\n${dp.output().slice(-2000)}`,
    );
    assert.ok(drainMs < 5_000, `drain took ${drainMs} ms with --drain 2`);
    t.diagnostic(`data plane exited ${drainMs} ms after SIGTERM`);
    // The client's account of why the tunnel ended, checked last (see below).
    const lost = /"reason":"(\w+)","err":"([^"]*)"[^\n]*"msg":"tunnel lost"/.exec(client.output());

    const restartedAt = Date.now();
    await startDataplane(stack, 1);
    const back = await eventually(
      async () => (await ping(topo, topo.cli, '10.77.0.1', 1)).received === 1,
      20_000,
    );
    assert.ok(back, `client did not come back:\n${client.output().slice(-3000)}`);
    t.diagnostic(`tunnel back ${Date.now() - restartedAt} ms after the restart`);
    const addr = await topo.ip('-n', topo.cli, 'addr', 'show', 'dev', 'mq0');
    assert.ok(addr.includes(alice.ipv4), 'same address after the restart');

    // Checked last so the restart above is proven either way. Before the drain waited for fresh
    // session counts, a tunnel younger than one report interval was closed with code 0 at once.
    assert.equal(lost?.[1], 'goaway', `client saw "${lost?.[1]}: ${lost?.[2]}" instead of GOAWAY`);
  } finally {
    await topo.destroy();
  }
});
