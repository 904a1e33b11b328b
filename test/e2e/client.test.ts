// `masque-client status` against a running client, asked the way a person would: the same
// binary, in the client's namespace, finding the client by its TUN name and state directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { isRoot, ROOT, Topology } from './netns.js';
import { addUser, ping, startClient, startControlPlane, startDataplane } from './stack.js';

test('masque-client status and status --json describe the live tunnel', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const topo = await Topology.create('st');
  try {
    const stack = await startControlPlane(topo);
    await startDataplane(stack, 1);
    const alice = await addUser(stack, 'alice');
    await startClient(topo, topo.cli, alice.bundle);
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 5)).received, 5);

    // startClient's state directory: the socket is found from it and the TUN name.
    const stateDir = join(topo.dir, `state-${topo.cli}-mq0`);
    const status = (json: boolean) =>
      topo.exec(topo.cli, [
        process.execPath,
        join(ROOT, 'bin', 'masque-client.js'),
        'status',
        ...(json ? ['--json'] : []),
        '--tun',
        'mq0',
        '--state-dir',
        stateDir,
      ]);

    const s = JSON.parse((await status(true)).stdout) as {
      state: string;
      tun: string;
      identity?: string;
      server: { name: string; endpoints: string[] };
      addresses: string[];
      routes: string[];
      bytesSent: number;
      bytesReceived: number;
      packetsSent: number;
      packetsReceived: number;
      rttMs: number | null;
      reconnects: number;
      uptimeSeconds: number;
    };
    assert.equal(s.state, 'up');
    assert.equal(s.tun, 'mq0');
    assert.equal(s.server.name, 'vpn.test');
    assert.ok(s.server.endpoints.includes('10.200.0.1:4433'), JSON.stringify(s.server));
    assert.ok(s.addresses.includes(`${alice.ipv4}/32`), JSON.stringify(s.addresses));
    assert.ok(
      s.addresses.some((a) => a.startsWith(`${alice.ipv6}/`)),
      JSON.stringify(s.addresses),
    );
    assert.ok(
      s.routes.some((r) => r.includes('10.77.0.1')),
      JSON.stringify(s.routes),
    );
    // Five echo requests out, five replies in (84 bytes each) at least.
    assert.ok(s.packetsSent >= 5 && s.bytesSent >= 5 * 84, `sent ${s.packetsSent}/${s.bytesSent}`);
    assert.ok(
      s.packetsReceived >= 5 && s.bytesReceived >= 5 * 84,
      `received ${s.packetsReceived}/${s.bytesReceived}`,
    );
    assert.ok(s.rttMs !== null && s.rttMs > 0, `rtt ${s.rttMs}`);
    assert.equal(s.reconnects, 0);

    const text = (await status(false)).stdout;
    assert.match(text, /state:\s+up for/);
    assert.ok(text.includes(alice.ipv4), text);
    assert.match(text, /sent:\s+\d+(\.\d)? \S*B in \d+ packets/, text);

    // After more traffic the figures grew: they are live, not a snapshot from connect time.
    assert.equal((await ping(topo, topo.cli, '10.77.0.1', 3)).received, 3);
    const s2 = JSON.parse((await status(true)).stdout) as typeof s;
    assert.ok(s2.packetsReceived >= s.packetsReceived + 3, 'received packets did not grow');
  } finally {
    await topo.destroy();
  }
});
