// The reader and writer threads without a TUN device (and without root): a non-blocking
// AF_UNIX datagram socketpair keeps packet boundaries the way a TUN fd does, so the test plays
// the kernel on one end while the threads use the other.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import koffi from 'koffi';
import { createRingPlane, type RingPlaneHandle } from '../ring/plane.js';
import { createRouteTable, RouteTable } from '../ring/route-table.js';
import { RingConsumer, RingProducer } from '../ring/spsc.js';
import { parseIpAddress } from '../ring/ip-address.js';
import { TunThreads } from './threads.js';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;

function socketpair(): [number, number] {
  const lib = koffi.load('libc.so.6');
  const fn = lib.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)');
  const sv = new Int32Array(2);
  const rc = fn(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) as number;
  if (rc !== 0) throw new Error(`socketpair: errno ${koffi.errno()}`);
  return [sv[0], sv[1]];
}

function ipv4(dst: string, id: number, length = 40): Uint8Array {
  const p = new Uint8Array(length);
  p[0] = 0x45;
  p[2] = length >> 8;
  p[3] = length & 0xff;
  p[4] = id >> 8;
  p[5] = id & 0xff;
  p[9] = 17;
  p.set(parseIpAddress('192.0.2.1'), 12);
  p.set(parseIpAddress(dst), 16);
  return p;
}

function ipv6(dst: string, id: number): Uint8Array {
  const p = new Uint8Array(60);
  p[0] = 0x60;
  p[4] = 0;
  p[5] = 20;
  p[6] = 17;
  p[7] = 64;
  p.set(parseIpAddress('2001:db8::1'), 8);
  p.set(parseIpAddress(dst), 24);
  p[40] = id >> 8;
  p[41] = id & 0xff;
  return p;
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Everything the threads wrote to their end, read from ours. */
function readAll(fd: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      out.push(buf.slice(0, n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return out;
      throw e;
    }
  }
}

async function withThreads(
  shards: number,
  slotCount: number,
  body: (ctx: {
    kernel: number;
    plane: RingPlaneHandle;
    routes: RouteTable;
    threads: TunThreads;
  }) => Promise<void>,
): Promise<void> {
  const [kernel, device] = socketpair();
  const plane = createRingPlane({ shards, slotCount });
  const handle = createRouteTable(64);
  const routes = new RouteTable(handle);
  const threads = await TunThreads.start({ fd: device, plane, routes: handle });
  try {
    await body({ kernel, plane, routes, threads });
  } finally {
    const t0 = Date.now();
    await threads.stop();
    const ms = Date.now() - t0;
    fs.closeSync(kernel);
    fs.closeSync(device);
    assert.ok(ms < 500, `threads stopped in ${ms} ms`);
  }
}

test('reader routes by destination to the owning shard, in order, with session tags', async () => {
  await withThreads(2, 64, async ({ kernel, plane, routes, threads }) => {
    routes.set('10.77.0.2', 0, 11);
    routes.set('10.77.0.3', 1, 22);
    routes.set('fd77::3', 1, 33);
    const sent: Record<number, string[]> = { 0: [], 1: [] };
    for (let i = 0; i < 40; i++) {
      // Mixed destinations: most packets land in the guessed ring, some need the staging copy.
      const to = i % 3 === 0 ? '10.77.0.2' : i % 5 === 0 ? 'fd77::3' : '10.77.0.3';
      const pkt = to.includes(':') ? ipv6(to, i) : ipv4(to, i);
      fs.writeSync(kernel, pkt);
      sent[to === '10.77.0.2' ? 0 : 1].push(`${i}`);
    }
    await until(() => threads.counters().readPackets === 40, 'all packets read');
    for (const s of [0, 1]) {
      const c = new RingConsumer(plane.toShard[s]);
      const n = c.available();
      const got: string[] = [];
      for (let i = 0; i < n; i++) {
        const p = c.slot(i);
        const v6 = p[0] >> 4 === 6;
        got.push(`${v6 ? (p[40] << 8) | p[41] : (p[4] << 8) | p[5]}`);
        assert.equal(c.length(i), v6 ? 60 : 40);
        assert.equal(c.tag(i), s === 0 ? 11 : v6 ? 33 : 22);
      }
      c.release(n);
      assert.deepEqual(got, sent[s], `shard ${s} got its packets in order`);
    }
    const k = threads.counters();
    assert.ok(k.stagedCopies > 0 && k.stagedCopies < 40, `stagedCopies ${k.stagedCopies}`);
    assert.equal(k.dropNoRoute + k.dropMalformed + k.dropRingFull + k.dropOversize, 0);
  });
});

test('reader drops and counts: no route, malformed, oversize, ring full', async () => {
  await withThreads(1, 8, async ({ kernel, routes, threads }) => {
    routes.set('10.77.0.2', 0, 1);
    fs.writeSync(kernel, ipv4('10.77.0.9', 1));
    fs.writeSync(kernel, new Uint8Array([0x45, 0, 0, 10, 0, 0, 0, 0, 0, 0]));
    fs.writeSync(kernel, new Uint8Array([0x10, 1, 2, 3]));
    fs.writeSync(kernel, ipv4('10.77.0.2', 2, 3000)); // larger than a 2048-byte slot
    for (let i = 0; i < 12; i++) fs.writeSync(kernel, ipv4('10.77.0.2', 100 + i));
    await until(() => threads.counters().readPackets === 16, 'all packets read');
    const k = threads.counters();
    assert.equal(k.dropNoRoute, 1);
    assert.equal(k.dropMalformed, 2);
    assert.equal(k.dropOversize, 1);
    assert.equal(k.dropRingFull, 4, '12 packets into 8 slots nobody drains');
  });
});

test('writer drains every shard ring to the fd, each ring in order', async () => {
  await withThreads(3, 16, async ({ kernel, plane, threads }) => {
    const producers = plane.toWriter.map((h) => new RingProducer(h));
    for (let i = 0; i < 30; i++) {
      const s = i % 3;
      const slot = producers[s].reserve();
      assert.ok(slot);
      slot.set(ipv4('192.0.2.1', i));
      producers[s].commit(40);
    }
    await until(() => threads.counters().writePackets === 30, 'all packets written');
    const got = readAll(kernel).map((p) => (p[4] << 8) | p[5]);
    assert.equal(got.length, 30);
    assert.deepEqual(
      [...got].sort((a, b) => a - b),
      Array.from({ length: 30 }, (_, i) => i),
    );
    for (const s of [0, 1, 2]) {
      const mine = got.filter((id) => id % 3 === s);
      assert.deepEqual(
        mine,
        [...mine].sort((a, b) => a - b),
        `ring ${s} kept its order`,
      );
    }
    assert.equal(threads.counters().writeErrors, 0);
  });
});
