import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataplaneMetrics } from './metrics.js';
import { emptyReport, type SessionFigures } from './report.js';

function session(over: Partial<SessionFigures>): SessionFigures {
  return {
    sessionId: 's1',
    client: 'alice/laptop',
    addresses: ['10.77.0.2'],
    bytesIn: 0,
    bytesOut: 0,
    packetsIn: 0,
    packetsOut: 0,
    spoofedDropped: 0,
    policyDropped: 0,
    rttSeconds: 0,
    lossRatio: 0,
    fecRecovered: 0,
    fecRepairSent: 0,
    fecOverheadBytes: 0,
    fecRatio: 0,
    fecUnrecoverableBlocks: 0,
    startedAt: 0,
    ...over,
  };
}

async function value(m: DataplaneMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = await m.registry.getSingleMetric(name)?.get();
  const row = metric?.values.find((v) =>
    Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want),
  );
  return row?.value;
}

test('cumulative session snapshots become counter increments, not double counts', async () => {
  const m = new DataplaneMetrics();
  const r1 = emptyReport(0);
  r1.sessions.push(session({ bytesIn: 1000, packetsIn: 10, rttSeconds: 0.002 }));
  r1.connections.accepted = 1;
  m.apply(r1);
  const r2 = emptyReport(0);
  r2.sessions.push(session({ bytesIn: 1500, packetsIn: 15, spoofedDropped: 2 }));
  m.apply(r2);
  const labels = { client: 'alice/laptop', direction: 'rx' };
  assert.equal(await value(m, 'masque_vpn_client_bytes_total', labels), 1500);
  assert.equal(await value(m, 'masque_vpn_client_packets_total', labels), 15);
  assert.equal(await value(m, 'masque_vpn_client_spoofed_packets_total'), 2);
  assert.equal(await value(m, 'masque_vpn_connections_total', { result: 'accepted' }), 1);
  assert.equal(await value(m, 'masque_vpn_active_connections'), 1);
});

test('active sessions sum over shards and drop when a session ends', async () => {
  const m = new DataplaneMetrics();
  const a = emptyReport(0);
  a.sessions.push(session({ sessionId: 'a' }));
  const b = emptyReport(1);
  b.sessions.push(session({ sessionId: 'b' }), session({ sessionId: 'c' }));
  m.apply(a);
  m.apply(b);
  assert.equal(await value(m, 'masque_vpn_active_connections'), 3);
  const b2 = emptyReport(1);
  b2.ended.push({ client: 'x', durationSeconds: 12, reason: 'closed' });
  m.apply(b2);
  assert.equal(await value(m, 'masque_vpn_active_connections'), 1);
  const text = await m.registry.metrics();
  assert.match(text, /masque_vpn_session_duration_seconds_count 1/);
});

test('/metrics is served over HTTP', async () => {
  const m = new DataplaneMetrics();
  const server = await m.serve('127.0.0.1', 0);
  try {
    const addr = server.address();
    assert.ok(addr !== null && typeof addr === 'object');
    const res = await fetch(`http://127.0.0.1:${addr.port}/metrics`);
    assert.equal(res.status, 200);
    assert.match(await res.text(), /masque_vpn_active_connections 0/);
    assert.equal((await fetch(`http://127.0.0.1:${addr.port}/`)).status, 404);
  } finally {
    server.close();
  }
});

test('FEC figures of a session become per-client counters and a ratio gauge', async () => {
  const m = new DataplaneMetrics();
  const r1 = emptyReport(0);
  r1.sessions.push(session({ fecRecovered: 4, fecRepairSent: 10, fecRatio: 0.2 }));
  m.apply(r1);
  const r2 = emptyReport(0);
  r2.sessions.push(
    session({ fecRecovered: 9, fecRepairSent: 30, fecOverheadBytes: 4000, fecRatio: 0.1 }),
  );
  m.apply(r2);
  const c = { client: 'alice/laptop' };
  assert.equal(await value(m, 'masque_vpn_client_fec_recovered_total', c), 9);
  assert.equal(await value(m, 'masque_vpn_client_fec_repair_sent_total', c), 30);
  assert.equal(await value(m, 'masque_vpn_client_fec_overhead_bytes_total', c), 4000);
  assert.equal(await value(m, 'masque_vpn_client_fec_ratio', c), 0.1);
});
