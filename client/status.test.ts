import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientError } from './errors.js';
import { ClientMetrics, MetricsServer, parseListenAddress } from './metrics.js';
import {
  buildStatus,
  ControlServer,
  formatStatus,
  queryStatus,
  type ClientStatus,
} from './status.js';
import type { SupervisorSnapshot } from './supervisor.js';

const t0 = 1_700_000_000_000;
const snap: SupervisorSnapshot = {
  state: 'up',
  stateSince: t0,
  startedAt: t0 - 120_000,
  connectedAt: t0,
  reconnects: 2,
  failedAttempts: 3,
  lastError: undefined,
  deniedReason: undefined,
  addresses: ['10.77.0.2/32', 'fd77::2/128'],
  routes: ['10.77.0.0/16'],
  traffic: { bytesSent: 1_500_000, bytesReceived: 2048, packetsSent: 1000, packetsReceived: 12 },
  droppedWhileDown: 4,
  rttMs: 12.34,
  lossRatio: 0.0125,
  fec: { scheme: 'xor', repairSent: 5, repairReceived: 6, recovered: 7, unrecoverable: 1 },
  nextAttemptAt: undefined,
};
const info = {
  tun: 'mq0',
  identity: 'alice/laptop',
  serverName: 'vpn.test',
  endpoints: ['10.200.0.1:4433'],
};
const status: ClientStatus = buildStatus(snap, info, t0 + 3_725_000);

describe('status', () => {
  it('builds the figures scripts read', () => {
    assert.equal(status.state, 'up');
    assert.equal(status.uptimeSeconds, 3725);
    assert.equal(status.runningSeconds, 3845);
    assert.equal(status.reconnects, 2);
    assert.equal(status.rttMs, 12.34);
    assert.deepEqual(status.server, { name: 'vpn.test', endpoints: ['10.200.0.1:4433'] });
  });

  it('formats a human summary with every figure', () => {
    const text = formatStatus(status);
    for (const want of [
      /^state: +up for 1h02m$/m,
      /^server: +vpn\.test \(10\.200\.0\.1:4433\)$/m,
      /^addresses: +10\.77\.0\.2\/32, fd77::2\/128$/m,
      /^routes: +10\.77\.0\.0\/16$/m,
      /^sent: +1\.4 MiB in 1000 packets$/m,
      /^received: +2\.0 KiB in 12 packets$/m,
      /^rtt: +12\.3 ms$/m,
      /^loss: +1\.25 %$/m,
      /^reconnects: +2 \(failed attempts: 3\)$/m,
      /^fec: +xor: repair sent 5, received 6, recovered 7, unrecoverable 1$/m,
    ]) {
      assert.match(text, want);
    }
    const down = formatStatus(
      buildStatus(
        {
          ...snap,
          state: 'reconnecting',
          connectedAt: undefined,
          nextAttemptAt: t0 + 2500,
          lastError: 'idle timeout',
          fec: undefined,
          rttMs: undefined,
        },
        info,
        t0,
      ),
    );
    assert.match(down, /^state: +reconnecting \(next attempt in 2\.5 s\)$/m);
    assert.match(down, /^last error: +idle timeout$/m);
    assert.match(down, /^rtt: +n\/a$/m);
    assert.match(down, /^fec: +off$/m);
  });
});

describe('control socket', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'mqc-sock-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers status over a 0600 socket, and refuses a second listener', async () => {
    const path = join(dir, 'state', 'mq0.sock');
    let calls = 0;
    const server = await ControlServer.listen(path, () => {
      calls++;
      return status;
    });
    try {
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, 'state')).mode & 0o777, 0o700);
      assert.deepEqual(await queryStatus(path), status);
      assert.equal(calls, 1);
      await assert.rejects(
        ControlServer.listen(path, () => status),
        /already listening/,
      );
    } finally {
      await server.close();
    }
    await assert.rejects(
      queryStatus(path),
      (err: unknown) => err instanceof ClientError && /no control socket/.test(err.message),
    );
  });

  it('replaces a stale socket left by a crash', async () => {
    const path = join(dir, 'stale.sock');
    // A socket file nobody listens on: bind, then close without unlinking.
    const s = createServer();
    await new Promise<void>((r) => s.listen(path, r));
    const handle = (s as unknown as { _handle: { close(): void } })._handle;
    handle.close();
    await assert.rejects(queryStatus(path), /stale control socket|no control socket/);
    const server = await ControlServer.listen(path, () => status);
    assert.equal((await queryStatus(path)).tun, 'mq0');
    await server.close();
  });

  it('times out a server that never answers', async () => {
    const path = join(dir, 'mute.sock');
    const mute = createServer(() => {});
    await new Promise<void>((r) => mute.listen(path, r));
    try {
      await assert.rejects(queryStatus(path, 100), /did not answer within 100 ms/);
    } finally {
      mute.close();
    }
  });
});

describe('metrics', () => {
  it('parses listen addresses', () => {
    assert.deepEqual(parseListenAddress('127.0.0.1:9092'), { host: '127.0.0.1', port: 9092 });
    assert.deepEqual(parseListenAddress('[::1]:9092'), { host: '::1', port: 9092 });
    assert.deepEqual(parseListenAddress(':9092'), { host: '127.0.0.1', port: 9092 });
    assert.throws(() => parseListenAddress('9092x'), /not HOST:PORT/);
    assert.throws(() => parseListenAddress('a:70000'), /not HOST:PORT/);
  });

  it('exposes the status figures, read once per scrape', async () => {
    let calls = 0;
    const m = new ClientMetrics(() => {
      calls++;
      return status;
    });
    const text = await m.scrape();
    assert.equal(calls, 1);
    for (const want of [
      'masque_client_state{state="up"} 1',
      'masque_client_state{state="reconnecting"} 0',
      'masque_client_up 1',
      'masque_client_uptime_seconds 3725',
      'masque_client_bytes_total{direction="tx"} 1500000',
      'masque_client_bytes_total{direction="rx"} 2048',
      'masque_client_packets_total{direction="tx"} 1000',
      'masque_client_rtt_seconds 0.01234',
      'masque_client_loss_ratio 0.0125',
      'masque_client_reconnects_total 2',
      'masque_client_fec_recovered_total 7',
    ]) {
      assert.ok(text.includes(want), `missing: ${want}`);
    }
    await m.scrape();
    assert.equal(calls, 2);
  });

  it('serves /metrics over HTTP', async () => {
    const server = await MetricsServer.listen('127.0.0.1:0', () => status);
    try {
      const { port } = server.address();
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /masque_client_up 1/);
      assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    } finally {
      await server.close();
    }
  });
});
