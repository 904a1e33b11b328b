import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { H3Error, H3ErrorCode } from './error.js';
import {
  FrameReader,
  FrameType,
  decodeIdPayload,
  encodeFrame,
  encodeIdFrame,
  isGreaseValue,
  type FrameSink,
} from './frame.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const withCode = (code: number) => (err: unknown) => err instanceof H3Error && err.code === code;

interface Seen {
  starts: Array<[number, number]>;
  data: string;
  frames: Array<[number, string]>;
}

function recorder(): { seen: Seen; sink: FrameSink } {
  const seen: Seen = { starts: [], data: '', frames: [] };
  return {
    seen,
    sink: {
      frameStart: (t, l) => seen.starts.push([t, l]),
      data: (b) => (seen.data += toHex(b)),
      frame: (t, p) => seen.frames.push([t, toHex(p)]),
    },
  };
}

function read(bytes: Uint8Array, chunk = bytes.length || 1): Seen {
  const reader = new FrameReader();
  const { seen, sink } = recorder();
  for (let i = 0; i < bytes.length; i += chunk) reader.push(bytes.subarray(i, i + chunk), sink);
  reader.end();
  return seen;
}

test('PROTOCOL.md §1.5 GOAWAY 2^62-4 and Appendix B DATA frames round-trip', () => {
  assert.equal(toHex(encodeIdFrame(FrameType.GOAWAY, 2n ** 62n - 4n)), '0708fffffffffffffffc');
  assert.equal(toHex(encodeIdFrame(FrameType.GOAWAY, 4)), '070104');
  const assign = hex('00 09 01 07 00 04 0a 01 01 02 20');
  const route = hex('00 0c 03 0a 04 00 00 00 00 ff ff ff ff 00');
  for (const chunk of [1, 3, 100]) {
    const seen = read(Uint8Array.from([...assign, ...route]), chunk);
    assert.equal(seen.data, '010700040a01010220' + '030a0400000000ffffffff00');
    assert.deepEqual(seen.starts, [
      [0, 9],
      [0, 12],
    ]);
  }
  assert.equal(
    toHex(encodeFrame(FrameType.DATA, hex('01 07 00 04 0a 01 01 02 20'))),
    toHex(assign),
  );
});

test('HEADERS with the 95-byte §3.7 block has header 01 40 5f and is delivered whole', () => {
  const block = new Uint8Array(95).fill(0x61);
  const frame = encodeFrame(FrameType.HEADERS, block);
  assert.equal(toHex(frame.subarray(0, 3)), '01405f');
  const seen = read(frame, 7);
  assert.deepEqual(seen.frames, [[1, toHex(block)]]);
});

test('non-minimal varints in frame headers are accepted', () => {
  const seen = read(hex('40 00 80 00 00 02 aa bb'));
  assert.equal(seen.data, 'aabb');
});

test('unknown and GREASE frames are skipped without being delivered', () => {
  assert.ok(isGreaseValue(0x21) && isGreaseValue(0x40) && !isGreaseValue(0x22));
  const seen = read(hex('21 03 01 02 03  40 40 00  7f ff 00  00 01 ee'), 2);
  assert.equal(seen.frames.length, 0);
  assert.equal(seen.data, 'ee');
  assert.equal(seen.starts.length, 4);
});

for (const type of [0x02, 0x06, 0x08, 0x09]) {
  test(`§10.2: reserved HTTP/2 frame type 0x0${type} → H3_FRAME_UNEXPECTED`, () => {
    const reader = new FrameReader();
    assert.throws(
      () => reader.push(Uint8Array.of(type), recorder().sink),
      withCode(H3ErrorCode.FRAME_UNEXPECTED),
    );
  });
}

test('§10.2: frame truncated at FIN → H3_FRAME_ERROR (in the header and in the payload)', () => {
  for (const bytes of ['01', '01 05 00', '40', '00 40']) {
    const reader = new FrameReader();
    reader.push(hex(bytes), recorder().sink);
    assert.throws(() => reader.end(), withCode(H3ErrorCode.FRAME_ERROR), bytes);
  }
});

