import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H3Error, H3ErrorCode, errorCodeName, isReservedErrorCode } from './error.js';

test('PROTOCOL.md §1.6 error codes', () => {
  const expected: Record<string, number> = {
    NO_ERROR: 0x100,
    GENERAL_PROTOCOL_ERROR: 0x101,
    INTERNAL_ERROR: 0x102,
    STREAM_CREATION_ERROR: 0x103,
    CLOSED_CRITICAL_STREAM: 0x104,
    FRAME_UNEXPECTED: 0x105,
    FRAME_ERROR: 0x106,
    EXCESSIVE_LOAD: 0x107,
    ID_ERROR: 0x108,
    SETTINGS_ERROR: 0x109,
    MISSING_SETTINGS: 0x10a,
    REQUEST_REJECTED: 0x10b,
    REQUEST_CANCELLED: 0x10c,
    REQUEST_INCOMPLETE: 0x10d,
    MESSAGE_ERROR: 0x10e,
    CONNECT_ERROR: 0x10f,
    VERSION_FALLBACK: 0x110,
    QPACK_DECOMPRESSION_FAILED: 0x200,
    QPACK_ENCODER_STREAM_ERROR: 0x201,
    QPACK_DECODER_STREAM_ERROR: 0x202,
    DATAGRAM_ERROR: 0x33,
  };
  assert.deepEqual({ ...H3ErrorCode }, expected);
});

test('reserved codes are 0x1f * N + 0x21; names fall back to hex', () => {
  assert.ok(isReservedErrorCode(0x21) && isReservedErrorCode(0x40) && isReservedErrorCode(0x5f));
  assert.ok(!isReservedErrorCode(0x100) && !isReservedErrorCode(0x20));
  assert.equal(errorCodeName(0x10e), 'MESSAGE_ERROR');
  assert.equal(errorCodeName(0x21), '0x21');
});

test('H3Error carries code, scope and a readable message', () => {
  const e = new H3Error(H3ErrorCode.MESSAGE_ERROR, 'bad', 'stream');
  assert.equal(e.code, 0x10e);
  assert.equal(e.scope, 'stream');
  assert.equal(e.message, 'MESSAGE_ERROR: bad');
  assert.equal(new H3Error(H3ErrorCode.FRAME_ERROR, 'x').scope, 'connection');
});
