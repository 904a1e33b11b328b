import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { H3Error, H3ErrorCode } from './error.js';
import { FrameType, encodeFrame } from './frame.js';
import {
  QpackDecoderStreamReader,
  QpackEncoderStreamReader,
  decodeFieldSection,
  encodeFieldSection,
  type HeaderList,
} from './qpack.js';
import { STATIC_TABLE } from './static-table.js';

const ascii = (s: string) => Buffer.from(s, 'latin1').toString('hex');
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const withCode = (code: number) => (err: unknown) => err instanceof H3Error && err.code === code;
const failed = withCode(H3ErrorCode.QPACK_DECOMPRESSION_FAILED);

const REQUEST: HeaderList = [
  [':method', 'CONNECT'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/.well-known/masque/ip/*/*/'],
  [':protocol', 'connect-ip'],
  ['capsule-protocol', '?1'],
];

const RAW_REQUEST = hex(
  '00 00 cf d7 50 11' +
    ascii('proxy.example.org') +
    '51 1b' +
    ascii('/.well-known/masque/ip/*/*/') +
    '27 02' +
    ascii(':protocol') +
    '0a' +
    ascii('connect-ip') +
    '27 09' +
    ascii('capsule-protocol') +
    '02' +
    ascii('?1'),
);

const HUFFMAN_REQUEST =
  hex(`00 00 cf d7 50 8d ae c3 f9 f4 b9 7c 8e 9a e8 2a e7 b2 6f 51 95 61 7f 05 a2
  85 ba d4 7f 15 31 48 d1 da d2 b0 6a d8 f9 63 e5 8f 2f 00 b9 5d 87 49 c8 7a 3f 87 21 ea a8 a4 4a c6
  af 2f 04 20 eb 45 b4 15 6a ec 3a 4e 43 d1 82 ff 03`);

test('static table has the 99 entries of RFC 9204 Appendix A at the indexes §3.5 lists', () => {
  assert.equal(STATIC_TABLE.length, 99);
  const spots: Array<[number, string, string]> = [
    [0, ':authority', ''],
    [1, ':path', '/'],
    [15, ':method', 'CONNECT'],
    [17, ':method', 'GET'],
    [23, ':scheme', 'https'],
    [25, ':status', '200'],
    [28, ':status', '503'],
    [63, ':status', '100'],
    [67, ':status', '400'],
    [71, ':status', '500'],
    [84, 'authorization', ''],
    [92, 'server', ''],
    [95, 'user-agent', ''],
    [98, 'x-frame-options', 'sameorigin'],
  ];
  for (const [i, n, v] of spots) assert.deepEqual(STATIC_TABLE[i], [n, v], `index ${i}`);
});

test('§3.7 raw request block (95 bytes) encodes and decodes exactly, wrapped in HEADERS 01 40 5f', () => {
  assert.equal(RAW_REQUEST.length, 95);
  const block = encodeFieldSection(REQUEST, { huffman: 'never' });
  assert.equal(toHex(block), toHex(RAW_REQUEST));
  assert.equal(toHex(encodeFrame(FrameType.HEADERS, block).subarray(0, 3)), '01405f');
  assert.deepEqual(decodeFieldSection(RAW_REQUEST), REQUEST);
});

test('§3.7 Huffman request block (75 bytes, as quic-go sends it) encodes and decodes exactly', () => {
  assert.equal(HUFFMAN_REQUEST.length, 75);
  assert.equal(toHex(encodeFieldSection(REQUEST, { huffman: 'always' })), toHex(HUFFMAN_REQUEST));
  assert.deepEqual(decodeFieldSection(HUFFMAN_REQUEST), REQUEST);
});

test('§3.7 response block: 01 18 | 00 00 d9 27 09 "capsule-protocol" 02 "?1"', () => {
  const response: HeaderList = [
    [':status', '200'],
    ['capsule-protocol', '?1'],
  ];
  const frame = encodeFrame(FrameType.HEADERS, encodeFieldSection(response, { huffman: 'never' }));
  const expected = hex('01 18 00 00 d9 27 09' + ascii('capsule-protocol') + '02' + ascii('?1'));
  assert.equal(toHex(frame), toHex(expected));
  assert.deepEqual(decodeFieldSection(expected.subarray(2)), response);
});

test("auto mode uses Huffman only where shorter (quiche's choice)", () => {
  const block = encodeFieldSection([['capsule-protocol', '?1']], { huffman: 'auto' });
  // name Huffman (11 < 16), value raw (Huffman is 2 bytes too)
  assert.equal(toHex(block), '00002f04' + '20eb45b4156aec3a4e43d1' + '02' + ascii('?1'));
});

test('encoder: exact static match → indexed line; name match → name reference', () => {
  assert.equal(toHex(encodeFieldSection([[':status', '404']])), '0000db');
  // :status is index 24: the 4-bit prefix overflows to 5f, then 24 - 15 = 9
  assert.equal(
    toHex(encodeFieldSection([[':status', '418']], { huffman: 'never' })),
    '00005f09' + '03' + ascii('418'),
  );
  assert.equal(
    toHex(encodeFieldSection([['user-agent', 'x']], { huffman: 'never' })),
    '00005f50' + '01' + ascii('x'),
  );
});

test('decoder: N bit is ignored, Delta Base with S=0 may be anything', () => {
  assert.deepEqual(decodeFieldSection(hex('00 00 70 01 61')), [[':authority', 'a']]);
  assert.deepEqual(decodeFieldSection(hex('00 7f 80 01 d9')), [[':status', '200']]);
  assert.deepEqual(decodeFieldSection(hex('00 00')), []);
});

const ERRORS: Array<[string, string]> = [
  ['Required Insert Count ≠ 0', '01 00 d9'],
  ['Required Insert Count ≠ 0 (multi-byte)', 'ff 01 00 d9'],
  ['S=1 with RIC=0', '00 80 d9'],
  ['dynamic indexed field line', '00 00 80'],
  ['indexed post-base', '00 00 10'],
  ['dynamic name reference', '00 00 40 00'],
  ['post-base name reference', '00 00 00 00'],
  ['static index 99 (> 98)', '00 00 ff 24'],
  ['static name reference > 98', '00 00 5f 54 00'],
  ['Huffman EOS in a value', '00 00 51 84 ff ff ff ff'],
  ['Huffman padding > 7 bits', '00 00 51 82 1f ff'],
  ['Huffman padding not ones', '00 00 51 81 18'],
  ['integer > 62 bits', '00 00 ff ff ff ff ff ff ff ff ff ff 7f'],
  ['integer continuation too long', '00 00 ff 80 80 80 80 80 80 80 80 80 80 80 00'],
  ['truncated string', '00 00 51 05 61 62'],
  ['truncated integer', '00 00 ff'],
  ['truncated literal name', '00 00 23 61'],
  ['literal name without value', '00 00 21 61'],
  ['truncated prefix', '00'],
  ['empty block', ''],
];
for (const [name, bytes] of ERRORS) {
  test(`§10.2 QPACK: ${name} → QPACK_DECOMPRESSION_FAILED`, () => {
    assert.throws(() => decodeFieldSection(hex(bytes)), failed);
  });
}

test('static index 98 is the last valid one', () => {
  assert.deepEqual(decodeFieldSection(hex('00 00 ff 23')), [['x-frame-options', 'sameorigin']]);
});

test('bytes 0x80–0xff in values survive a round trip', () => {
  const fields: HeaderList = [['x-bin', '\u00ff\u0080\u00e9']];
  for (const huffman of ['never', 'always'] as const) {
    assert.deepEqual(decodeFieldSection(encodeFieldSection(fields, { huffman })), fields);
  }
});

test('property: decode(encode(fields)) = fields in every Huffman mode', () => {
  const str = fc.string({
    unit: fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c)),
    maxLength: 40,
  });
  const known = fc.constantFrom(...STATIC_TABLE.map(([n, v]) => [n, v] as [string, string]));
  const field = fc.oneof(
    fc.tuple(str, str),
    known,
    fc.tuple(
      known.map(([n]) => n),
      str,
    ),
  );
  fc.assert(
    fc.property(
      fc.array(field, { maxLength: 12 }),
      fc.constantFrom('never', 'always', 'auto'),
      (fields, huffman) => {
        const mode = huffman as 'never' | 'always' | 'auto';
        assert.deepEqual(decodeFieldSection(encodeFieldSection(fields, { huffman: mode })), fields);
      },
    ),
    { numRuns: 400 },
  );
});

