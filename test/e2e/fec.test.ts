// FEC end to end: the client reaches the data plane through the user-space impairment proxy
// (bench/impair, 5% random loss each way, running in the server namespace in front of the data
// plane), and a UDP flow through the tunnel loses far fewer packets once the client's bundle
// offers FEC and the data plane accepts it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isRoot, ROOT, Topology, type Proc } from './netns.js';
import { addUser, startClient, startControlPlane, startDataplane } from './stack.js';

const PROXY_PORT = 5443;

interface UdpResult {
  packets: number;
  lost: number;
  lostPercent: number;
}

/** One iperf3 UDP run from the client namespace to the server's tunnel address. */
async function udpFlow(topo: Topology, seconds: number): Promise<UdpResult> {
  const server = topo.startCmd(topo.srv, ['iperf3', '-s', '-1', '-B', '10.77.0.1', '--forceflush']);
  try {
    await server.waitFor(/Server listening/, 10_000);
    const r = await topo.exec(
      topo.cli,
      ['iperf3', '-u', '-c', '10.77.0.1', '-b', '4M', '-l', '1000', '-t', String(seconds), '-J'],
      { timeoutMs: (seconds + 20) * 1000 },
    );
    const j = JSON.parse(r.stdout) as {
      end: { sum: { packets: number; lost_packets: number; lost_percent: number } };
    };
    return {
      packets: j.end.sum.packets,
      lost: j.end.sum.lost_packets,
      lostPercent: j.end.sum.lost_percent,
    };
  } finally {
    await server.stop(3_000);
  }
}

/** The bundle with its endpoint moved to the proxy and [fec] set as given. */
function rewriteBundle(path: string, endpoint: string, fec: boolean): void {
  let text = readFileSync(path, 'utf8');
  text = text.replace(/^endpoints\s*=.*$/m, `endpoints = ["${endpoint}"]`);
  const fecTable = `[fec]\nenabled = ${fec}\nblock_size = 10\nredundancy_percent = 30\n`;
  if (/^\[fec\]$/m.test(text)) {
    text = text.replace(/^\[fec\]\n(?:[a-z_]+\s*=.*\n)*/m, fecTable);
  } else {
    text = `${text.trimEnd()}\n\n${fecTable}`;
  }
  writeFileSync(path, text);
}

test('5% random loss: a UDP flow loses far less through the tunnel with FEC', async (t) => {
  if (!isRoot()) return t.skip('needs root');
  const started = Date.now();
  const topo = await Topology.create('fec');
  try {
    const stack = await startControlPlane(topo);
    // Data plane defaults: it answers FEC offers (adaptive), and nothing else changes.
    const dp = await startDataplane(stack, 1);
    const proxy = topo.start(topo.srv, 'masque-bench', [
      'impair',
      '--listen',
      `${topo.srvAddr}:${PROXY_PORT}`,
      '--target',
      `${topo.srvAddr}:4433`,
      '--loss',
      '5%',
      '--seed',
      '7',
    ]);
    await proxy.waitFor(/impair: /, 15_000);
    const alice = await addUser(stack, 'alice');

    let status = '';
    const run = async (fec: boolean): Promise<UdpResult> => {
      rewriteBundle(alice.bundle, `${topo.srvAddr}:${PROXY_PORT}`, fec);
      const client: Proc = await startClient(topo, topo.cli, alice.bundle);
      try {
        const r = await udpFlow(topo, 8);
        const q = await topo.exec(topo.cli, [
          process.execPath,
          join(ROOT, 'bin', 'masque-client.js'),
          'status',
          '--state-dir',
          join(topo.dir, `state-${topo.cli}-mq0`),
        ]);
        status = q.stdout;
        return r;
      } finally {
        await client.stop(5_000);
      }
    };

    const plain = await run(false);
    t.diagnostic(
      `without FEC: lost ${plain.lost}/${plain.packets} (${plain.lostPercent.toFixed(2)}%)`,
    );
    assert.doesNotMatch(dp.output(), /"fec":\{/, 'no FEC without an offer');
    const withFec = await run(true);
    t.diagnostic(
      `with FEC:    lost ${withFec.lost}/${withFec.packets} (${withFec.lostPercent.toFixed(2)}%)`,
    );
    assert.match(dp.output(), /"fec":\{"scheme":"rs"/, 'the data plane agreed to Reed–Solomon');
    // `masque-client status` shows the client's side: repair sent on the lossy uplink.
    const fecLine = /^fec: +rs: repair sent (\d+), .*$/m.exec(status);
    assert.ok(fecLine !== null, status);
    assert.ok(Number(fecLine[1]) > 0, fecLine[0]);
    t.diagnostic(fecLine[0]);

    // The proxy really drops (a lossless path would make the comparison meaningless) ...
    assert.ok(plain.lostPercent >= 2.5, `without FEC only ${plain.lostPercent}% lost`);
    assert.ok(plain.packets > 1000 && withFec.packets > 1000, 'the flows ran');
    // ... and FEC recovers most of it (adaptive: the first blocks go unprotected until QUIC
    // reports loss, so the bound is a factor, not zero).
    assert.ok(
      withFec.lostPercent < plain.lostPercent / 3,
      `with FEC ${withFec.lostPercent}% vs ${plain.lostPercent}% without`,
    );
    assert.ok(Date.now() - started < 90_000, 'the test stays within its time budget');
  } finally {
    await topo.destroy();
  }
});
