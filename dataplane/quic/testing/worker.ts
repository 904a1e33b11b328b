// A worker_threads body for the churn and shared-port tests. Modes:
//  - churn: a server and a client endpoint in this worker, plus a client connection to the main
//    thread's server; traffic on all of them; then 'destroy' (close and return), 'exit'
//    (process.exit() mid-traffic) or 'terminate' (report traffic, the parent terminates us).
//  - shard: a server endpoint sharing a port (SO_REUSEPORT + CID steering) that echoes every
//    datagram prefixed with its shard id.
import { parentPort, workerData } from 'node:worker_threads';

import { Endpoint, type Connection, type EndpointOptions } from '../endpoint.js';
import type { TestPki } from './pki.js';

export interface ChurnData {
  kind: 'churn';
  pki: TestPki;
  mainPort: number;
  end: 'destroy' | 'exit' | 'terminate';
}

export interface ShardData {
  kind: 'shard';
  pki: TestPki;
  port: number;
  shardId: number;
  shardCount: number;
}

const data = workerData as ChurnData | ShardData;
const port = parentPort;
if (!port) throw new Error('worker.ts runs in a worker');

function server(pki: TestPki, extra: Partial<EndpointOptions>, handlers = {}): Endpoint {
  return new Endpoint(
    { role: 'server', host: '::1', port: 0, ...pki.server, caPem: pki.caPem, ...extra },
    handlers,
  );
}

if (data.kind === 'shard') {
  const tag = Buffer.from([data.shardId]);
  const ep = server(
    data.pki,
    { port: data.port, reusePort: true, shardId: data.shardId, shardCount: data.shardCount },
    {
      onDatagrams(conn: Connection, buf: Buffer, lengths: Uint32Array, count: number) {
        let off = 0;
        for (let i = 0; i < count; i++) {
          conn.sendDatagram(Buffer.concat([tag, buf.subarray(off, off + lengths[i])]));
          off += lengths[i];
        }
      },
    },
  );
  port.on('message', async (m: string) => {
    if (m === 'counters') port.postMessage({ counters: ep.counters() });
    if (m === 'close') {
      await ep.close();
      port.postMessage('closed');
      port.close();
    }
  });
  port.postMessage({ ready: ep.address().port });
} else {
  const pki = data.pki;
  let traffic = 0;
  const echo = {
    onDatagrams(conn: Connection, buf: Buffer, lengths: Uint32Array, count: number) {
      let off = 0;
      for (let i = 0; i < count; i++) {
        conn.sendDatagram(buf.subarray(off, off + lengths[i]));
        off += lengths[i];
      }
    },
    onStreamData(conn: Connection, sid: number, d: Buffer, fin: boolean) {
      conn.writeStream(sid, d, fin);
    },
  };
  const srv = server(pki, {}, echo);
  const pump = (conn: Connection) => {
    const t = setInterval(() => {
      if (conn.closed) return clearInterval(t);
      for (let i = 0; i < 16; i++) conn.sendDatagram(Buffer.alloc(1200, i));
      const sid = conn.openBidiStream();
      if (sid >= 0) conn.writeStream(sid, Buffer.alloc(4000, 7), true);
    }, 2);
  };
  const client = new Endpoint(
    {
      role: 'client',
      host: '::1',
      port: 0,
      ...pki.client,
      caPem: pki.caPem,
      serverName: 'localhost',
    },
    {
      onHandshake: pump,
      onDatagrams: (_c: Connection, _b: Buffer, _l: Uint32Array, n: number) => {
        traffic += n;
        if (traffic >= 64 && traffic - n < 64) void onTraffic();
      },
    },
  );
  client.connect('::1', srv.address().port);
  client.connect('::1', data.mainPort);
  const onTraffic = async () => {
    if (data.end === 'exit') process.exit(0);
    if (data.end === 'terminate') {
      port.postMessage('traffic');
      return;
    }
    await client.close();
    await srv.close();
    port.postMessage('done');
    port.close();
  };
}
