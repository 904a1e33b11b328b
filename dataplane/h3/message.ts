// HTTP/3 message rules on decoded field lists (RFC 9114 §4.1.2, §4.2, §4.3; RFC 9220 §3 for
// Extended CONNECT). A violation makes the message malformed: stream error H3_MESSAGE_ERROR.
// CONNECT-IP specifics (the :protocol value, path, capsule-protocol) belong to masque/.

import { H3Error, H3ErrorCode } from './error.js';

export type FieldList = ReadonlyArray<readonly [string, string]>;

export interface RequestHead {
  method: string;
  scheme?: string;
  authority?: string;
  path?: string;
  /** Present only on an Extended CONNECT. */
  protocol?: string;
}

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

function malformed(message: string): H3Error {
  return new H3Error(H3ErrorCode.MESSAGE_ERROR, message, 'stream');
}

/** RFC 9110 tchar, lowercase only (uppercase names are malformed in HTTP/3). */
function isValidRegularName(name: string): boolean {
  if (name.length === 0) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok =
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x21 ||
      (c >= 0x23 && c <= 0x27) ||
      c === 0x2a ||
      c === 0x2b ||
      c === 0x2d ||
      c === 0x2e ||
      c === 0x5e ||
      c === 0x5f ||
      c === 0x60 ||
      c === 0x7c ||
      c === 0x7e;
    if (!ok) return false;
  }
  return true;
}

function checkValue(name: string, value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x00 || c === 0x0a || c === 0x0d) throw malformed(`forbidden octet in ${name}`);
  }
}

/** Splits pseudo-headers from regular fields, checking order, names and duplicates. */
function splitFields(headers: FieldList, allowedPseudo: ReadonlySet<string>): Map<string, string> {
  const pseudo = new Map<string, string>();
  let regularSeen = false;
  for (const [name, value] of headers) {
    checkValue(name, value);
    if (name.startsWith(':')) {
      if (regularSeen) throw malformed(`pseudo-header ${name} after a regular field`);
      if (!allowedPseudo.has(name)) throw malformed(`pseudo-header ${name} not allowed here`);
      if (pseudo.has(name)) throw malformed(`duplicate ${name}`);
      pseudo.set(name, value);
      continue;
    }
    regularSeen = true;
    if (!isValidRegularName(name)) throw malformed(`invalid field name "${name}"`);
    if (CONNECTION_SPECIFIC.has(name)) throw malformed(`connection-specific field ${name}`);
    if (name === 'te' && value !== 'trailers') throw malformed('te other than "trailers"');
  }
  return pseudo;
}

/**
 * Validates a request head. `extendedConnect` says whether we sent ENABLE_CONNECT_PROTOCOL=1;
 * without it a `:protocol` is malformed (RFC 9220 §3).
 */
export function validateRequestHeaders(headers: FieldList, extendedConnect: boolean): RequestHead {
  const p = splitFields(headers, REQUEST_PSEUDO);
  const method = p.get(':method');
  if (method === undefined || method === '') throw malformed('missing :method');
  const head: RequestHead = { method };
  const scheme = p.get(':scheme');
  const authority = p.get(':authority');
  const path = p.get(':path');
  const protocol = p.get(':protocol');
  if (scheme !== undefined) head.scheme = scheme;
  if (authority !== undefined) head.authority = authority;
  if (path !== undefined) head.path = path;
  if (protocol !== undefined) {
    if (method !== 'CONNECT') throw malformed(':protocol without CONNECT');
    if (!extendedConnect) throw malformed('Extended CONNECT while not enabled');
    if (!scheme || !path || !authority) {
      throw malformed('Extended CONNECT needs :scheme, :path and :authority');
    }
    head.protocol = protocol;
    return head;
  }
  if (method === 'CONNECT') {
    if (scheme !== undefined || path !== undefined)
      throw malformed('CONNECT with :scheme or :path');
    if (!authority) throw malformed('CONNECT without :authority');
    return head;
  }
  if (!scheme || !path) throw malformed('missing :scheme or :path');
  return head;
}

const RESPONSE_PSEUDO = new Set([':status']);

/** Validates a response head and returns its status. 101 does not exist in HTTP/3 (§4.5). */
export function validateResponseHeaders(headers: FieldList): number {
  const p = splitFields(headers, RESPONSE_PSEUDO);
  const status = p.get(':status');
  if (status === undefined) throw malformed('missing :status');
  if (!/^[1-5][0-9][0-9]$/.test(status)) throw malformed(`invalid :status "${status}"`);
  const code = Number(status);
  if (code === 101) throw malformed(':status 101 in HTTP/3');
  return code;
}

/** The first value of `name`, if any. */
export function headerValue(headers: FieldList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}
