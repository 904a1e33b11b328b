// The HTTP/3 error codes this layer acts with (named as in PROTOCOL.md §1.6, values from
// h3/error.ts) and its typed errors, which carry the code the stream is reset with.

import { H3ErrorCode } from '../h3/error.js';

export const H3_NO_ERROR = H3ErrorCode.NO_ERROR;
export const H3_EXCESSIVE_LOAD = H3ErrorCode.EXCESSIVE_LOAD;
export const H3_REQUEST_REJECTED = H3ErrorCode.REQUEST_REJECTED;
export const H3_REQUEST_CANCELLED = H3ErrorCode.REQUEST_CANCELLED;
export const H3_MESSAGE_ERROR = H3ErrorCode.MESSAGE_ERROR;

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
