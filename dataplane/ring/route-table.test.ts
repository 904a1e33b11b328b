import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, isMainThread, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { IpAddressError, parseIpAddress } from './ip-address.js';
import {
  createRouteTable,
  RouteTable,
  RouteTableFullError,
  ROUTE_MALFORMED,
  ROUTE_NONE,
  routeSession,
  routeShard,
  type RouteTableHandle,
} from './route-table.js';

// ---------------------------------------------------------------- concurrent writers (worker mode)

interface ChurnJob {
  table: RouteTableHandle;
  shard: number;
  rounds: number;
  /** Int32 word 0: writers still running. */
  control: SharedArrayBuffer;
}

/** The addresses writer `shard` owns: 10.<shard>.x.y and fd00::<shard>:x. */
const churnV4 = (shard: number, i: number) => `10.${shard}.${i >> 8}.${i & 0xff}`;
const churnV6 = (shard: number, i: number) => `fd00::${shard}:${i.toString(16)}`;
/** Session id that writer `shard` uses for key i in round r: checkable by any reader. */
const sessionOf = (shard: number, i: number) => shard * 10_000 + i;

function churn(job: ChurnJob): void {
  const t = new RouteTable(job.table);
  for (let r = 0; r < job.rounds; r++) {
    for (let i = 0; i < 40; i++) {
      t.set(churnV4(job.shard, i), job.shard, sessionOf(job.shard, i));
      t.set(churnV6(job.shard, i), job.shard, sessionOf(job.shard, i));
    }
    for (let i = 0; i < 40; i++) {
      assert.equal(
        t.remove(churnV4(job.shard, i), { shard: job.shard, session: sessionOf(job.shard, i) }),
        true,
      );
      assert.equal(t.remove(churnV6(job.shard, i)), true);
    }
  }
  Atomics.sub(new Int32Array(job.control), 0, 1);
}

if (!isMainThread && (workerData as { role?: string } | undefined)?.role === 'route-churn')
  churn((workerData as { job: ChurnJob }).job);

// ---------------------------------------------------------------- tests

function ipv4Packet(dst: string): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p.set(parseIpAddress('192.0.2.1'), 12);
  p.set(parseIpAddress(dst), 16);
  return p;
}

function ipv6Packet(dst: string): Uint8Array {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p.set(parseIpAddress('2001:db8::1'), 8);
  p.set(parseIpAddress(dst), 24);
  return p;
}

