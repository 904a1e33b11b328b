// DATAGRAMs: 1280-byte IP packets fit at once (no PMTUD wait), both ways, over IPv4 and IPv6;
// batched delivery; queue-full + drain; never-fitting datagrams dropped and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { Endpoint, maxDatagramSize, type Connection } from './endpoint.js';
import { clientOptions, deferred, serverOptions, until } from './testing/harness.js';

function datagram(i: number, len: number): Buffer {
  const b = Buffer.alloc(len, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

async function roundTrip(host: string, bind: string): Promise<void> {
  const N = 200;
  const serverGot = new Set<number>();
  let lengthsOk = true;
  const server = new Endpoint(serverOptions({ host: bind }), {
    // Reply to each datagram as soon as it arrives: server -> client right at handshake time.
    onDatagrams(conn, data, lengths, count) {
      let off = 0;
      for (let i = 0; i < count; i++) {
        const d = data.subarray(off, off + lengths[i]);
        off += lengths[i];
        if (d.length !== 1280) lengthsOk = false;
        serverGot.add(d.readUInt32BE(0));
        conn.sendDatagram(d);
      }
    },
  });
  const clientGot = new Set<number>();
  let batches = 0;
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions({ host: bind }), {
    onHandshake: (c) => ready.resolve(c),
    onDatagrams(_c, data, lengths, count) {
      batches++;
      let off = 0;
      for (let i = 0; i < count; i++) {
        if (lengths[i] !== 1280) lengthsOk = false;
        clientGot.add(data.readUInt32BE(off));
        off += lengths[i];
      }
    },
  });
  try {
    client.connect(host, server.address().port);
    const conn = await ready.promise;
    // Sent right after the handshake, before any PMTUD probe could have succeeded.
    for (let i = 0; i < N; i++) assert.equal(conn.sendDatagram(datagram(i, 1280)), true);
    await until(() => clientGot.size >= N * 0.95, 5000, 'echoed datagrams');
    assert.ok(serverGot.size >= N * 0.95, `server got ${serverGot.size}`);
    assert.ok(lengthsOk, 'every datagram arrived whole');
    assert.ok(batches < clientGot.size, 'delivery is batched');
    const st = conn.stats();
    assert.equal(st.datagramsDroppedTooBig, 0);
    assert.ok(st.datagramsSent >= N);
    assert.ok(st.srttUs > 0 && st.cwnd > 0 && st.packetsSent > 0 && st.bytesRecv > N * 1280);
  } finally {
    await client.close();
    await server.close();
  }
}

test('1280-byte datagrams both ways over IPv6 (::1)', () => roundTrip('::1', '::1'));

test('1280-byte datagrams both ways over IPv4 (127.0.0.1)', () =>
  roundTrip('127.0.0.1', '127.0.0.1'));

test('too-big datagrams are dropped and counted; a full queue says so and drains', async () => {
  let received = 0;
  const server = new Endpoint(serverOptions(), {
    onDatagrams: (_c, _d, _l, count) => (received += count),
  });
  const ready = deferred<Connection>(5000, 'handshake');
  const drained = deferred<void>(5000, 'drain');
  const client = new Endpoint(clientOptions({ datagramQueueLength: 16 }), {
    onHandshake: (c) => ready.resolve(c),
    onDatagramDrain: () => drained.resolve(),
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    // Never fits: dropped at once, counted, does not block what follows.
    assert.equal(conn.sendDatagram(Buffer.alloc(maxDatagramSize() + 1)), true);
    assert.equal(conn.sendDatagram(Buffer.alloc(60000)), true);
    let queued = 0;
    while (conn.sendDatagram(Buffer.alloc(1200, 1))) queued++;
    assert.equal(queued, 16, 'queue length is honoured');
    await drained.promise;
    await until(() => received >= 16, 3000, 'queued datagrams arrive');
    const st = conn.stats();
    assert.equal(st.datagramsDroppedTooBig, 2);
    assert.ok(st.datagramsDroppedFull >= 1);
    assert.equal(conn.sendDatagram(Buffer.alloc(maxDatagramSize(), 2)), true);
    await until(() => received >= 17, 3000, 'largest datagram arrives');
  } finally {
    await client.close();
    await server.close();
  }
});

test('a datagram queued longer than datagramMaxAgeMs is dropped and counted, not sent late', async () => {
  const got: number[] = [];
  const server = new Endpoint(serverOptions(), {
    onDatagrams(_conn, data, lengths, count) {
      let off = 0;
      for (let i = 0; i < count; i++) {
        got.push(data.readUInt32BE(off));
        off += lengths[i];
      }
    },
  });
  const ready = deferred<Connection>(5000, 'handshake');
  const client = new Endpoint(clientOptions({ datagramMaxAgeMs: 5 }), {
    onHandshake: (c) => ready.resolve(c),
  });
  try {
    client.connect('::1', server.address().port);
    const conn = await ready.promise;
    // Queue 50, then hold the event loop for 30 ms: nothing can be written before they are
    // older than 5 ms, so the first write finds every one of them expired.
    for (let i = 0; i < 50; i++) assert.equal(conn.sendDatagram(datagram(i, 200)), true);
    const until30 = performance.now() + 30;
    while (performance.now() < until30);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(conn.stats().datagramsDroppedExpired, 50);
    // A fresh one still goes through.
    conn.sendDatagram(datagram(1000, 200));
    await until(() => got.includes(1000), 3000, 'fresh datagram');
    assert.deepEqual(
      got.filter((n) => n < 50),
      [],
      'no expired datagram was sent',
    );
    assert.throws(
      () => new Endpoint(clientOptions({ datagramMaxAgeMs: -1 }), {}),
      /datagramMaxAgeMs must be 0\.\.60000/,
    );
  } finally {
    await client.close();
    await server.close();
  }
});
