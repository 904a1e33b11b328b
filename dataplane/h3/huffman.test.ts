import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { H3Error, H3ErrorCode } from './error.js';
import { EOS, huffmanCode, huffmanDecode, huffmanEncode, huffmanEncodedLength } from './huffman.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function encode(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(huffmanEncodedLength(bytes));
  assert.equal(huffmanEncode(bytes, out, 0), out.length);
  return out;
}

const failsDecompression = (err: unknown) =>
  err instanceof H3Error && err.code === H3ErrorCode.QPACK_DECOMPRESSION_FAILED;

test('canonical code spot checks of PROTOCOL.md Appendix A', () => {
  assert.deepEqual(huffmanCode(48), { code: 0b00000, length: 5 }); // '0'
  assert.deepEqual(huffmanCode(97), { code: 0b00011, length: 5 }); // 'a'
  assert.deepEqual(huffmanCode(32), { code: 0b010100, length: 6 }); // ' '
  assert.deepEqual(huffmanCode(EOS), { code: 0x3fffffff, length: 30 });
});

test('the code is complete and prefix-free (Kraft sum is exactly 1)', () => {
  let sum = 0;
  for (let s = 0; s <= EOS; s++) sum += 2 ** -huffmanCode(s).length;
  assert.equal(sum, 1);
  const seen = new Set<string>();
  for (let s = 0; s <= EOS; s++) {
    const { code, length } = huffmanCode(s);
    const bits = code.toString(2).padStart(length, '0');
    for (let l = 1; l < length; l++) assert.ok(!seen.has(bits.slice(0, l)), `prefix of ${s}`);
    seen.add(bits);
  }
});

const VECTORS: Array<[string, string]> = [
  ['www.example.com', 'f1 e3 c2 e5 f2 3a 6b a0 ab 90 f4 ff'],
  ['connect-ip', '21 ea a8 a4 4a c6 af'],
  [':protocol', 'b9 5d 87 49 c8 7a 3f'],
  ['capsule-protocol', '20 eb 45 b4 15 6a ec 3a 4e 43 d1'],
  ['?1', 'ff 03'],
  ['/.well-known/masque/ip/*/*/', '61 7f 05 a2 85 ba d4 7f 15 31 48 d1 da d2 b0 6a d8 f9 63 e5 8f'],
];

for (const [text, bytes] of VECTORS) {
  test(`PROTOCOL.md §3.4 vector "${text}" encodes and decodes exactly`, () => {
    const raw = Buffer.from(text, 'latin1');
    assert.equal(toHex(encode(raw)), toHex(hex(bytes)));
    assert.equal(Buffer.from(huffmanDecode(hex(bytes))).toString('latin1'), text);
  });
}

test('EOS decoded inside a string → QPACK_DECOMPRESSION_FAILED', () => {
  assert.throws(() => huffmanDecode(hex('ff ff ff ff')), failsDecompression);
  // 'a' then EOS then padding
  assert.throws(() => huffmanDecode(hex('1f ff ff ff fe')), failsDecompression);
});

test('padding longer than 7 bits → QPACK_DECOMPRESSION_FAILED', () => {
  assert.throws(() => huffmanDecode(hex('1f ff')), failsDecompression); // 'a' + 11 one-bits
  assert.throws(() => huffmanDecode(hex('ff')), failsDecompression); // 8 one-bits, no symbol
});

test('padding that is not all ones → QPACK_DECOMPRESSION_FAILED', () => {
  assert.throws(() => huffmanDecode(hex('18')), failsDecompression); // 'a' + 000
  assert.throws(() => huffmanDecode(hex('1e')), failsDecompression); // 'a' + 110
});

test('a run of 30+ one-bits across long codes is not mistaken for EOS', () => {
  // Symbols 0xfe..0xff etc. have long codes made mostly of ones.
  const raw = Uint8Array.of(0xff, 0xfe, 0xff, 0x0a, 0x0d, 0x16);
  assert.deepEqual(huffmanDecode(encode(raw)), raw);
});

test('empty string', () => {
  assert.equal(huffmanEncodedLength(new Uint8Array(0)), 0);
  assert.deepEqual(huffmanDecode(new Uint8Array(0)), new Uint8Array(0));
});

test('property: decode(encode(x)) = x', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
      assert.deepEqual(huffmanDecode(encode(raw)), raw);
    }),
    { numRuns: 500 },
  );
});

test('property: decoding arbitrary bytes only ever fails with QPACK_DECOMPRESSION_FAILED', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      try {
        const out = huffmanDecode(bytes);
        assert.equal(toHex(encode(out)), toHex(bytes), 'valid input has one encoding');
      } catch (err) {
        assert.ok(failsDecompression(err), String(err));
      }
    }),
    { numRuns: 1000 },
  );
});