test('§10.2: ID frame payload longer or shorter than its varint → H3_FRAME_ERROR', () => {
  assert.throws(() => decodeIdPayload(hex('00 00')), withCode(H3ErrorCode.FRAME_ERROR));
  assert.throws(() => decodeIdPayload(hex('')), withCode(H3ErrorCode.FRAME_ERROR));
  assert.throws(() => decodeIdPayload(hex('40')), withCode(H3ErrorCode.FRAME_ERROR));
  assert.equal(decodeIdPayload(hex('40 04')), 4);
  const reader = new FrameReader();
  assert.throws(
    () => reader.push(hex('07 09'), recorder().sink),
    withCode(H3ErrorCode.FRAME_ERROR),
    'a GOAWAY longer than any varint is rejected before buffering',
  );
});

test('a huge HEADERS length is refused at the header: stream error H3_EXCESSIVE_LOAD', () => {
  const reader = new FrameReader({ maxHeadersPayload: 1024, maxControlPayload: 64 });
  assert.throws(
    () => reader.push(hex('01 bf ff ff ff'), recorder().sink),
    (err: unknown) =>
      err instanceof H3Error && err.code === H3ErrorCode.EXCESSIVE_LOAD && err.scope === 'stream',
  );
  const r2 = new FrameReader({ maxHeadersPayload: 1024, maxControlPayload: 64 });
  assert.throws(
    () => r2.push(hex('04 41 00'), recorder().sink),
    (err: unknown) =>
      err instanceof H3Error &&
      err.code === H3ErrorCode.EXCESSIVE_LOAD &&
      err.scope === 'connection',
  );
});

test('DATA payloads pass through as views of the input, never buffered whole', () => {
  const reader = new FrameReader();
  const pieces: Uint8Array[] = [];
  const sink: FrameSink = { frameStart() {}, data: (b) => pieces.push(b), frame() {} };
  reader.push(hex('00 80 10 00 00'), sink); // a 1 MiB DATA frame
  const chunk = new Uint8Array(65536).fill(7);
  for (let i = 0; i < 16; i++) reader.push(chunk, sink);
  reader.end();
  assert.equal(pieces.length, 16);
  for (const p of pieces) assert.equal(p.buffer, chunk.buffer);
  // Unknown frames of any size are skipped the same way.
  const skip = new FrameReader();
  skip.push(hex('21 bf ff ff ff'), sink);
  skip.push(chunk, sink);
  assert.equal(pieces.length, 16);
});

test('halt() discards the rest of the chunk', () => {
  const reader = new FrameReader();
  let n = 0;
  const sink: FrameSink = {
    frameStart() {},
    data: () => {
      n++;
      reader.halt();
    },
    frame() {},
  };
  reader.push(hex('00 01 aa 00 01 bb'), sink);
  assert.equal(n, 1);
});

test('property: frames survive any chunking', () => {
  const frame = fc.oneof(
    fc.tuple(fc.constant(0), fc.uint8Array({ maxLength: 50 })),
    fc.tuple(fc.constantFrom(1, 4, 5), fc.uint8Array({ maxLength: 50 })),
    fc.tuple(fc.constantFrom(0x21, 0x40, 0x1f * 1000 + 0x21), fc.uint8Array({ maxLength: 20 })),
  );
  fc.assert(
    fc.property(
      fc.array(frame, { maxLength: 8 }),
      fc.integer({ min: 1, max: 17 }),
      (frames, chunk) => {
        const wire = Buffer.concat(frames.map(([t, p]) => encodeFrame(t, p)));
        const seen = read(Uint8Array.from(wire), chunk);
        assert.equal(
          seen.data,
          frames
            .filter(([t]) => t === 0)
            .map(([, p]) => toHex(p))
            .join(''),
        );
        assert.deepEqual(
          seen.frames,
          frames.filter(([t]) => t >= 1 && t <= 5).map(([t, p]) => [t, toHex(p)]),
        );
        assert.deepEqual(
          seen.starts,
          frames.map(([t, p]) => [t, p.length]),
        );
      },
    ),
    { numRuns: 300 },
  );
});
