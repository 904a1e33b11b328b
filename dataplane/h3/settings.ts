// SETTINGS (RFC 9114 §7.2.4) with the identifiers this VPN cares about. Unknown and GREASE
// identifiers are kept in `entries` for logging but have no effect.

import { H3Error, H3ErrorCode } from './error.js';
import { FrameType, greaseValue, writeFrameHeader, frameHeaderSize } from './frame.js';
import { readVarint, varintSize, writeVarint } from './varint.js';

export const SettingId = {
  QPACK_MAX_TABLE_CAPACITY: 0x01,
  MAX_FIELD_SECTION_SIZE: 0x06,
  QPACK_BLOCKED_STREAMS: 0x07,
  ENABLE_CONNECT_PROTOCOL: 0x08,
  H3_DATAGRAM: 0x33,
  /** draft-ietf-masque-h3-datagram-00, still spoken by Cloudflare (PROTOCOL.md §9.3). */
  H3_DATAGRAM_DRAFT00: 0x276,
} as const;

export type SettingEntry = readonly [id: number, value: number];

export interface PeerSettings {
  qpackMaxTableCapacity: number;
  /** Infinity when the peer set no limit. */
  maxFieldSectionSize: number;
  qpackBlockedStreams: number;
  enableConnectProtocol: boolean;
  h3Datagram: boolean;
  h3DatagramDraft00: boolean;
  /** Every identifier/value pair in wire order, including unknown and GREASE ones. */
  entries: SettingEntry[];
}

/** HTTP/2 settings that have no HTTP/3 meaning and MUST NOT appear (RFC 9114 §7.2.4.1). */
function isHttp2OnlySetting(id: number): boolean {
  return id === 0x00 || (id >= 0x02 && id <= 0x05);
}

export function encodeSettingsPayload(entries: ReadonlyArray<SettingEntry>): Uint8Array {
  let size = 0;
  for (const [id, value] of entries) size += varintSize(id) + varintSize(value);
  const out = new Uint8Array(size);
  let off = 0;
  for (const [id, value] of entries) off = writeVarint(out, writeVarint(out, off, id), value);
  return out;
}

export function encodeSettingsFrame(entries: ReadonlyArray<SettingEntry>): Uint8Array {
  const payload = encodeSettingsPayload(entries);
  const out = new Uint8Array(frameHeaderSize(FrameType.SETTINGS, payload.length) + payload.length);
  out.set(payload, writeFrameHeader(out, 0, FrameType.SETTINGS, payload.length));
  return out;
}

function booleanSetting(id: number, value: number): boolean {
  if (value !== 0 && value !== 1) {
    throw new H3Error(H3ErrorCode.SETTINGS_ERROR, `setting 0x${id.toString(16)} = ${value}`);
  }
  return value === 1;
}

/** Decodes a SETTINGS payload. Malformed → H3_FRAME_ERROR; forbidden values → H3_SETTINGS_ERROR. */
export function decodeSettings(payload: Uint8Array): PeerSettings {
  const settings: PeerSettings = {
    qpackMaxTableCapacity: 0,
    maxFieldSectionSize: Infinity,
    qpackBlockedStreams: 0,
    enableConnectProtocol: false,
    h3Datagram: false,
    h3DatagramDraft00: false,
    entries: [],
  };
  const seen = new Set<number>();
  let off = 0;
  while (off < payload.length) {
    const id = readVarint(payload, off);
    const value = id && readVarint(payload, off + id.length);
    if (!id || !value) throw new H3Error(H3ErrorCode.FRAME_ERROR, 'truncated setting');
    off += id.length + value.length;
    // Identifiers above 2^53 are rounded and can only be unknown ones; do not call them duplicates.
    if (Number.isSafeInteger(id.value)) {
      if (seen.has(id.value)) {
        throw new H3Error(
          H3ErrorCode.SETTINGS_ERROR,
          `duplicate setting 0x${id.value.toString(16)}`,
        );
      }
      seen.add(id.value);
    }
    if (isHttp2OnlySetting(id.value)) {
      throw new H3Error(H3ErrorCode.SETTINGS_ERROR, `HTTP/2 setting 0x${id.value.toString(16)}`);
    }
    settings.entries.push([id.value, value.value]);
    switch (id.value) {
      case SettingId.QPACK_MAX_TABLE_CAPACITY:
        settings.qpackMaxTableCapacity = value.value;
        break;
      case SettingId.MAX_FIELD_SECTION_SIZE:
        settings.maxFieldSectionSize = value.value;
        break;
      case SettingId.QPACK_BLOCKED_STREAMS:
        settings.qpackBlockedStreams = value.value;
        break;
      case SettingId.ENABLE_CONNECT_PROTOCOL:
        settings.enableConnectProtocol = booleanSetting(id.value, value.value);
        break;
      case SettingId.H3_DATAGRAM:
        settings.h3Datagram = booleanSetting(id.value, value.value);
        break;
      case SettingId.H3_DATAGRAM_DRAFT00:
        settings.h3DatagramDraft00 = value.value === 1;
        break;
    }
  }
  return settings;
}

export interface LocalSettingsOptions {
  role: 'client' | 'server';
  /** Server only; default true. */
  enableConnectProtocol?: boolean;
  maxFieldSectionSize?: number;
  /** Also send the draft-00 H3_DATAGRAM identifier 0x276 = 1 (Cloudflare). */
  draftDatagram?: boolean;
  /** Append one GREASE setting with this N (identifier 0x1f * N + 0x21), as RFC 9114 suggests. */
  greaseN?: number;
}

/**
 * What we send (PROTOCOL.md §1.4, §10.1 items 1–2): QPACK capacity 0, blocked streams 0,
 * ENABLE_CONNECT_PROTOCOL on the server, H3_DATAGRAM on both sides.
 */
export function localSettings(opts: LocalSettingsOptions): SettingEntry[] {
  const entries: SettingEntry[] = [[SettingId.QPACK_MAX_TABLE_CAPACITY, 0]];
  if (opts.maxFieldSectionSize !== undefined) {
    entries.push([SettingId.MAX_FIELD_SECTION_SIZE, opts.maxFieldSectionSize]);
  }
  entries.push([SettingId.QPACK_BLOCKED_STREAMS, 0]);
  if (opts.role === 'server' && (opts.enableConnectProtocol ?? true)) {
    entries.push([SettingId.ENABLE_CONNECT_PROTOCOL, 1]);
  }
  entries.push([SettingId.H3_DATAGRAM, 1]);
  if (opts.draftDatagram) entries.push([SettingId.H3_DATAGRAM_DRAFT00, 1]);
  if (opts.greaseN !== undefined) entries.push([greaseValue(opts.greaseN), opts.greaseN & 0xff]);
  return entries;
}
