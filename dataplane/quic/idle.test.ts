// Idle timeout closes a silent connection on both sides; keep-alive PINGs keep it open.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Endpoint, type CloseInfo, type Connection } from './endpoint.js';
import { clientOptions, deferred, serverOptions, sleep } from './testing/harness.js';

test('a silent connection closes after the idle timeout, reported as idle on both sides', async () => {
  const serverClosed = deferred<CloseInfo>(30000, 'server idle close');
  const server = new Endpoint(serverOptions({ idleTimeoutMs: 400 }), {
    onClose: (_c, info) => serverClosed.resolve(info),
  });
  const ready = deferred<Connection>(5000, 'handshake');
  const clientClosed = deferred<CloseInfo>(30000, 'client idle close');
  const client = new Endpoint(clientOptions({ idleTimeoutMs: 400 }), {
    onHandshake: (c) => ready.resolve(c),
    onClose: (_c, info) => clientClosed.resolve(info),
  });
  try {
    client.connect('::1', server.address().port);
    await ready.promise;
    const t0 = Date.now();
    const info = await clientClosed.promise;
    assert.equal(info.why, 'idle');
    assert.ok(Date.now() - t0 >= 300, 'not before the timeout');
    assert.equal((await serverClosed.promise).why, 'idle');
  } finally {
    await client.close();
    await server.close();
  }
});

test('keep-alive PINGs keep an otherwise silent connection open past the idle timeout', async () => {
  let closed = false;
  const server = new Endpoint(serverOptions({ idleTimeoutMs: 400 }), {});
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions({ idleTimeoutMs: 400, keepAliveMs: 100 }), {
    onHandshake: (c) => ready.resolve(c),
    onClose: () => (closed = true),
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    const sent0 = conn.stats().packetsSent;
    await sleep(1500);
    assert.equal(closed, false);
    assert.ok(conn.stats().packetsSent > sent0 + 3, 'PINGs were sent');
  } finally {
    await client.close();
    await server.close();
  }
});
