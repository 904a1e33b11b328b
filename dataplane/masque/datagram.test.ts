import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readQuarterStreamId, writeDatagramHeader } from '../h3/datagram.js';
import { ContextIdError, ContextRegistry, writeDatagramPayload } from './datagram.js';
import { hex, toHex } from './fixtures.js';

test('§5 example frame data 00 00 45 ...: QSID 0, context 0, IPv4 packet', () => {
  const data = hex('00 00 45 00 00 14');
  const q = { qsid: -1, offset: -1 };
  readQuarterStreamId(data, q);
  assert.equal(q.qsid, 0);
  const got: string[] = [];
  const reg = new ContextRegistry('client', (b, o, l) => got.push(toHex(b.subarray(o, o + l))));
  reg.dispatch(data, q.offset, data.length - q.offset);
  assert.deepEqual(got, ['45000014']);
  const out = new Uint8Array(16);
  const n = writeDatagramPayload(out, 0, 0, hex('45000014'), 0, 4);
  assert.equal(toHex(out.subarray(0, n)), '0045000014');
});

test('§10.2 unknown context ID and unparseable context ID: dropped and counted, not errors', () => {
  const ip: string[] = [];
  const reg = new ContextRegistry('proxy', (b, o, l) => ip.push(toHex(b.subarray(o, o + l))));
  reg.dispatch(hex('02 aa'), 0, 2);
  reg.dispatch(hex('40 07 aa'), 0, 3);
  reg.dispatch(hex(''), 0, 0);
  reg.dispatch(hex('80 00'), 0, 2);
  // A context ID cut off by the payload end, though the buffer continues.
  reg.dispatch(hex('40 00 00'), 0, 1);
  assert.deepEqual(ip, []);
  assert.deepEqual(reg.stats, { ip: 0, extension: 0, unknownContext: 2, unparseable: 3 });
  reg.dispatch(hex('40 00 45'), 0, 3); // non-minimal context 0
  assert.deepEqual(ip, ['45']);
});

test('registry: an extension (FEC) claims a context; parity follows RFC 9484 §5; IDs are never reused', () => {
  const client = new ContextRegistry('client', () => {});
  const id = client.allocate();
  assert.equal(id % 2, 0);
  assert.notEqual(id, 0);
  assert.equal(client.allocate(), id + 2);
  const fec: string[] = [];
  client.register(id, (b, o, l) => fec.push(toHex(b.subarray(o, o + l))));
  client.dispatch(Uint8Array.of(id, 0xab), 0, 2);
  assert.deepEqual(fec, ['ab']);
  assert.equal(client.stats.extension, 1);
  assert.throws(() => client.register(id, () => {}), ContextIdError, 'already registered');
  assert.throws(() => client.register(0, () => {}), ContextIdError, 'context 0 is IP');
  assert.throws(
    () => client.register(100, () => {}),
    ContextIdError,
    'own-parity ID not allocated',
  );
  client.register(3, () => {}); // an odd ID the proxy announced
  client.unregister(id);
  client.dispatch(Uint8Array.of(id, 0xab), 0, 2);
  assert.equal(client.stats.unknownContext, 1);
  assert.throws(() => client.register(id, () => {}), ContextIdError, 'never reused');
  const proxy = new ContextRegistry('proxy', () => {});
  assert.equal(proxy.allocate() % 2, 1);
  assert.equal(ContextRegistry.allocatedBy(4), 'client');
});

test('property: context ID + payload round-trips through write and dispatch', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 40 }),
      fc.uint8Array({ maxLength: 200 }),
      fc.integer({ min: 0, max: 300000 }),
      (ctxSeed, payload, sid) => {
        const reg = new ContextRegistry('proxy', () => {});
        const id = ctxSeed * 2; // client-allocated: a peer ID, registrable
        let got: Uint8Array | undefined;
        reg.register(id, (b, o, l) => (got = b.slice(o, o + l)));
        const out = new Uint8Array(220);
        const q = writeDatagramHeader(out, 0, sid * 4);
        const n = writeDatagramPayload(out, q, id, payload, 0, payload.length);
        const read = { qsid: -1, offset: -1 };
        readQuarterStreamId(out.subarray(0, n), read);
        assert.equal(read.qsid, sid);
        reg.dispatch(out, read.offset, n - read.offset);
        assert.deepEqual(got, payload);
      },
    ),
  );
});
