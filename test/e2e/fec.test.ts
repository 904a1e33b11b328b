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

// A UDP flow with sequence numbers, counted at the receiver. iperf3 would carry its control
// connection over the same lossy path, and its end-of-test exchange sometimes stalls there; this
// needs no control channel at all.
const RECEIVER = `
  const dgram = require('node:dgram');
  const [addr, port, ms] = process.argv.slice(1);
  const seen = new Set();
  const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (m) => { if (m.length >= 4) seen.add(m.readUInt32BE(0)); });
  s.bind(Number(port), addr, () => process.stdout.write('ready\\n'));
  setTimeout(() => { process.stdout.write('received ' + seen.size + '\\n'); process.exit(0); }, Number(ms));
`;
const SENDER = `
  const dgram = require('node:dgram');
  const [addr, port, count, pps] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
  const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
  let i = 0;
  const timer = setInterval(() => {
    for (let k = 0; k < pps / 100 && i < count; k++, i++) { const buf = Buffer.alloc(1000); buf.writeUInt32BE(i, 0); s.send(buf, port, addr); }
    if (i >= count) { clearInterval(timer); setTimeout(() => s.close(), 200); }
  }, 10);
`;

/** `count` datagrams at 500/s (4 Mbit/s) from one namespace to an address in the other. */
async function udpFlow(
  topo: Topology,
  from: string,
  to: string,
  toAddr: string,
  count = 3000,
): Promise<UdpResult> {
  const seconds = count / 500;
  const receiver = topo.startCmd(to, [
    process.execPath,
    '-e',
    RECEIVER,
    toAddr,
    '5999',
    String((seconds + 3) * 1000),
  ]);
  await receiver.waitFor(/ready/, 10_000);
  await topo.exec(from, [process.execPath, '-e', SENDER, toAddr, '5999', String(count), '500'], {
    timeoutMs: (seconds + 20) * 1000,
  });
  const m = await receiver.waitFor(/received (\d+)/, (seconds + 10) * 1000);
  const received = Number(m[1]);
  return {
    packets: count,
    lost: count - received,
    lostPercent: ((count - received) / count) * 100,
  };
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
    const run = async (fec: boolean): Promise<{ up: UdpResult; down: UdpResult }> => {
      rewriteBundle(alice.bundle, `${topo.srvAddr}:${PROXY_PORT}`, fec);
      const client: Proc = await startClient(topo, topo.cli, alice.bundle);
      try {
        // Up: the client's FEC sender, the shard's receiver; down: the other way round.
        const r = {
          up: await udpFlow(topo, topo.cli, topo.srv, '10.77.0.1'),
          down: await udpFlow(topo, topo.srv, topo.cli, alice.ipv4),
        };
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

    const show = (what: string, r: UdpResult) =>
      t.diagnostic(`${what}: lost ${r.lost}/${r.packets} (${r.lostPercent.toFixed(2)}%)`);
    const plain = await run(false);
    show('up without FEC  ', plain.up);
    show('down without FEC', plain.down);
    assert.doesNotMatch(dp.output(), /"fec":\{/, 'no FEC without an offer');
    const withFec = await run(true);
    show('up with FEC     ', withFec.up);
    show('down with FEC   ', withFec.down);
    assert.match(dp.output(), /"fec":\{"scheme":"rs"/, 'the data plane agreed to Reed–Solomon');
    // `masque-client status` shows the client's side: repair sent on the uplink, packets of the
    // downlink recovered.
    const fecLine = /^fec: +rs: repair sent (\d+), received \d+, recovered (\d+),.*$/m.exec(status);
    assert.ok(fecLine !== null, status);
    assert.ok(Number(fecLine[1]) > 0 && Number(fecLine[2]) > 0, fecLine[0]);
    t.diagnostic(fecLine[0]);

    // The proxy really drops (a lossless path would make the comparison meaningless) ...
    for (const dir of ['up', 'down'] as const) {
      const a = plain[dir];
      const b = withFec[dir];
      assert.ok(a.lostPercent >= 2.5, `${dir}: without FEC only ${a.lostPercent}% lost`);
      assert.ok(a.packets > 1000 && b.packets > 1000, `${dir}: the flows ran`);
      // ... and FEC recovers most of it (adaptive: the first blocks go unprotected until QUIC
      // reports loss, and small blocks closed by the flush timer carry only one or two repair
      // packets, so the bound is a factor, not zero).
      assert.ok(
        b.lostPercent < a.lostPercent / 3,
        `${dir}: with FEC ${b.lostPercent}% vs ${a.lostPercent}% without`,
      );
    }
    assert.ok(Date.now() - started < 90_000, 'the test stays within its time budget');
  } finally {
    await topo.destroy();
  }
});
