// The CONNECT-IP request and response (RFC 9484 §4.4–4.6, RFC 9220 §3, RFC 9297 §3.2–3.4):
// the client's header list, the proxy's lenient validation (PROTOCOL.md §10.1 items 4–7), and the
// response header lists for success and for each failure.

import { parsePrefix, type IpPrefix } from './address.js';
import { H3_MESSAGE_ERROR } from './errors.js';
import {
  DEFAULT_PATH_TEMPLATE,
  WILDCARD,
  expandTemplate,
  matchTemplate,
  parseTemplate,
  type UriTemplate,
} from './template.js';

/** A decoded field section, in wire order. */
export type HeaderList = Array<[string, string]>;

export const PROTOCOL_CONNECT_IP = 'connect-ip';
/** Cloudflare WARP's private token (PROTOCOL.md §9.3). */
export const PROTOCOL_CF_CONNECT_IP = 'cf-connect-ip';

// ---------------------------------------------------------------------------------------------
// Client side

export interface ClientRequestOptions {
  /** Absolute template; its authority is sent byte-for-byte. */
  template: UriTemplate;
  /** Scope; absent means `*` (a full tunnel). */
  target?: string;
  ipproto?: string;
  /** `connect-ip` unless talking to Cloudflare. */
  protocol?: string;
  /** Appended after the mandatory fields (e.g. authorization, user-agent). */
  extraHeaders?: HeaderList;
}

/** The Extended CONNECT header list (pseudo-headers first, lowercase names). */
export function buildConnectIpRequest(opts: ClientRequestOptions): HeaderList {
  const t = opts.template;
  if (t.authority === undefined)
    throw new TypeError('the client needs an absolute template (https://host[:port]/path)');
  const values: Record<string, string> = {};
  if (opts.target !== undefined) values.target = opts.target;
  if (opts.ipproto !== undefined) values.ipproto = opts.ipproto;
  // The order of PROTOCOL.md §3.7, so the encoded block matches the reference bytes.
  return [
    [':method', 'CONNECT'],
    [':scheme', 'https'],
    [':authority', t.authority],
    [':path', expandTemplate(t, values)],
    [':protocol', opts.protocol ?? PROTOCOL_CONNECT_IP],
    ['capsule-protocol', '?1'],
    ...(opts.extraHeaders ?? []),
  ];
}

export type ResponseClass =
  | { readonly kind: 'interim'; readonly status: number }
  | { readonly kind: 'success'; readonly status: number; readonly capsuleProtocol: boolean }
  | {
      readonly kind: 'failure';
      readonly status: number;
      readonly proxyStatus: string | undefined;
      /** The server's `retry-after` hint, when it sent one we can read. */
      readonly retryAfterSeconds: number | undefined;
    }
  /** Abort the stream with H3_MESSAGE_ERROR. */
  | { readonly kind: 'malformed'; readonly reason: string };

/**
 * Classifies a response field section (PROTOCOL.md §4.3, §10.1 item 6): any 2xx is success with or
 * without capsule-protocol; 1xx is interim; 204/205/206, 101, a missing or bad :status, or framing
 * fields make it malformed; anything else is failure (3xx is not followed).
 */
export function classifyResponse(headers: HeaderList): ResponseClass {
  let status: string | undefined;
  let regular = false;
  for (const [name, value] of headers) {
    if (name !== name.toLowerCase()) return { kind: 'malformed', reason: 'uppercase field name' };
    if (name.startsWith(':')) {
      if (regular) return { kind: 'malformed', reason: 'pseudo-header after a regular field' };
      if (name !== ':status')
        return { kind: 'malformed', reason: `pseudo-header ${name} in a response` };
      if (status !== undefined) return { kind: 'malformed', reason: 'duplicate :status' };
      status = value;
    } else regular = true;
  }
  if (status === undefined) return { kind: 'malformed', reason: 'missing :status' };
  if (!/^[1-9][0-9]{2}$/.test(status))
    return { kind: 'malformed', reason: `bad :status "${status}"` };
  const code = Number(status);
  if (code === 101) return { kind: 'malformed', reason: '101 does not exist in HTTP/3' };
  if (code < 200) return { kind: 'interim', status: code };
  if (code >= 200 && code < 300) {
    if (code === 204 || code === 205 || code === 206)
      return { kind: 'malformed', reason: `${code} cannot carry the capsule protocol` };
    for (const [name] of headers) {
      if (name === 'content-length' || name === 'transfer-encoding' || name === 'content-type')
        return { kind: 'malformed', reason: `${name} with the capsule protocol` };
    }
    return { kind: 'success', status: code, capsuleProtocol: capsuleProtocolOf(headers) };
  }
  return {
    kind: 'failure',
    status: code,
    proxyStatus: headerValue(headers, 'proxy-status'),
    retryAfterSeconds: retryAfterOf(headers),
  };
}

/** Longest retry hint taken from a server: a day (anything longer is a typo or an attack). */
const MAX_RETRY_AFTER = 86_400;

