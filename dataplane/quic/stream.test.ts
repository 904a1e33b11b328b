// Streams: a bidirectional echo of several MB, unidirectional streams both ways, RESET_STREAM and
// STOP_SENDING reaching the peer, and receive flow control tied to what JS consumed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';

import { Endpoint, type Connection } from './endpoint.js';
import { clientOptions, deferred, serverOptions, sleep, until } from './testing/harness.js';

test('bidirectional echo of 8 MB arrives intact', async () => {
  const server = new Endpoint(serverOptions(), {
    onStreamData: (conn, sid, data, fin) => conn.writeStream(sid, data, fin),
  });
  const payload = randomBytes(8 << 20);
  const received: Buffer[] = [];
  const done = deferred<void>(30000, 'echo');
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions(), {
    onHandshake: (c) => ready.resolve(c),
    onStreamData: (_c, _sid, data, fin) => {
      received.push(data);
      if (fin) done.resolve();
    },
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    const sid = conn.openBidiStream();
    assert.ok(sid >= 0 && sid % 4 === 0, 'client bidi stream id');
    for (let off = 0; off < payload.length; off += 65536)
      conn.writeStream(sid, payload.subarray(off, off + 65536), off + 65536 >= payload.length);
    await done.promise;
    const echo = Buffer.concat(received);
    assert.equal(echo.length, payload.length);
    assert.equal(
      createHash('sha256').update(echo).digest('hex'),
      createHash('sha256').update(payload).digest('hex'),
    );
  } finally {
    await client.close();
    await server.close();
  }
});

test('unidirectional streams both ways; a write on the peer uni stream is refused', async () => {
  const serverGot = deferred<{ sid: number; text: string }>(5000, 'server uni data');
  const chunks = new Map<number, Buffer[]>();
  const server = new Endpoint(serverOptions(), {
    onStreamData(conn, sid, data, fin) {
      chunks.set(sid, [...(chunks.get(sid) ?? []), data]);
      if (!fin) return;
      const text = Buffer.concat(chunks.get(sid) ?? []).toString();
      assert.throws(() => conn.writeStream(sid, Buffer.from('x')), { code: 'ERR_QUIC_NO_STREAM' });
      const back = conn.openUniStream();
      conn.writeStream(back, Buffer.from(`re:${text}`), true);
      serverGot.resolve({ sid, text });
    },
  });
  const clientGot = deferred<{ sid: number; text: string }>(5000, 'client uni data');
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions(), {
    onHandshake: (c) => ready.resolve(c),
    onStreamData: (_c, sid, data, fin) => {
      if (fin) clientGot.resolve({ sid, text: data.toString() });
    },
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    const sid = conn.openUniStream();
    assert.equal(sid & 3, 2, 'client uni stream id');
    conn.writeStream(sid, Buffer.from('hello '));
    conn.writeStream(sid, Buffer.from('uni'), true);
    assert.throws(() => conn.writeStream(sid, Buffer.from('late')), {
      code: 'ERR_QUIC_STREAM_FIN',
    });
    const s = await serverGot.promise;
    assert.deepEqual(s, { sid, text: 'hello uni' });
    const c = await clientGot.promise;
    assert.equal(c.sid & 3, 3, 'server uni stream id');
    assert.equal(c.text, 're:hello uni');
  } finally {
    await client.close();
    await server.close();
  }
});

test('RESET_STREAM reaches the peer with its code; STOP_SENDING stops the peer writer', async () => {
  const reset = deferred<[number, number]>(5000, 'reset');
  const stop = deferred<[number, number]>(5000, 'stop sending');
  const timers: NodeJS.Timeout[] = [];
  const server = new Endpoint(serverOptions(), {
    onStreamReset: (_c, sid, code) => reset.resolve([sid, code]),
    onStreamData(conn, sid, data) {
      if (data.toString() !== 'talk to me') return;
      // Keep writing until the peer's STOP_SENDING makes the transport refuse.
      const t = setInterval(() => {
        if (!conn.closed) conn.writeStream(sid, Buffer.alloc(1000, 1));
      }, 10);
      timers.push(t);
    },
    onStopSending: (_c, sid, code) => {
      timers.forEach(clearInterval);
      stop.resolve([sid, code]);
    },
  });
  const ready = deferred<Connection>(5000, 'handshake');
  let stopped = false;
  const client = new Endpoint(clientOptions(), {
    onHandshake: (c) => ready.resolve(c),
    onStreamData(conn, sid) {
      if (!stopped) conn.stopSending(sid, 0x10b);
      stopped = true;
    },
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    const a = conn.openBidiStream();
    conn.writeStream(a, Buffer.from('some data'));
    conn.resetStream(a, 0x10c);
    const b = conn.openBidiStream();
    conn.writeStream(b, Buffer.from('talk to me'));
    assert.deepEqual(await reset.promise, [a, 0x10c]);
    // ngtcp2 1.11 does not expose the STOP_SENDING code (see README): 2^62 stands for unknown.
    assert.deepEqual(await stop.promise, [b, 2 ** 62]);
  } finally {
    timers.forEach(clearInterval);
    await client.close();
    await server.close();
  }
});

test('a slow consumer holds the sender at the flow-control window', async () => {
  const window = 64 * 1024;
  let got = 0;
  let streamId = -1;
  let serverConn: Connection | undefined;
  const server = new Endpoint(
    serverOptions({ manualStreamCredit: true, streamWindow: window, connectionWindow: 1 << 20 }),
    {
      onStreamData(conn, sid, data) {
        got += data.length;
        streamId = sid;
        serverConn = conn;
      },
    },
  );
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions(), { onHandshake: (c) => ready.resolve(c) });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    const sid = conn.openBidiStream();
    const total = 1 << 20;
    let unacked = 0;
    for (let off = 0; off < total; off += 16384)
      unacked = conn.writeStream(sid, Buffer.alloc(16384, 3));
    assert.equal(unacked, total, 'everything is buffered on the sender');
    await until(() => got >= window, 3000, 'first window');
    await sleep(200);
    assert.equal(got, window, 'no byte beyond the window without credit');
    // Consume in steps: each credit lets at most that much more through.
    let credit = window;
    while (got < total) {
      const before = got;
      serverConn?.extendStreamCredit(streamId, window);
      credit += window;
      await until(() => got > before, 3000, 'more data after credit');
      assert.ok(got <= credit, `received ${got} with credit ${credit}`);
    }
    assert.equal(got, total);
  } finally {
    await client.close();
    await server.close();
  }
});
