import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { H3Error, H3ErrorCode } from './error.js';
import {
  SettingId,
  decodeSettings,
  encodeSettingsFrame,
  encodeSettingsPayload,
  localSettings,
  type SettingEntry,
} from './settings.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const withCode = (code: number) => (err: unknown) => err instanceof H3Error && err.code === code;

test('PROTOCOL.md §1.4: server SETTINGS bytes', () => {
  const frame = encodeSettingsFrame(localSettings({ role: 'server' }));
  assert.equal(toHex(frame), toHex(hex('04 08 01 00 07 00 08 01 33 01')));
  const s = decodeSettings(frame.subarray(2));
  assert.equal(s.enableConnectProtocol, true);
  assert.equal(s.h3Datagram, true);
  assert.equal(s.qpackMaxTableCapacity, 0);
  assert.equal(s.qpackBlockedStreams, 0);
  assert.equal(s.maxFieldSectionSize, Infinity);
  assert.equal(toHex(encodeSettingsPayload(s.entries)), toHex(frame.subarray(2)));
});

test('PROTOCOL.md §1.4: client SETTINGS bytes, and the Cloudflare variant with 0x276', () => {
  assert.equal(
    toHex(encodeSettingsFrame(localSettings({ role: 'client' }))),
    toHex(hex('04 06 01 00 07 00 33 01')),
  );
  const cf = encodeSettingsFrame(localSettings({ role: 'client', draftDatagram: true }));
  assert.equal(toHex(cf), toHex(hex('04 09 01 00 07 00 33 01 42 76 01')));
  const s = decodeSettings(cf.subarray(2));
  assert.equal(s.enableConnectProtocol, false);
  assert.equal(s.h3DatagramDraft00, true);
});

for (const id of [0x00, 0x02, 0x03, 0x04, 0x05]) {
  test(`§10.2: HTTP/2 setting 0x0${id} → H3_SETTINGS_ERROR`, () => {
    assert.throws(() => decodeSettings(Uint8Array.of(id, 1)), withCode(H3ErrorCode.SETTINGS_ERROR));
  });
}

test('§10.2: H3_DATAGRAM or ENABLE_CONNECT_PROTOCOL not 0/1 → H3_SETTINGS_ERROR', () => {
  assert.throws(() => decodeSettings(hex('33 02')), withCode(H3ErrorCode.SETTINGS_ERROR));
  assert.throws(() => decodeSettings(hex('08 02')), withCode(H3ErrorCode.SETTINGS_ERROR));
  assert.equal(decodeSettings(hex('33 00')).h3Datagram, false);
});

test('§10.2: duplicate setting identifier → H3_SETTINGS_ERROR', () => {
  assert.throws(() => decodeSettings(hex('01 00 01 00')), withCode(H3ErrorCode.SETTINGS_ERROR));
  // Same identifier with a non-minimal encoding is still a duplicate.
  assert.throws(() => decodeSettings(hex('33 01 40 33 01')), withCode(H3ErrorCode.SETTINGS_ERROR));
});

test('truncated setting → H3_FRAME_ERROR', () => {
  assert.throws(() => decodeSettings(hex('01')), withCode(H3ErrorCode.FRAME_ERROR));
  assert.throws(() => decodeSettings(hex('33 40')), withCode(H3ErrorCode.FRAME_ERROR));
});

test('GREASE and unknown identifiers are ignored, even 62-bit ones', () => {
  const s = decodeSettings(hex('21 05 ff ff ff ff ff ff ff fe 07 33 01 40 40 09 06 80 00 40 00'));
  assert.equal(s.h3Datagram, true);
  assert.equal(s.maxFieldSectionSize, 16384);
  assert.equal(s.entries.length, 5);
});

test('quiche-like settings: capacity 65536, 100 blocked streams', () => {
  const s = decodeSettings(
    encodeSettingsPayload([
      [1, 65536],
      [7, 100],
      [6, 16384],
      [0x33, 1],
    ]),
  );
  assert.equal(s.qpackMaxTableCapacity, 65536);
  assert.equal(s.qpackBlockedStreams, 100);
});

test('property: decode(encode(entries)) = entries', () => {
  const forbidden = new Set<number>([0, 2, 3, 4, 5, SettingId.ENABLE_CONNECT_PROTOCOL, 0x33]);
  const entry = fc.tuple(
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).filter((id) => !forbidden.has(id)),
    fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  );
  fc.assert(
    fc.property(fc.uniqueArray(entry, { selector: (e) => e[0], maxLength: 20 }), (entries) => {
      const back = decodeSettings(encodeSettingsPayload(entries as SettingEntry[]));
      assert.deepEqual(back.entries, entries);
    }),
    { numRuns: 300 },
  );
});
