// Four workers share one UDP port (SO_REUSEPORT). Server CIDs carry the shard id and a reuseport
// BPF program steers on it, so every packet of a connection reaches its owner, also after the
// client's address changes (NAT rebinding): with the kernel's 4-tuple hash alone, a rebinding
// moves all of this client's packets to one socket and most connections would break.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

import { Endpoint, type Connection, type EndpointCounters } from './endpoint.js';
import { testPki } from './testing/pki.js';
import { clientOptions, deferred, until } from './testing/harness.js';
import type { ShardData } from './testing/worker.js';

const workerFile = fileURLToPath(new URL('./testing/worker.js', import.meta.url));
const SHARDS = 4;
const CONNS = 8;

function startShard(data: ShardData): Promise<{ worker: Worker; port: number }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerFile, { workerData: data });
    worker.once('error', reject);
    worker.once('message', (m: { ready: number }) => resolve({ worker, port: m.ready }));
  });
}

function ask<T>(worker: Worker, msg: string, pick: (m: unknown) => T | undefined): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: unknown) => {
      const v = pick(m);
      if (v === undefined) return;
      worker.off('message', on);
      resolve(v);
    };
    worker.on('message', on);
    worker.postMessage(msg);
  });
}

test('4 workers on one port; a rebinding client keeps reaching each connection owner', async () => {
  const pki = testPki();
  const workers: Worker[] = [];
  let client: Endpoint | undefined;
  try {
    // Bind in shard order: the reuseport program picks sockets by their index in the group.
    let port = 0;
    for (let shardId = 0; shardId < SHARDS; shardId++) {
      const s = await startShard({ kind: 'shard', pki, port, shardId, shardCount: SHARDS });
      workers.push(s.worker);
      port = s.port;
    }
    const owner = new Map<number, number>(); // connection id -> shard that answered
    const replies = new Map<number, number>(); // connection id -> replies this phase
    let wrongShard = 0;
    const ready = new Set<number>();
    const allReady = deferred<void>(10000, 'handshakes');
    client = new Endpoint(clientOptions({ host: '::1', idleTimeoutMs: 10000 }), {
      onHandshake: (c) => {
        ready.add(c.id);
        if (ready.size === CONNS) allReady.resolve();
      },
      onDatagrams(conn, buf, lengths, count) {
        let off = 0;
        for (let i = 0; i < count; i++) {
          const shard = buf[off];
          off += lengths[i];
          const prev = owner.get(conn.id);
          if (prev === undefined) owner.set(conn.id, shard);
          else if (prev !== shard) wrongShard++;
          replies.set(conn.id, (replies.get(conn.id) ?? 0) + 1);
        }
      },
    });
    const conns: Connection[] = [];
    for (let i = 0; i < CONNS; i++) conns.push(client.connect('::1', port));
    await allReady.promise;

    const phase = async (what: string) => {
      replies.clear();
      // Repeat until every connection has answered (path validation after a rebind takes an RTT).
      await until(
        () => {
          for (const c of conns) c.sendDatagram(Buffer.from(what));
          return conns.every((c) => (replies.get(c.id) ?? 0) > 0);
        },
        5000,
        `every connection answers (${what})`,
      );
    };
    await phase('before');
    const shardsUsed = new Set(owner.values());
    for (let r = 0; r < 4; r++) {
      client.rebind();
      await phase(`after rebind ${r + 1}`);
    }
    assert.equal(wrongShard, 0, 'replies always come from the owning shard');
    assert.ok(
      conns.every((c) => !c.closed),
      'no connection was lost',
    );
    const counters = await Promise.all(
      workers.map((w) =>
        ask(w, 'counters', (m) => (m as { counters?: EndpointCounters }).counters),
      ),
    );
    const accepted = counters.reduce((n, c) => n + c.connectionsAccepted, 0);
    const misrouted = counters.reduce((n, c) => n + c.misrouted, 0);
    assert.equal(accepted, CONNS);
    assert.equal(misrouted, 0);
    assert.ok(shardsUsed.size >= 2, `connections spread over shards: ${[...shardsUsed]}`);
  } finally {
    await client?.close();
    await Promise.all(
      workers.map((w) => ask(w, 'close', (m) => (m === 'closed' ? true : undefined))),
    );
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
