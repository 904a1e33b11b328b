import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import {
  addressOffset,
  AddressPool,
  AddressPools,
  InvalidCidrError,
  type IpFamily,
  LeaseConflictError,
  type LeaseStore,
  MemoryLeaseStore,
  PoolExhaustedError,
} from './index.js';

/** A MemoryLeaseStore whose every call yields to the event loop first, as a database driver would. */
class YieldingStore implements LeaseStore {
  readonly inner = new MemoryLeaseStore();
  calls = { isTaken: 0, insert: 0, conflicts: 0 };
  async find(deviceId: string, family: IpFamily): Promise<string | undefined> {
    await tick();
    return this.inner.find(deviceId, family);
  }
  async isTaken(address: string): Promise<boolean> {
    this.calls.isTaken++;
    await tick();
    return this.inner.isTaken(address);
  }
  async insert(deviceId: string, family: IpFamily, address: string): Promise<void> {
    this.calls.insert++;
    await tick();
    try {
      this.inner.insert(deviceId, family, address);
    } catch (err) {
      if (err instanceof LeaseConflictError) this.calls.conflicts++;
      throw err;
    }
  }
  async release(deviceId: string, family?: IpFamily): Promise<void> {
    await tick();
    this.inner.release(deviceId, family);
  }
  async count(family: IpFamily): Promise<number> {
    await tick();
    return this.inner.count(family);
  }
  async loadCursor(family: IpFamily): Promise<string | undefined> {
    await tick();
    return this.inner.loadCursor(family);
  }
  async saveCursor(family: IpFamily, address: string): Promise<void> {
    await tick();
    this.inner.saveCursor(family, address);
  }
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function drain(pool: AddressPool, prefix = 'dev'): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; ; i++) {
    try {
      out.push(await pool.allocate(`${prefix}${i}`));
    } catch (err) {
      assert.ok(err instanceof PoolExhaustedError, String(err));
      return out;
    }
  }
}

test('the first host is the server; network and broadcast are never handed out', async () => {
  const pool = new AddressPool('10.77.0.0/29', new MemoryLeaseStore());
  assert.equal(pool.serverAddress, '10.77.0.1');
  assert.equal(pool.capacity, 5n);
  assert.equal(pool.hostPrefixLength, 32);
  assert.deepEqual(await drain(pool), [
    '10.77.0.2',
    '10.77.0.3',
    '10.77.0.4',
    '10.77.0.5',
    '10.77.0.6',
  ]);
  for (const reserved of ['10.77.0.0', '10.77.0.1', '10.77.0.7']) {
    assert.ok(pool.contains(reserved));
    assert.ok(!pool.isAssignable(reserved));
  }
  assert.ok(!pool.contains('10.77.0.8'));
  assert.ok(!pool.contains('fd77::2'));
  assert.ok(!pool.contains('not an address'));
});

test('a /30 has one client address, an IPv6 /126 two (no broadcast in IPv6)', async () => {
  const v4 = new AddressPool('192.168.9.4/30', new MemoryLeaseStore());
  assert.equal(v4.serverAddress, '192.168.9.5');
  assert.deepEqual(await drain(v4), ['192.168.9.6']);

  const v6 = new AddressPool('fd77::/126', new MemoryLeaseStore());
  assert.equal(v6.serverAddress, 'fd77::1');
  assert.equal(v6.hostPrefixLength, 128);
  assert.deepEqual(await drain(v6), ['fd77::2', 'fd77::3']);
});

test('exhaustion is a PoolExhaustedError naming the pool', async () => {
  const pool = new AddressPool('10.9.0.0/30', new MemoryLeaseStore());
  await pool.allocate('a');
  await assert.rejects(pool.allocate('b'), (err: unknown) => {
    assert.ok(err instanceof PoolExhaustedError);
    assert.equal(err.pool, '10.9.0.0/30');
    assert.match(err.message, /address pool 10\.9\.0\.0\/30 is exhausted: all 1 client addresses/);
    return true;
  });
  // The device that holds the lease still gets it: stickiness does not depend on free space.
  assert.equal(await pool.allocate('a'), '10.9.0.2');
});