if (isMainThread) {
  test('parseIpAddress: IPv4, IPv6 forms, and rejects', () => {
    assert.deepEqual([...parseIpAddress('10.77.0.1')], [10, 77, 0, 1]);
    assert.deepEqual(
      Buffer.from(parseIpAddress('2001:db8::1')).toString('hex'),
      '20010db8000000000000000000000001',
    );
    assert.equal(Buffer.from(parseIpAddress('::')).toString('hex'), '0'.repeat(32));
    assert.equal(
      Buffer.from(parseIpAddress('::ffff:10.0.0.1')).toString('hex'),
      '00000000000000000000ffff0a000001',
    );
    assert.equal(
      Buffer.from(parseIpAddress('1:2:3:4:5:6:7:8')).toString('hex'),
      '00010002000300040005000600070008',
    );
    for (const bad of [
      '',
      '1.2.3',
      '256.1.1.1',
      '01.2.3.4',
      '1::2::3',
      ':1::',
      '1:2:3:4:5:6:7:8:9',
      'g::1',
      '1:2:3:4:5:6:7::8',
    ])
      assert.throws(() => parseIpAddress(bad), IpAddressError, bad);
  });

  test('set, lookup, upsert, owner-checked remove', () => {
    const t = new RouteTable(createRouteTable(16));
    assert.equal(t.lookup('10.77.0.2'), ROUTE_NONE);
    assert.equal(t.set('10.77.0.2', 3, 12345), true);
    const r = t.lookup('10.77.0.2');
    assert.equal(routeShard(r), 3);
    assert.equal(routeSession(r), 12345);
    assert.equal(t.set('10.77.0.2', 1, 7), false, 'upsert: a reconnect on another shard');
    assert.equal(routeShard(t.lookup('10.77.0.2')), 1);
    assert.equal(
      t.remove('10.77.0.2', { shard: 3, session: 12345 }),
      false,
      'old owner cannot remove',
    );
    assert.equal(t.size(), 1);
    assert.equal(t.remove('10.77.0.2', { shard: 1, session: 7 }), true);
    assert.equal(t.lookup('10.77.0.2'), ROUTE_NONE);
    assert.equal(t.remove('10.77.0.2'), false);
    assert.throws(() => t.set('10.0.0.1', 256, 0), RangeError);
    assert.throws(() => t.set('10.0.0.1', 0, 2 ** 23), RangeError);
  });

  test('lookupDestination reads IPv4/IPv6 destinations in place; malformed is its own code', () => {
    const t = new RouteTable(createRouteTable(16));
    t.set('10.77.0.9', 2, 99);
    t.set('fd77::9', 1, 42);
    assert.equal(t.lookupDestination(ipv4Packet('10.77.0.9'), 28), (99 << 8) | 2);
    assert.equal(t.lookupDestination(ipv6Packet('fd77::9'), 48), (42 << 8) | 1);
    assert.equal(t.lookupDestination(ipv4Packet('10.77.0.8'), 28), ROUTE_NONE);
    assert.equal(t.lookupDestination(ipv4Packet('10.77.0.9'), 19), ROUTE_MALFORMED);
    assert.equal(t.lookupDestination(ipv6Packet('fd77::9'), 39), ROUTE_MALFORMED);
    assert.equal(t.lookupDestination(new Uint8Array([0x50, 0, 0, 0]), 4), ROUTE_MALFORMED);
    assert.equal(t.lookupDestination(new Uint8Array(0), 0), ROUTE_MALFORMED);
    // An IPv4 key is not an IPv6 key with the same first word.
    t.set('10.77.0.10', 0, 1);
    assert.equal(t.lookup('a4d:a::'), ROUTE_NONE);
  });

  test('load limit: 3/4 of capacity, then RouteTableFullError; removal frees room', () => {
    const t = new RouteTable(createRouteTable(16));
    for (let i = 0; i < 12; i++) t.set(`10.0.0.${i}`, 0, i);
    assert.throws(() => t.set('10.0.0.200', 0, 0), RouteTableFullError);
    assert.equal(t.remove('10.0.0.3'), true);
    t.set('10.0.0.200', 0, 0);
    assert.equal(t.size(), 12);
    assert.equal(t.removeShard(0), 12);
    assert.equal(t.size(), 0);
  });

  test('purging tombstones keeps the ones a probe chain still needs', () => {
    // Reads the documented layout: 16 header words (LIVE = 3, USED = 4), buckets of 8 words
    // (STATE at +1, first key word at +2). A key's home is where it lands in an empty table.
    const capacity = 16;
    const home = (a: string) => {
      const h = createRouteTable(capacity);
      new RouteTable(h).set(a, 0, 0);
      const w = new Int32Array(h.buffer);
      for (let i = 0; i < capacity; i++) if (w[16 + i * 8 + 1] !== 0) return i;
      throw new Error('not stored');
    };
    const byHome = new Map<number, string[]>();
    for (let i = 0; i < 1024; i++) {
      const a = `10.8.${i >> 8}.${i & 0xff}`;
      const list = byHome.get(home(a)) ?? [];
      list.push(a);
      byHome.set(home(a), list);
    }
    const pick = (h: number, n = 0) => byHome.get(h)![n];
    const [A, B] = [pick(2, 0), pick(2, 1)]; // B sits at 3 and needs the bucket at 2
    const x = [pick(5), pick(8), pick(11)]; // tombstones nobody needs once removed
    const y = [pick(6), pick(9), pick(12)];
    const fillers = [pick(4), pick(14), pick(15), pick(0)];
    const h = createRouteTable(capacity);
    const t = new RouteTable(h);
    const words = new Int32Array(h.buffer);
    const all = [A, B, ...fillers, ...x, ...y];
    all.forEach((a, i) => t.set(a, 1, i));
    for (const a of [...x, A]) assert.equal(t.remove(a), true);
    assert.equal(words[3], 8, 'live');
    assert.equal(words[4], 12, 'live + tombstones: at the load limit');
    t.set(pick(7), 1, 99); // lands on an empty bucket past the limit: purge first
    assert.equal(words[4] - words[3], 1, 'three tombstones emptied, the needed one kept');
    assert.equal(routeSession(t.lookup(B)), 1);
    for (const a of [...fillers, ...y]) assert.equal(routeSession(t.lookup(a)), all.indexOf(a));
    assert.equal(routeSession(t.lookup(pick(7))), 99);
  });

  test('property: behaves as a map under any set/remove sequence (tombstones, cleanup)', () => {
    const addr = fc.oneof(
      fc.integer({ min: 0, max: 100 }).map((i) => `10.9.0.${i}`),
      fc.integer({ min: 0, max: 100 }).map((i) => `fd09::${i.toString(16)}`),
    );
    const op = fc.oneof(
      fc.tuple(fc.constant('set' as const), addr, fc.integer({ min: 0, max: 3 }), fc.nat(1000)),
      fc.tuple(fc.constant('remove' as const), addr, fc.constant(0), fc.constant(0)),
      fc.tuple(
        fc.constant('removeShard' as const),
        addr,
        fc.integer({ min: 0, max: 3 }),
        fc.constant(0),
      ),
    );
    fc.assert(
      fc.property(fc.constantFrom(16, 64), fc.array(op, { maxLength: 400 }), (capacity, ops) => {
        const t = new RouteTable(createRouteTable(capacity));
        const model = new Map<string, number>();
        for (const [kind, a, shard, session] of ops) {
          if (kind === 'set') {
            if (!model.has(a) && model.size >= (capacity * 3) / 4) {
              assert.throws(() => t.set(a, shard, session), RouteTableFullError);
              continue;
            }
            assert.equal(t.set(a, shard, session), !model.has(a));
            model.set(a, (session << 8) | shard);
          } else if (kind === 'remove') {
            assert.equal(t.remove(a), model.delete(a));
          } else {
            let n = 0;
            for (const [k, v] of model) if (routeShard(v) === shard && model.delete(k)) n++;
            assert.equal(t.removeShard(shard), n);
          }
          assert.equal(t.size(), model.size);
          for (const [k, v] of model) assert.equal(t.lookup(k), v, k);
        }
        for (let i = 0; i <= 100; i++)
          for (const a of [`10.9.0.${i}`, `fd09::${i.toString(16)}`])
            assert.equal(t.lookup(a), model.get(a) ?? ROUTE_NONE, a);
      }),
      { numRuns: 100 },
    );
  });

  test('4 writer threads churn while this thread looks up: never a wrong or missed route', async () => {
    const handle = createRouteTable(1024);
    const t = new RouteTable(handle);
    // Stable entries interleaved with the churning ones; they must be found on every lookup.
    const stable: string[] = [];
    for (let i = 0; i < 64; i++) {
      stable.push(`10.200.0.${i}`, `fd00::c8:${i.toString(16)}`);
      t.set(`10.200.0.${i}`, 200, 500_000 + i);
      t.set(`fd00::c8:${i.toString(16)}`, 200, 600_000 + i);
    }
    const control = new SharedArrayBuffer(4);
    const running = new Int32Array(control);
    running[0] = 4;
    const workers = [0, 1, 2, 3].map(
      (shard) =>
        new Worker(new URL(import.meta.url), {
          workerData: { role: 'route-churn', job: { table: handle, shard, rounds: 150, control } },
        }),
    );
    const exits = workers.map((w) => new Promise<number>((resolve) => w.once('exit', resolve)));
    let lookups = 0;
    let hits = 0;
    const v4 = stable.map(parseIpAddress);
    while (Atomics.load(running, 0) > 0) {
      for (let s = 0; s < 4; s++)
        for (let i = 0; i < 40; i += 7) {
          for (const r of [t.lookup(churnV4(s, i)), t.lookup(churnV6(s, i))]) {
            lookups++;
            if (r === ROUTE_NONE) continue;
            hits++;
            assert.equal(routeShard(r), s);
            assert.equal(routeSession(r), sessionOf(s, i));
          }
        }
      for (let i = 0; i < v4.length; i++) {
        const r = t.lookup(v4[i]);
        lookups++;
        assert.equal(routeShard(r), 200, `stable ${stable[i]} missed`);
        assert.equal(routeSession(r), (i & 1 ? 600_000 : 500_000) + (i >> 1));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.deepEqual(await Promise.all(exits), [0, 0, 0, 0]);
    assert.equal(t.size(), stable.length, 'every churned entry was removed');
    assert.ok(lookups > 1000, `only ${lookups} lookups overlapped the writers`);
    assert.ok(hits > 0, 'some lookups saw churned entries');
  });
}
