import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  datagramHeaderSize,
  encodeDatagram,
  readQuarterStreamId,
  writeDatagramHeader,
} from './datagram.js';
import { H3Error, H3ErrorCode } from './error.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const datagramError = (err: unknown) =>
  err instanceof H3Error && err.code === H3ErrorCode.DATAGRAM_ERROR;

test('PROTOCOL.md §5: quarter stream IDs 0 → 00, 4 → 01, 44 → 0b; Appendix B datagram', () => {
  assert.equal(toHex(encodeDatagram(0, hex(''))), '00');
  assert.equal(toHex(encodeDatagram(4, hex(''))), '01');
  assert.equal(toHex(encodeDatagram(44, hex(''))), '0b');
  const frameData = hex('00 00 45 00 00 14');
  const out = { qsid: -1, offset: -1 };
  readQuarterStreamId(frameData, out);
  assert.deepEqual(out, { qsid: 0, offset: 1 });
  assert.equal(toHex(encodeDatagram(0, frameData.subarray(1))), toHex(frameData));
});

test('zero-copy header: write the QSID into reserved headroom', () => {
  const buf = new Uint8Array(64);
  const start = 8 - datagramHeaderSize(400);
  assert.equal(writeDatagramHeader(buf, start, 400), 8);
  assert.equal(toHex(buf.subarray(start, 8)), '4064');
});

test('§10.2: empty payload, truncated QSID or QSID > 2^60-1 → H3_DATAGRAM_ERROR', () => {
  const out = { qsid: 0, offset: 0 };
  for (const bad of ['', '40', '80 00 00', 'c0 00 00 00 00 00 00', 'd0 00 00 00 00 00 00 00']) {
    assert.throws(() => readQuarterStreamId(hex(bad), out), datagramError, bad);
  }
  readQuarterStreamId(hex('cf ff ff ff ff ff ff ff'), out);
  assert.equal(out.offset, 8);
  readQuarterStreamId(hex('40 00'), out); // non-minimal
  assert.deepEqual(out, { qsid: 0, offset: 2 });
});

test('property: decode(encode(streamId, payload)) = (streamId, payload)', () => {
  const out = { qsid: 0, offset: 0 };
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 2 ** 51 - 1 }),
      fc.uint8Array({ maxLength: 64 }),
      (qsid, payload) => {
        const d = encodeDatagram(qsid * 4, payload);
        readQuarterStreamId(d, out);
        assert.equal(out.qsid, qsid);
        assert.deepEqual(d.subarray(out.offset), payload);
      },
    ),
  );
});
