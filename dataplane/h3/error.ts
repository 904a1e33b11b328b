// HTTP/3, QPACK and HTTP datagram error codes (RFC 9114 §8.1, RFC 9204 §6, RFC 9297 §5.2) and the
// one error class every parser in this folder throws on hostile input.

export const H3ErrorCode = {
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
} as const;

export type H3ErrorCodeName = keyof typeof H3ErrorCode;

const names = new Map<number, string>(
  Object.entries(H3ErrorCode).map(([name, code]) => [code, name]),
);

/** Reserved (GREASE) error codes are 0x1f * N + 0x21 (RFC 9114 §8.1). */
export function isReservedErrorCode(code: number): boolean {
  return code >= 0x21 && (code - 0x21) % 0x1f === 0;
}

/** A readable name for logs; unknown codes are shown in hex. */
export function errorCodeName(code: number): string {
  return names.get(code) ?? `0x${code.toString(16)}`;
}

/**
 * Whether the peer's error ends the whole connection or only one stream. A stream-scoped error
 * raised on a critical stream (control, QPACK) is escalated by the connection.
 */
export type H3ErrorScope = 'connection' | 'stream';

/** A protocol violation by the peer, carrying the code to send back. */
export class H3Error extends Error {
  readonly code: number;
  readonly scope: H3ErrorScope;

  constructor(code: number, message: string, scope: H3ErrorScope = 'connection') {
    super(`${errorCodeName(code)}: ${message}`);
    this.name = 'H3Error';
    this.code = code;
    this.scope = scope;
  }
}

/** A local caller used the API in a way the protocol state does not allow (not the peer's fault). */
export class H3UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'H3UsageError';
  }
}
