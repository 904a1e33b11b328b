// Error codes and typed errors of the CONNECT-IP layer. The numeric codes are HTTP/3's
// (RFC 9114 §8.1, RFC 9297 §5.2); they are repeated here so this layer's codecs stand alone and the
// h3 layer can map a MasqueError straight onto RESET_STREAM / STOP_SENDING / CONNECTION_CLOSE.

export const H3_NO_ERROR = 0x100;
export const H3_GENERAL_PROTOCOL_ERROR = 0x101;
export const H3_INTERNAL_ERROR = 0x102;
export const H3_EXCESSIVE_LOAD = 0x107;
export const H3_ID_ERROR = 0x108;
export const H3_REQUEST_REJECTED = 0x10b;
export const H3_REQUEST_CANCELLED = 0x10c;
export const H3_MESSAGE_ERROR = 0x10e;
export const H3_DATAGRAM_ERROR = 0x33;

/** Whether the error ends the request stream (both directions) or the whole connection. */
export type ErrorScope = 'stream' | 'connection';

/** Base of every error this layer raises on hostile input. */
export class MasqueError extends Error {
  constructor(
    message: string,
    /** HTTP/3 error code to reset the stream (or close the connection) with. */
    readonly code: number,
    readonly scope: ErrorScope,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A capsule stream violation. Malformed capsules are an RFC 9114 §4.1.2 malformed message
 * (H3_MESSAGE_ERROR); exceeding our buffering limit is H3_EXCESSIVE_LOAD (PROTOCOL.md §6.1, §10.2).
 * Either way the reaction is: reset the stream and send STOP_SENDING with `code`.
 */
export class CapsuleError extends MasqueError {
  constructor(message: string, code: number = H3_MESSAGE_ERROR) {
    super(message, code, 'stream');
  }
}