/**
 * `retry-after` as delta-seconds (RFC 9110 §10.2.3). The HTTP-date form, an invalid value or an
 * absurd one gives undefined: the hint is advice, and the client's own backoff then applies.
 */
export function retryAfterOf(headers: HeaderList): number | undefined {
  const v = headerValue(headers, 'retry-after');
  if (v === undefined || !/^\d{1,6}$/.test(v.trim())) return undefined;
  const n = Number(v.trim());
  return n <= MAX_RETRY_AFTER ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function headerValue(headers: HeaderList, name: string): string | undefined {
  for (const [n, v] of headers) if (n === name) return v;
  return undefined;
}

/**
 * RFC 9297 §3.4: Capsule-Protocol is a Structured Field Item that must be a Boolean; parameters
 * are ignored; `?0`, a non-Boolean, or several field lines count as absent.
 */
export function capsuleProtocolOf(headers: HeaderList): boolean {
  let value: string | undefined;
  for (const [n, v] of headers) {
    if (n !== 'capsule-protocol') continue;
    if (value !== undefined) return false;
    value = v;
  }
  if (value === undefined) return false;
  const m = /^\s*\?([01])(;.*)?\s*$/.exec(value);
  return m !== null && m[1] === '1';
}

// ---------------------------------------------------------------------------------------------
// Proxy side

export interface ProxyRequestConfig {
  /**
   * Accepted `:authority` values, compared case-insensitively with `host` ≡ `host:443`
   * (§10.1 item 4). Undefined accepts any authority (the TLS layer already picked the name).
   */
  authorities?: readonly string[];
  /** Operator templates (absolute or bare paths such as `/vpn`). The default path is always served. */
  templates?: readonly UriTemplate[];
  /** Whether our SETTINGS carried ENABLE_CONNECT_PROTOCOL=1 (RFC 9220 §3). */
  extendedConnectEnabled: boolean;
  /** Accept Cloudflare's `cf-connect-ip` token too. */
  acceptCfConnectIp?: boolean;
}

/** The scope a client asked for (RFC 9484 §4.6). */
export type Target =
  | { readonly kind: 'any' }
  | { readonly kind: 'prefix'; readonly prefix: IpPrefix }
  | { readonly kind: 'dns'; readonly name: string };

export interface ConnectIpRequest {
  readonly authority: string;
  readonly path: string;
  readonly protocol: string;
  readonly target: Target;
  /** 0–255, or undefined for `*`. */
  readonly ipproto: number | undefined;
  /** Whether the client sent capsule-protocol: ?1 (not required, §10.1 item 5). */
  readonly capsuleProtocol: boolean;
  /** Every field, for the authorisation hook (authorization, user-agent, …). */
  readonly headers: HeaderList;
}

export type RequestRejection = {
  readonly ok: false;
  /** Status to answer with. */
  readonly status: 400 | 401 | 403 | 404 | 405 | 501 | 503;
  /** Response field section (with proxy-status). */
  readonly response: HeaderList;
  /**
   * Set for a malformed request (RFC 9114 §4.1.2): after the response, reset the stream with this
   * code instead of finishing it.
   */
  readonly resetCode: number | undefined;
  readonly reason: string;
};

export type RequestValidation =
  { readonly ok: true; readonly request: ConnectIpRequest } | RequestRejection;

const DEFAULT_TEMPLATE = parseTemplate(DEFAULT_PATH_TEMPLATE);

/** Fields that are connection-specific in HTTP/2 and HTTP/3 (RFC 9114 §4.2). */
const CONNECTION_SPECIFIC = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);

const PROXY_NAME = 'masque-vpn';

function sfString(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** RFC 9209 Proxy-Status value: `masque-vpn; error=<type>; details="<text>"`. */
export function proxyStatus(error: string, details?: string): string {
  return `${PROXY_NAME}; error=${error}${details !== undefined ? `; details=${sfString(details)}` : ''}`;
}

/** A 2xx answer: 200 with capsule-protocol: ?1 (§10.1 item 5: always sent on success). */
export function connectIpSuccessResponse(extra: HeaderList = []): HeaderList {
  return [[':status', '200'], ['capsule-protocol', '?1'], ...extra];
}

const ERROR_TYPES: Record<RequestRejection['status'], string> = {
  400: 'http_request_error',
  401: 'http_request_denied',
  403: 'http_request_denied',
  404: 'http_request_error',
  405: 'http_request_error',
  501: 'http_request_error',
  503: 'proxy_internal_response',
};

/** An error answer with a Proxy-Status explaining it. */
export function connectIpErrorResponse(
  status: RequestRejection['status'],
  details: string,
  extra: HeaderList = [],
): HeaderList {
  return [
    [':status', String(status)],
    ['proxy-status', proxyStatus(ERROR_TYPES[status], details)],
    ...extra,
  ];
}

export function reject(
  status: RequestRejection['status'],
  reason: string,
  resetCode?: number,
): RequestRejection {
  return { ok: false, status, response: connectIpErrorResponse(status, reason), resetCode, reason };
}

function malformed(reason: string): RequestRejection {
  return reject(400, reason, H3_MESSAGE_ERROR);
}

/** `Host` / `:authority` in canonical form for comparison: lowercase, default port dropped. */
function canonicalAuthority(authority: string): string {
  const a = authority.toLowerCase();
  return a.endsWith(':443') ? a.slice(0, -4) : a;
}

/** Parses `target` (after percent-decoding): `*`, an IP prefix `addr[/len]`, or a DNS name. */
export function parseTarget(value: string): Target | undefined {
  if (value === WILDCARD) return { kind: 'any' };
  if (/^[0-9.]+(\/[0-9]+)?$/.test(value) || value.includes(':')) {
    const prefix = parsePrefix(value);
    return prefix ? { kind: 'prefix', prefix } : undefined;
  }
  // RFC 1035 host name: labels of letters, digits and hyphens, ≤ 63 each, ≤ 253 in all.
  if (value.length > 253) return undefined;
  const labels = value.replace(/\.$/, '').split('.');
  for (const l of labels)
    if (!/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) return undefined;
  return { kind: 'dns', name: value.toLowerCase() };
}

/** Parses `ipproto`: `*` (undefined) or a decimal 0–255. */
export function parseIpproto(value: string): number | undefined | null {
  if (value === WILDCARD) return undefined;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(value)) return null;
  const n = Number(value);
  return n <= 255 ? n : null;
}

