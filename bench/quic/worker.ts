// One bench worker thread: a server shard that counts datagrams, or a client connection that
// sends 1300-byte datagrams as fast as congestion control lets the queue drain.
import { parentPort, workerData } from 'node:worker_threads';

import { Endpoint, type Connection } from '../../dataplane/quic/endpoint.js';
import type { BenchPki } from './pki.js';

export interface ServerWorkerData {
  role: 'server';
  pki: BenchPki;
  port: number;
  shardId: number;
  shardCount: number;
  cc: 'bbr' | 'cubic';
}

export interface ClientWorkerData {
  role: 'client';
  pki: BenchPki;
  port: number;
  cc: 'bbr' | 'cubic';
}

/** Messages a worker posts to its parent. */
export type WorkerReport =
  | { kind: 'ready'; port: number }
  | { kind: 'count'; datagrams: number; srttUs: number }
  | { kind: 'closed' };

const data = workerData as ServerWorkerData | ClientWorkerData;
const port = parentPort;
if (!port) throw new Error('bench worker runs in a worker thread');
const post = (r: WorkerReport) => port.postMessage(r);

const PAYLOAD = Buffer.alloc(1300, 0x5a);
let datagrams = 0;
let conn: Connection | undefined;

const common = {
  host: '127.0.0.1',
  caPem: data.pki.caPem,
  cc: data.cc,
  idleTimeoutMs: 30000,
  datagramQueueLength: 1024,
  socketBufferBytes: 4 << 20,
};

let ep: Endpoint;
if (data.role === 'server') {
  ep = new Endpoint(
    {
      role: 'server',
      ...common,
      certPem: data.pki.serverCertPem,
      keyPem: data.pki.serverKeyPem,
      port: data.port,
      reusePort: data.shardCount > 1,
      shardId: data.shardId,
      shardCount: data.shardCount,
    },
    {
      onConnection: (c) => (conn = c),
      onDatagrams: (_c, _b, _l, count) => (datagrams += count),
    },
  );
} else {
  const fill = (c: Connection) => {
    while (c.sendDatagram(PAYLOAD)) {
      /* until the queue is full; onDatagramDrain refills */
    }
  };
  ep = new Endpoint(
    {
      role: 'client',
      ...common,
      certPem: data.pki.clientCertPem,
      keyPem: data.pki.clientKeyPem,
      port: 0,
      serverName: 'localhost',
    },
    {
      onHandshake: (c) => {
        conn = c;
        post({ kind: 'ready', port: 0 });
      },
      onDatagramDrain: fill,
    },
  );
  port.on('message', (m: string) => {
    if (m === 'go' && conn) fill(conn);
  });
  ep.connect('127.0.0.1', data.port);
}

port.on('message', async (m: string) => {
  if (m === 'count') {
    const st = conn?.stats();
    const sent = data.role === 'client' ? (st?.datagramsSent ?? 0) : datagrams;
    post({ kind: 'count', datagrams: sent, srttUs: st?.srttUs ?? 0 });
  } else if (m === 'close') {
    await ep.close();
    post({ kind: 'closed' });
    port.close();
  }
});
if (data.role === 'server') post({ kind: 'ready', port: ep.address().port });