test('pools too small for a server and a client are rejected', () => {
  for (const cidr of ['10.0.0.0/31', '10.0.0.1/32', 'fd77::/127', 'fd77::/128']) {
    assert.throws(() => new AddressPool(cidr, new MemoryLeaseStore()), InvalidCidrError, cidr);
  }
  assert.throws(() => new AddressPool('10.0.0.1/24', new MemoryLeaseStore()), /host bits are set/);
});

test('allocation is sticky per device and per family', async () => {
  const store = new MemoryLeaseStore();
  const pools = new AddressPools({ ipv4: '10.77.0.0/16', ipv6: 'fd77::/64' }, store);
  const alice = await pools.allocate('alice/laptop');
  const bob = await pools.allocate('bob/phone');
  assert.deepEqual(alice, { ipv4: '10.77.0.2', ipv6: 'fd77::2' });
  assert.deepEqual(bob, { ipv4: '10.77.0.3', ipv6: 'fd77::3' });
  assert.deepEqual(await pools.allocate('alice/laptop'), alice);
  assert.deepEqual(await pools.lookup('bob/phone'), bob);
  assert.deepEqual(await pools.lookup('carol/tablet'), {});

  // Sticky across a restart: a new pool object over the same store.
  const restarted = new AddressPools({ ipv4: '10.77.0.0/16', ipv6: 'fd77::/64' }, store);
  assert.deepEqual(await restarted.allocate('alice/laptop'), alice);
  assert.deepEqual(await restarted.allocate('carol/tablet'), {
    ipv4: '10.77.0.4',
    ipv6: 'fd77::4',
  });

  const usage = await restarted.usage();
  assert.deepEqual(
    usage.map((u) => [u.cidr, u.serverAddress, u.capacity, u.leased]),
    [
      ['10.77.0.0/16', '10.77.0.1', 65533n, 3],
      ['fd77::/64', 'fd77::1', (1n << 64n) - 2n, 3],
    ],
  );
});

test('release frees both families and the address comes back after the cursor wraps', async () => {
  const store = new MemoryLeaseStore();
  const pools = new AddressPools({ ipv4: '10.1.0.0/29', ipv6: 'fd01::/126' }, store);
  await pools.allocate('a');
  await pools.allocate('b');
  await pools.release('a');
  assert.deepEqual(await pools.lookup('a'), {});
  assert.equal(store.count(4), 1);
  assert.equal(store.count(6), 1);
  // IPv6 /126 has two addresses: b holds ::3, so the freed ::2 is the only one left.
  assert.deepEqual(await pools.allocate('c'), { ipv4: '10.1.0.4', ipv6: 'fd01::2' });

  // IPv4: the cursor moves on to fresh addresses first, then wraps to the freed 10.1.0.2.
  const v4 = pools.ipv4 as AddressPool;
  assert.equal(await v4.allocate('d'), '10.1.0.5');
  assert.equal(await v4.allocate('e'), '10.1.0.6');
  assert.equal(await v4.allocate('f'), '10.1.0.2');
  await assert.rejects(v4.allocate('g'), PoolExhaustedError);
  await v4.release('e');
  assert.equal(await v4.allocate('g'), '10.1.0.6');
});

test('AddressPools checks that each pool is of its family', () => {
  const store = new MemoryLeaseStore();
  assert.throws(() => new AddressPools({ ipv4: 'fd77::/64' }, store), /expected an IPv4 prefix/);
  assert.throws(() => new AddressPools({ ipv6: '10.0.0.0/8' }, store), /expected an IPv6 prefix/);
  assert.throws(() => new AddressPools({}, store), /at least one address pool/);
  assert.throws(() => new AddressPools({ ipv4: '10.0.0.0/8x' }, store), InvalidCidrError);
});