/**
 * Validates an Extended CONNECT for connect-ip on the proxy. Never throws: every outcome is a
 * typed result naming the status (and, for malformed requests, the stream reset code).
 */
export function validateConnectIpRequest(
  headers: HeaderList,
  config: ProxyRequestConfig,
): RequestValidation {
  const pseudo = new Map<string, string>();
  let regular = false;
  let host: string | undefined;
  let hasContentLength = false;
  for (const [name, value] of headers) {
    if (name === '' || name !== name.toLowerCase()) return malformed('field name is not lowercase');
    if (name.startsWith(':')) {
      if (regular) return malformed(`pseudo-header ${name} after a regular field`);
      if (!REQUEST_PSEUDO.has(name))
        return malformed(`pseudo-header ${name} not allowed in a request`);
      if (pseudo.has(name)) return malformed(`duplicate ${name}`);
      pseudo.set(name, value);
      continue;
    }
    regular = true;
    if (CONNECTION_SPECIFIC.has(name)) return malformed(`connection-specific field ${name}`);
    if (name === 'te' && value.trim().toLowerCase() !== 'trailers')
      return malformed('te other than "trailers"');
    if (name === 'content-length') hasContentLength = true;
    if (name === 'host') {
      if (host !== undefined) return malformed('duplicate host');
      host = value;
    }
  }
  const method = pseudo.get(':method');
  const protocol = pseudo.get(':protocol');
  if (method === undefined) return malformed('missing :method');
  if (protocol !== undefined && method !== 'CONNECT') return malformed(':protocol without CONNECT');
  if (method !== 'CONNECT')
    return reject(405, `method ${method} not allowed; CONNECT-IP needs CONNECT`);
  if (protocol === undefined) return malformed('missing :protocol (plain CONNECT is not served)');
  if (!config.extendedConnectEnabled) return malformed('Extended CONNECT is not enabled');
  const scheme = pseudo.get(':scheme');
  const authority = pseudo.get(':authority');
  const path = pseudo.get(':path');
  if (!scheme) return malformed('missing :scheme');
  if (!authority) return malformed('missing :authority');
  if (!path) return malformed('missing :path');
  if (host !== undefined && canonicalAuthority(host) !== canonicalAuthority(authority))
    return malformed('host does not match :authority');
  if (hasContentLength) return malformed('content-length with the capsule protocol');
  if (
    protocol !== PROTOCOL_CONNECT_IP &&
    !(config.acceptCfConnectIp && protocol === PROTOCOL_CF_CONNECT_IP)
  )
    return reject(501, `unsupported :protocol ${protocol}`);
  if (scheme !== 'https') return reject(400, `scheme ${scheme} not served`);
  if (config.authorities) {
    const want = canonicalAuthority(authority);
    if (!config.authorities.some((a) => canonicalAuthority(a) === want))
      return reject(400, `authority ${authority} not served`);
  }
  let values: Record<string, string> | undefined;
  for (const t of [...(config.templates ?? []), DEFAULT_TEMPLATE]) {
    values = matchTemplate(t, path);
    if (values) break;
  }
  if (!values) return reject(404, `no CONNECT-IP template serves ${path.slice(0, 200)}`);
  const target = parseTarget(values.target ?? WILDCARD);
  if (!target) return malformed('invalid target');
  const ipproto = parseIpproto(values.ipproto ?? WILDCARD);
  if (ipproto === null) return malformed('invalid ipproto');
  return {
    ok: true,
    request: {
      authority,
      path,
      protocol,
      target,
      ipproto,
      capsuleProtocol: capsuleProtocolOf(headers),
      headers,
    },
  };
}
