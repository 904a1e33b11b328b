// The proxy on loopback, between a UDP client and a UDP echo server of the test's own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { AddressError, parseHostPort, startImpairProxy, type ImpairProxy } from './proxy.js';
import type { ImpairmentConfig } from './model.js';
import { settle } from './settle.js';

async function echoServer(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
  s.on('message', (msg, r) => s.send(msg, r.port, r.address));
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

async function client(): Promise<dgram.Socket> {
  const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 1 << 22 });
  s.bind(0, '127.0.0.1');
  await once(s, 'listening');
  return s;
}

const close = (s: dgram.Socket) => new Promise<void>((r) => s.close(() => r()));

/** Echo server behind a proxy, one client; runs `body` and tears everything down after. */
async function withProxy(
  up: ImpairmentConfig,
  down: ImpairmentConfig,
  body: (c: dgram.Socket, port: number, proxy: ImpairProxy) => Promise<void>,
): Promise<void> {
  const echo = await echoServer();
  const proxy = await startImpairProxy({
    listen: '127.0.0.1:0',
    target: `127.0.0.1:${echo.address().port}`,
    up,
    down,
    seed: 11,
  });
  const c = await client();
  try {
    await body(c, proxy.address.port, proxy);
  } finally {
    await close(c);
    await proxy.close();
    await close(echo);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('loss: the share of echoes lost matches the configured rate (one direction impaired)', async () => {
  await withProxy({ loss: 0.1 }, {}, async (c, port, proxy) => {
    const n = 2000;
    const seen = new Set<number>();
    c.on('message', (m) => seen.add(m.readUInt32BE(0)));
    for (let i = 0; i < n; i++) {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(i);
      c.send(b, port, '127.0.0.1');
      if (i % 50 === 49) await sleep(2); // stay clear of socket buffer overflows
    }
    await settle(() => proxy.stats().up.packets + seen.size);
    const s = proxy.stats();
    assert.equal(s.up.packets, n);
    const sigma = Math.sqrt((0.1 * 0.9) / n);
    assert.ok(Math.abs(s.up.lost / n - 0.1) < 4 * sigma, `proxy dropped ${s.up.lost}`);
    // What the client saw is what the proxy let through (loopback itself loses nothing here).
    assert.equal(seen.size, s.up.forwarded);
    assert.equal(s.down.lost, 0);
    assert.equal(s.clients, 1);
  });
});

test('delay: round trip through the proxy takes at least both delays', async () => {
  await withProxy({ delayMs: 25 }, { delayMs: 15 }, async (c, port) => {
    const rtts: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      c.send(Buffer.from('ping'), port, '127.0.0.1');
      await once(c, 'message');
      rtts.push(performance.now() - t0);
    }
    for (const rtt of rtts) assert.ok(rtt >= 39.5 && rtt < 200, `rtt ${rtt}`);
  });
});

test('rate limit: 1.6 Mbit at 8 Mbit/s arrives in about 200 ms', async () => {
  await withProxy({ rateBps: 8e6, queueMs: 1000 }, {}, async (c, port, proxy) => {
    const n = 200;
    let got = 0;
    let last = 0;
    c.on('message', () => {
      got++;
      last = performance.now();
    });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      c.send(Buffer.alloc(1000), port, '127.0.0.1');
      if (i % 50 === 49) await sleep(1);
    }
    while (got < n && performance.now() - t0 < 3000) await sleep(20);
    assert.equal(got, n);
    assert.equal(proxy.stats().up.queueDrops, 0);
    const elapsed = last - t0;
    assert.ok(elapsed > 180 && elapsed < 800, `took ${elapsed} ms`);
  });
});

test('close: stops forwarding, drops queued packets, frees its port', async () => {
  const echo = await echoServer();
  const proxy = await startImpairProxy({
    listen: '127.0.0.1:0',
    target: `127.0.0.1:${echo.address().port}`,
    up: { delayMs: 100 },
  });
  const port = proxy.address.port;
  const c = await client();
  let got = 0;
  c.on('message', () => got++);
  c.send(Buffer.from('x'), port, '127.0.0.1');
  await sleep(20);
  await proxy.close();
  await proxy.close(); // idempotent
  await sleep(150);
  assert.equal(got, 0, 'the queued packet was not sent after close');
  // The port is free again.
  const again = dgram.createSocket('udp4');
  again.bind(port, '127.0.0.1');
  await once(again, 'listening');
  await close(again);
  await close(c);
  await close(echo);
});

test('addresses: HOST:PORT and [v6]:PORT, anything else refused', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:443'), { host: '127.0.0.1', port: 443, type: 'udp4' });
  assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80, type: 'udp6' });
  for (const bad of ['127.0.0.1', '::1:80', 'host:99999', '[::1]']) {
    assert.throws(() => parseHostPort(bad), AddressError, bad);
  }
});

test('CLI: runs for --duration and exits 0; bad flags exit 2', async () => {
  const { main } = await import('./main.js');
  const echo = await echoServer();
  try {
    const code = await main([
      '--listen',
      '127.0.0.1:0',
      '--target',
      `127.0.0.1:${echo.address().port}`,
      '--loss',
      '1%',
      '--duration',
      '50ms',
    ]);
    assert.equal(code, 0);
  } finally {
    await close(echo);
  }
  assert.equal(await main(['--listen', '127.0.0.1:0', '--target', 'nowhere']), 2);
});