test('a lease left over from an earlier pool is replaced by one from the current pool', async () => {
  const store = new MemoryLeaseStore();
  await new AddressPool('10.1.0.0/24', store).allocate('old');
  const pool = new AddressPool('10.2.0.0/24', store);
  assert.equal(await pool.lookup('old'), undefined);
  assert.equal(await pool.allocate('old'), '10.2.0.2');
  assert.equal(store.isTaken('10.1.0.2'), false);
});

test('interleaved allocations in one process get unique addresses without collisions', async () => {
  const store = new YieldingStore();
  const pool = new AddressPool('10.50.0.0/24', store);
  const devices = Array.from({ length: 200 }, (_, i) => `d${i}`);
  const addresses = await Promise.all(devices.map((d) => pool.allocate(d)));
  assert.equal(new Set(addresses).size, 200);
  assert.ok(addresses.every((a) => pool.isAssignable(a)));
  assert.equal(store.calls.conflicts, 0); // the synchronous cursor keeps callers apart
  // 253 capacity, 200 taken: 53 left, then exhaustion, all concurrently.
  const more = await Promise.allSettled(
    Array.from({ length: 60 }, (_, i) => pool.allocate(`e${i}`)),
  );
  const won = more.filter((r) => r.status === 'fulfilled');
  const lost = more.filter((r) => r.status === 'rejected');
  assert.equal(won.length, 53);
  assert.ok(lost.every((r) => r.reason instanceof PoolExhaustedError));
  const all = [...addresses, ...won.map((r) => (r as PromiseFulfilledResult<string>).value)];
  assert.equal(new Set(all).size, 253);
});

test('two pool instances on one store (two processes) race through the store constraints', async () => {
  const store = new YieldingStore();
  // Both start with the same cursor, so they probe the same addresses and must collide.
  const a = new AddressPool('fd50::/120', store);
  const b = new AddressPool('fd50::/120', store);
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => (i % 2 === 0 ? a : b).allocate(`dev${i}`)),
  );
  assert.equal(new Set(results).size, 100);
  assert.ok(store.calls.conflicts > 0, 'the race was not exercised');
});

test('concurrent allocations for one device end with one lease', async () => {
  const store = new YieldingStore();
  const a = new AddressPool('10.60.0.0/24', store);
  const b = new AddressPool('10.60.0.0/24', store);
  await a.allocate('x'); // move a's cursor so a and b try different addresses for the device
  const same = await Promise.all([
    a.allocate('dev'),
    a.allocate('dev'),
    b.allocate('dev'),
    b.allocate('dev'),
  ]);
  assert.equal(new Set(same).size, 1);
  assert.equal(store.inner.count(4), 2);
});

test('the cursor makes allocation O(1): no re-probing of leased addresses, also after a restart', async () => {
  const store = new YieldingStore();
  const pool = new AddressPool('10.70.0.0/16', store);
  for (let i = 0; i < 500; i++) await pool.allocate(`d${i}`);
  assert.equal(store.calls.isTaken, 500);
  const restarted = new AddressPool('10.70.0.0/16', store);
  assert.equal(await restarted.allocate('next'), '10.70.1.246'); // 10.70.0.2 + 500
  assert.equal(store.calls.isTaken, 501);
});

test('store errors other than conflicts propagate and do not poison the pool', async () => {
  const store = new MemoryLeaseStore();
  let fail = true;
  const flaky: LeaseStore = {
    find: (d, f) => store.find(d, f),
    isTaken: (a) => store.isTaken(a),
    insert: (d, f, a) => {
      if (fail) throw new Error('disk I/O error');
      store.insert(d, f, a);
    },
    release: (d, f) => store.release(d, f),
    count: (f) => store.count(f),
    loadCursor: (f) => store.loadCursor(f),
    saveCursor: (f, a) => store.saveCursor(f, a),
  };
  const pool = new AddressPool('10.80.0.0/24', flaky);
  await assert.rejects(pool.allocate('a'), /disk I\/O error/);
  fail = false;
  assert.ok(pool.isAssignable(await pool.allocate('a')));
  await assert.rejects(pool.allocate(''), TypeError);
});

