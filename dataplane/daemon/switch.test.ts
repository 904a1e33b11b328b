import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpAddress } from '../ring/ip-address.js';
import { createRouteTable, RouteTable } from '../ring/route-table.js';
import { createRing, RingConsumer, RingProducer } from '../ring/spsc.js';
import { PacketSwitch, SwitchPath } from './switch.js';

/** A minimal IPv4 or IPv6 header (the switch reads only version and destination). */
function packet(src: string, dst: string, bytes = 64): Uint8Array {
  const s = parseIpAddress(src);
  const d = parseIpAddress(dst);
  const p = new Uint8Array(bytes);
  if (d.length === 4) {
    p[0] = 0x45;
    p.set(s, 12);
    p.set(d, 16);
  } else {
    p[0] = 0x60;
    p.set(s, 8);
    p.set(d, 24);
  }
  p[bytes - 1] = 0xab;
  return p;
}

function setup(shard = 0, hairpinSlots = 4) {
  const routes = new RouteTable(createRouteTable(64));
  const tun = createRing({ slotCount: 8 });
  const rings = [0, 1, 2].map((d) =>
    d === shard ? undefined : createRing({ slotCount: hairpinSlots }),
  );
  const local: Array<{ slot: number; bytes: number[] }> = [];
  const sw = new PacketSwitch({
    shard,
    routes,
    toTun: new RingProducer(tun),
    toShards: rings.map((h) => (h === undefined ? undefined : new RingProducer(h))),
    local: (slot, p, offset, length) =>
      local.push({ slot, bytes: Array.from(p.subarray(offset, offset + length)) }),
  });
  return { sw, routes, tun: new RingConsumer(tun), rings, local };
}

test('a destination that is no client goes to the TUN, copied from its offset', () => {
  const { sw, tun, local } = setup();
  const p = packet('10.77.0.2', '10.77.0.1');
  const framed = new Uint8Array(p.length + 3);
  framed.set(p, 3);
  assert.equal(sw.forward(framed, 3, p.length), SwitchPath.Tun);
  assert.equal(tun.available(), 1);
  assert.deepEqual(Array.from(tun.slot(0).subarray(0, tun.length(0))), Array.from(p));
  assert.equal(local.length, 0);
  // Truncated or not IP: not ours to judge here, the kernel drops it.
  assert.equal(sw.forward(new Uint8Array([0x45, 0, 0]), 0, 3), SwitchPath.Tun);
  assert.deepEqual(sw.counters, { tun: 2, local: 0, shard: 0, tunDrops: 0, hairpinDrops: 0 });
});

test('a client on the same shard gets the packet directly, never the TUN', () => {
  const { sw, routes, tun, local } = setup(0);
  routes.set('10.77.0.3', 0, 7);
  routes.set('fd77::3', 0, 7);
  const p4 = packet('10.77.0.2', '10.77.0.3');
  const p6 = packet('fd77::2', 'fd77::3', 80);
  assert.equal(sw.forward(p4, 0, p4.length), SwitchPath.Local);
  assert.equal(sw.forward(p6, 0, p6.length), SwitchPath.Local);
  assert.deepEqual(
    local.map((l) => l.slot),
    [7, 7],
  );
  assert.deepEqual(local[1].bytes, Array.from(p6));
  assert.equal(tun.available(), 0);
});

test('a client on another shard: through the hairpin ring of that shard, tagged with its slot', () => {
  const { sw, routes, tun, rings, local } = setup(0);
  routes.set('10.77.0.9', 2, 5);
  routes.set('fd77::9', 1, 4);
  const p = packet('10.77.0.2', '10.77.0.9', 100);
  assert.equal(sw.forward(p, 0, p.length), SwitchPath.Shard);
  const q = packet('fd77::2', 'fd77::9', 120);
  assert.equal(sw.forward(q, 0, q.length), SwitchPath.Shard);
  const to2 = new RingConsumer(rings[2]!);
  const to1 = new RingConsumer(rings[1]!);
  assert.equal(to2.available(), 1);
  assert.equal(to2.tag(0), 5);
  assert.deepEqual(Array.from(to2.slot(0).subarray(0, to2.length(0))), Array.from(p));
  assert.equal(to1.available(), 1);
  assert.equal(to1.tag(0), 4);
  assert.equal(to1.length(0), 120);
  assert.equal(tun.available(), 0);
  assert.equal(local.length, 0);
});

test('a full hairpin ring drops and counts, on the switch and on the ring', () => {
  const { sw, routes, rings } = setup(0, 2);
  routes.set('10.77.0.9', 1, 0);
  const p = packet('10.77.0.2', '10.77.0.9');
  const paths = [0, 1, 2, 3].map(() => sw.forward(p, 0, p.length));
  assert.deepEqual(paths, [
    SwitchPath.Shard,
    SwitchPath.Shard,
    SwitchPath.Dropped,
    SwitchPath.Dropped,
  ]);
  assert.equal(sw.counters.hairpinDrops, 2);
  assert.equal(new RingConsumer(rings[1]!).drops(), 2);
  // The address leaves the table (session ended): back to the TUN.
  routes.remove('10.77.0.9');
  assert.equal(sw.forward(p, 0, p.length), SwitchPath.Tun);
});