test('§3.6 encoder stream: lenient mode drains anything', () => {
  new QpackEncoderStreamReader(false).push(hex('80 01 c0 ff ff ff'));
});

test('§10.2 strict encoder stream: Set Dynamic Table Capacity 0 accepted, anything else → 0x201', () => {
  const ok = new QpackEncoderStreamReader(true);
  ok.push(hex('20'));
  ok.push(hex('3f')); // capacity prefix overflow, continued in the next chunk...
  assert.throws(() => ok.push(hex('e1 1f')), withCode(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR));
  for (const instr of ['c0 01 61', '80', '41 61 01 62', '00', '21']) {
    assert.throws(
      () => new QpackEncoderStreamReader(true).push(hex(instr)),
      withCode(H3ErrorCode.QPACK_ENCODER_STREAM_ERROR),
      instr,
    );
  }
});

test('§10.2 strict decoder stream: Stream Cancellation ignored, Section Ack / Insert Count Increment → 0x202', () => {
  const ok = new QpackDecoderStreamReader(true);
  ok.push(hex('41 7f'));
  ok.push(hex('05 44'));
  assert.throws(
    () => new QpackDecoderStreamReader(true).push(hex('81')),
    withCode(H3ErrorCode.QPACK_DECODER_STREAM_ERROR),
  );
  assert.throws(
    () => new QpackDecoderStreamReader(true).push(hex('01')),
    withCode(H3ErrorCode.QPACK_DECODER_STREAM_ERROR),
  );
  new QpackDecoderStreamReader(false).push(hex('81 01'));
});