test('an IPv6 /64 allocates and releases 100,000 leases; memory follows the leases only', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heap = (): number => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const store = new MemoryLeaseStore();
  // The pool's own cost is fixed; the heap counter also moves with V8's lazy internals (code,
  // feedback vectors), which only ever add. So the smallest of three constructions is measured.
  let empty = Number.POSITIVE_INFINITY;
  let before = 0;
  let pool = new AddressPool('fd77::/64', store);
  for (let trial = 0; trial < 3; trial++) {
    before = heap();
    pool = new AddressPool('fd77::/64', store);
    empty = Math.min(empty, heap() - before);
  }
  assert.ok(empty < 64 * 1024, `an empty /64 pool must cost (almost) nothing, grew ${empty} bytes`);

  const n = 100_000;
  for (let i = 0; i < n; i++) await pool.allocate(`device-${i}`);
  assert.equal(store.count(6), n);
  assert.equal(await pool.lookup(`device-${n - 1}`), addressOffset('fd77::', BigInt(n + 1)));
  const full = heap() - before;
  // Two Map entries and two short strings per lease: a few hundred bytes; 1 KiB is generous.
  assert.ok(full < n * 1024, `heap grew ${full} bytes for ${n} leases`);

  for (let i = 0; i < n; i++) await pool.release(`device-${i}`);
  assert.equal(store.count(6), 0);
  const after = heap() - before;
  assert.ok(
    after < 4 * 1024 * 1024,
    `heap still ${after} bytes above start after releasing everything`,
  );
  // The cursor moved on: the next address is fresh, not a re-probe of the released ones.
  assert.equal(await pool.allocate('late'), addressOffset('fd77::', BigInt(n + 2)));
});

test('property: any sequence of allocate/release keeps leases unique, assignable and sticky', async () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('allocate' as const), device: fc.integer({ min: 0, max: 12 }) }),
    fc.record({ kind: fc.constant('release' as const), device: fc.integer({ min: 0, max: 12 }) }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('10.0.0.0/29', '10.0.0.0/28', 'fd00::/125'),
      fc.array(fc.array(op, { minLength: 1, maxLength: 4 }), { maxLength: 30 }),
      async (cidr, batches) => {
        const store = new YieldingStore();
        const pool = new AddressPool(cidr, store);
        const model = new Map<number, string>();
        for (const batch of batches) {
          // Each batch runs concurrently, as interleaved RPCs would.
          const results = await Promise.allSettled(
            batch.map((o) =>
              o.kind === 'allocate' ? pool.allocate(`d${o.device}`) : pool.release(`d${o.device}`),
            ),
          );
          results.forEach((r, i) => {
            if (r.status === 'rejected')
              assert.ok(r.reason instanceof PoolExhaustedError, String(r.reason));
            else if (batch[i].kind === 'allocate') assert.ok(pool.isAssignable(r.value as string));
          });
          model.clear();
          for (let d = 0; d <= 12; d++) {
            const address = await pool.lookup(`d${d}`);
            if (address !== undefined) model.set(d, address);
          }
          const addresses = [...model.values()];
          assert.equal(new Set(addresses).size, addresses.length, 'an address is leased twice');
          assert.equal(store.inner.count(pool.family), addresses.length);
          assert.ok(BigInt(addresses.length) <= pool.capacity);
          // Sticky: allocating again for a device that holds a lease returns that lease.
          for (const [d, address] of model) assert.equal(await pool.allocate(`d${d}`), address);
        }
      },
    ),
    { numRuns: 60 },
  );
});
