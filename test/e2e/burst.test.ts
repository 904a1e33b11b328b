// A burst of tunnels opened and closed against one data plane, by the real client library in the
// client namespace, then checks that nothing leaked: no live session in the control plane, no
// active connection in the data plane, and a normal client still gets its address and pings.
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
  vpnctl,
} from './stack.js';

const METRICS = '127.0.0.1:9592';
const TUNNELS = Number(process.env.MQ_E2E_BURST ?? 200);
const PARALLEL = 4;
const WARMUP = 200;
/**
 * RSS may grow over one round: the allocators and V8 do not hand memory back at once (measured:
 * +13, +15, +14, +3, +5 MiB per round of 200 after the first). A leak of a tunnel's QUIC and
 * session state (well over 150 KiB each) would exceed this.
 */
const RSS_BUDGET = 32 * 2 ** 20;

test(`a burst of ${TUNNELS} tunnels opened and closed leaks nothing`, async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('bu');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 2, ['--metrics', METRICS]);
    const alice = await addUser(stack, 'alice');
    const devices: Awaited<ReturnType<typeof addUser>>[] = [];
    for (let i = 0; i < PARALLEL; i++) devices.push(await addUser(stack, `bob${i}`));

    const runBurst = (n: number) =>
      tunnelChild<{ opened: number; failures: string[]; addresses: string[][]; ms: number }>(
        topo,
        topo.cli,
        ['burst', String(n), ...devices.map((d) => d.bundle)],
        120_000,
      );
    const rss = async () =>
      metric(
        await scrape(topo, topo.srv, METRICS),
        'masque_vpn_process_process_resident_memory_bytes',
      ) ?? NaN;
    // A warm-up round first, so that lazily grown buffers and JIT do not count as a leak.
    const warm = await runBurst(WARMUP);
    assert.equal(warm.opened, WARMUP, `warm-up failures: ${warm.failures.slice(0, 5).join('; ')}`);
    const rssBefore = await rss();
    const burst = await runBurst(TUNNELS);
    t.diagnostic(`${burst.opened} tunnels in ${burst.ms} ms (${PARALLEL} devices in parallel)`);
    assert.equal(burst.opened, TUNNELS, `failures: ${burst.failures.slice(0, 5).join('; ')}`);
    assert.deepEqual(burst.failures, []);
    // Each device always got the same addresses, the ones vpnctl printed.
    devices.forEach((d, i) => {
      assert.deepEqual(
        burst.addresses[i].filter((a) => !a.includes(':')),
        [`${d.ipv4}/32`],
        JSON.stringify(burst.addresses),
      );
    });

    // Shards report once a second; a tunnel that opened and closed within one interval shows up
    // only in the next report, so wait until every tunnel has been counted.
    let text = '';
    const accepted = () =>
      metric(text, 'masque_vpn_connections_total', { result: 'accepted' }) ?? 0;
    const drained = await eventually(async () => {
      text = await scrape(topo, topo.srv, METRICS);
      return metric(text, 'masque_vpn_active_connections') === 0 && accepted() >= WARMUP + TUNNELS;
    }, 8_000);
    assert.ok(
      drained,
      `active connections ${metric(text, 'masque_vpn_active_connections')}, accepted ${accepted()}`,
    );
    // No session slot or ring slot held, and the process did not grow with the tunnels.
    const growth = (await rss()) - rssBefore;
    t.diagnostic(
      `data plane RSS grew ${(growth / 2 ** 20).toFixed(1)} MiB over ${TUNNELS} tunnels`,
    );
    assert.ok(growth < RSS_BUDGET, `RSS grew ${growth} bytes over ${TUNNELS} tunnels`);
    for (const w of ['0', '1']) {
      assert.equal(metric(text, 'masque_vpn_worker_sessions', { worker: w }), 0, `worker ${w}`);
      assert.equal(metric(text, 'masque_vpn_ring_depth', { ring: `shard${w}_to_tun` }), 0);
      assert.equal(metric(text, 'masque_vpn_ring_depth', { ring: `tun_to_shard${w}` }), 0);
    }
    for (const w of ['0', '1']) {
      assert.equal(
        metric(text, 'masque_vpn_worker_quic_connections', { worker: w }),
        0,
        `worker ${w}`,
      );
    }
    // Sessions are reported to the control plane every 5 s; ended ones must disappear.
    let sessions: unknown[] = [];
    const cpClean = await eventually(async () => {
      const out = JSON.parse(await vpnctl(stack, ['--json', 'session', 'list'])) as
        unknown[] | { sessions: unknown[] };
      sessions = Array.isArray(out) ? out : out.sessions;
      return sessions.length === 0;
    }, 12_000);
    assert.ok(cpClean, `live sessions left in the control plane: ${JSON.stringify(sessions)}`);

    const client = await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 3)).received, 3);
    assert.ok(client.output().includes(alice.ipv4), 'alice got her address after the burst');
    const addr = await topo.ip('-n', topo.cli, 'addr', 'show', 'dev', 'mq0');
    assert.ok(addr.includes(`${alice.ipv4}/32`), addr);
    text = await scrape(topo, topo.srv, METRICS);
    assert.equal(metric(text, 'masque_vpn_ring_drops_total') ?? 0, 0, 'ring drops');
  } finally {
    await topo.destroy();
  }
});
