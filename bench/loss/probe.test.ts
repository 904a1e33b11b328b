import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startImpairProxy } from '../impair/proxy.js';
import { measuredRange, percentiles, runSender, startEcho } from './probe.js';

test('percentiles are nearest-rank', () => {
  const v = Float64Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(percentiles(v), { p50: 50, p99: 99 });
  assert.deepEqual(percentiles(new Float64Array(0)), { p50: 0, p99: 0 });
  assert.deepEqual(percentiles(Float64Array.of(7)), { p50: 7, p99: 7 });
});

test('the echo counts each direction’s loss and delay through a lossy, delayed path', async () => {
  const o = { rate: 1000, warmupSeconds: 0.2, seconds: 1, size: 200 };
  const { from, to } = measuredRange(o);
  assert.equal(to - from, 1000);
  const run = 0xbe7c4;
  const echo = await startEcho({ bind: '127.0.0.1:0', run, from, to });
  // 10% loss each way, 5 ms each way: the echo should see ~90% and the sender ~81%.
  const proxy = await startImpairProxy({
    listen: '127.0.0.1:0',
    target: `127.0.0.1:${echo.port}`,
    up: { loss: 0.1, delayMs: 5 },
    down: { loss: 0.1, delayMs: 5 },
    seed: 11,
  });
  // A straggler of another run on the echo's port is ignored.
  const { createSocket } = await import('node:dgram');
  const stray = createSocket('udp4');
  await new Promise<void>((r) => stray.send(Buffer.alloc(64), echo.port, '127.0.0.1', () => r()));
  stray.close();
  let measuringAt = 0;
  const t0 = Date.now();
  try {
    const s = await runSender(
      { ...o, to: `127.0.0.1:${proxy.address.port}`, run, drainMs: 300 },
      () => (measuringAt = Date.now() - t0),
    );
    const e = echo.result();
    assert.equal(s.sent, 1000);
    assert.equal(s.payloadBytes, 172);
    assert.ok(measuringAt >= 150 && measuringAt < 600, `warm-up ended at ${measuringAt} ms`);
    assert.ok(s.measuredSeconds > 0.9 && s.measuredSeconds < 1.5, `${s.measuredSeconds} s`);
    const up = 1 - e.received / s.sent;
    const down = 1 - s.echoed / e.received;
    assert.ok(up > 0.06 && up < 0.14, `up loss ${up}`);
    assert.ok(down > 0.06 && down < 0.14, `down loss ${down}`);
    // Delays: about 5 ms each way (plus timer granularity), RTT their sum.
    assert.ok(e.upMs.p50 >= 4.5 && e.upMs.p50 < 25, `up ${e.upMs.p50} ms`);
    assert.ok(s.downMs.p50 >= 4.5 && s.downMs.p50 < 25, `down ${s.downMs.p50} ms`);
    assert.ok(s.rttMs.p50 >= 9.5 && s.rttMs.p99 >= s.rttMs.p50, `rtt ${JSON.stringify(s.rttMs)}`);
    const ps = proxy.stats();
    assert.ok(ps.up.lost > 0 && ps.down.lost > 0);
  } finally {
    await proxy.close();
    await echo.close();
  }
});
