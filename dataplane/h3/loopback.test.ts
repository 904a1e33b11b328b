import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { H3Event } from './connection.js';
import { H3ErrorCode } from './error.js';
import { H3Loopback } from './loopback.js';

const CONNECT_IP: Array<[string, string]> = [
  [':method', 'CONNECT'],
  [':protocol', 'connect-ip'],
  [':scheme', 'https'],
  [':authority', 'vpn.example'],
  [':path', '/vpn'],
  ['capsule-protocol', '?1'],
];

function events(conn: { pollEvent(): H3Event | undefined }): H3Event[] {
  const out: H3Event[] = [];
  for (let e = conn.pollEvent(); e; e = conn.pollEvent()) out.push(e);
  return out;
}

test('a tunnel over the in-memory loopback: SETTINGS, CONNECT, 200, capsules, datagrams, GOAWAY, close', () => {
  const lo = new H3Loopback({ chunkSize: 3, client: { grease: true, openQpackStreams: true } });
  lo.pump();
  assert.deepEqual(
    events(lo.client).map((e) => e.kind),
    ['settings'],
  );
  assert.deepEqual(
    events(lo.server).map((e) => e.kind),
    ['settings'],
  );

  const id = lo.client.request(CONNECT_IP);
  lo.pump();
  const [req] = events(lo.server);
  assert.deepEqual(req, { kind: 'request', streamId: id, headers: CONNECT_IP });

  lo.server.respond(id, [
    [':status', '200'],
    ['capsule-protocol', '?1'],
  ]);
  lo.server.sendData(id, Uint8Array.of(1, 7, 0, 4, 10, 1, 1, 2, 32));
  lo.pump();
  const got = events(lo.client);
  assert.equal(got[0].kind === 'response' && got[0].status, 200);
  const capsule = Buffer.concat(
    got.slice(1).map((e) => (e.kind === 'data' ? e.data : Buffer.alloc(0))),
  );
  assert.deepEqual([...capsule], [1, 7, 0, 4, 10, 1, 1, 2, 32]);

  assert.equal(lo.client.sendDatagram(id, Uint8Array.of(0, 0x45)), true);
  assert.equal(lo.server.sendDatagram(id, Uint8Array.of(0, 0x60)), true);
  lo.pump();
  assert.deepEqual(lo.datagramsAtServer, [{ streamId: id, payload: Uint8Array.of(0, 0x45) }]);
  assert.deepEqual(lo.datagramsAtClient, [{ streamId: id, payload: Uint8Array.of(0, 0x60) }]);

  lo.server.goaway();
  lo.pump();
  assert.deepEqual(events(lo.client), [{ kind: 'goaway', id: id + 4 }]);
  lo.client.endStream(id);
  lo.server.endStream(id);
  lo.pump();
  lo.server.close(H3ErrorCode.NO_ERROR);
  lo.pump();
  assert.deepEqual(
    events(lo.client).map((e) => e.kind),
    ['end', 'closed'],
  );
  assert.deepEqual(
    events(lo.server).map((e) => e.kind),
    ['end', 'closed'],
  );
});
