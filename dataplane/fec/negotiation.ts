// Per-tunnel FEC negotiation in the Extended CONNECT exchange. The client offers, in preference
// order, the schemes it speaks, each with the largest block it accepts and the HTTP datagram
// context ID it allocated for that scheme (even, RFC 9484 §5):
//
//   masque-fec: rs;k=10;m=3;ctx=2, xor;k=10;ctx=4
//
// The proxy answers a 2xx with exactly one of them, possibly with smaller k and m:
//
//   masque-fec: rs;k=10;m=2;ctx=2
//
// No answer header, or no offer, means no FEC: context 0 carries every packet as plain IP, as for
// a peer that never heard of this extension. Because the client chose the context IDs, it can
// recognise FEC datagrams that overtake the response headers. Unknown schemes and unknown
// parameters in an offer are skipped (room to grow); in an answer they are errors, since the
// proxy may only pick from what was offered.
import type { FecScheme } from './code.js';
import type { FecConfig } from './config.js';
import {
  SfSyntaxError,
  SfToken,
  parseSfItem,
  parseSfList,
  serializeSfItem,
  serializeSfList,
  type SfBareItem,
  type SfItem,
} from './structured-field.js';

export const FEC_HEADER_FIELD = 'masque-fec';

/** Largest QUIC varint, the range of context IDs. */
const MAX_CONTEXT_ID = 2 ** 62 - 1;

export interface FecOfferItem {
  scheme: FecScheme;
  k: number;
  /** Repair packets per block; always 1 for XOR. */
  m: number;
  context: number;
}

/** What both ends run once the proxy has answered. */
export type FecAgreement = FecOfferItem;

export interface FecPolicy {
  /** Schemes this end accepts. */
  schemes: readonly FecScheme[];
  maxK: number;
  maxM: number;
}

export type FecNegotiationErrorReason =
  'syntax' | 'bad-member' | 'bad-parameter' | 'duplicate-context' | 'not-offered' | 'empty';

export class FecNegotiationError extends Error {
  constructor(
    readonly reason: FecNegotiationErrorReason,
    message: string,
  ) {
    super(message);
    this.name = 'FecNegotiationError';
  }
}

const SCHEMES: readonly FecScheme[] = ['rs', 'xor'];
const KNOWN_PARAMS = new Set(['k', 'm', 'ctx']);

function isScheme(name: string): name is FecScheme {
  return (SCHEMES as readonly string[]).includes(name);
}

function integerParam(
  item: SfItem,
  key: string,
  min: number,
  max: number,
  required: boolean,
): number | undefined {
  const v: SfBareItem | undefined = item.params.get(key);
  if (v === undefined) {
    if (required) throw new FecNegotiationError('bad-parameter', `missing parameter '${key}'`);
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FecNegotiationError('bad-parameter', `'${key}' must be an integer in ${min}..${max}`);
  }
  return v;
}

function toOfferItem(item: SfItem, strict: boolean): FecOfferItem | undefined {
  if (!(item.value instanceof SfToken)) {
    throw new FecNegotiationError('bad-member', 'each member is a scheme token');
  }
  const name = item.value.name;
  if (!isScheme(name)) {
    if (strict) throw new FecNegotiationError('not-offered', `unknown scheme '${name}'`);
    return undefined;
  }
  if (strict) {
    for (const key of item.params.keys()) {
      if (!KNOWN_PARAMS.has(key)) {
        throw new FecNegotiationError('bad-parameter', `unknown parameter '${key}'`);
      }
    }
  }
  const k = integerParam(item, 'k', 1, 255, true) as number;
  const m =
    name === 'xor'
      ? (integerParam(item, 'm', 1, 1, false) ?? 1)
      : (integerParam(item, 'm', 1, 255, true) as number);
  if (k + m > 256) throw new FecNegotiationError('bad-parameter', `k + m = ${k + m} exceeds 256`);
  const context = integerParam(item, 'ctx', 1, MAX_CONTEXT_ID, true) as number;
  return { scheme: name, k, m, context };
}

function parseOrThrow<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof SfSyntaxError) throw new FecNegotiationError('syntax', err.message);
    throw err;
  }
}

function toSfItem(a: FecOfferItem): SfItem {
  const params = new Map<string, SfBareItem>([['k', a.k]]);
  if (a.scheme === 'rs') params.set('m', a.m);
  params.set('ctx', a.context);
  return { value: new SfToken(a.scheme), params };
}

function checkItem(a: FecOfferItem, contextParity: 0 | 1 | undefined): void {
  const ok =
    isScheme(a.scheme) &&
    Number.isInteger(a.k) &&
    a.k >= 1 &&
    a.k <= 255 &&
    Number.isInteger(a.m) &&
    a.m >= 1 &&
    (a.scheme === 'rs' || a.m === 1) &&
    a.k + a.m <= 256 &&
    Number.isSafeInteger(a.context) &&
    a.context >= 1 &&
    (contextParity === undefined || a.context % 2 === contextParity);
  if (!ok) throw new FecNegotiationError('bad-member', `invalid FEC offer ${JSON.stringify(a)}`);
}

/**
 * The client's offer from its configuration: one member per configured scheme, in preference
 * order, each on its own context ID taken from `contextIds` (even, unused, client-allocated).
 */
export function offerFromConfig(config: FecConfig, contextIds: readonly number[]): FecOfferItem[] {
  if (contextIds.length < config.schemes.length) {
    throw new FecNegotiationError('bad-member', 'one context ID per offered scheme is needed');
  }
  return config.schemes.map((scheme, i) => ({
    scheme,
    k: config.block_size,
    m: scheme === 'xor' ? 1 : config.max_repair,
    context: contextIds[i],
  }));
}

/** The client's request header value. Context IDs must be even (client-allocated) and distinct. */
export function formatFecOffer(offer: readonly FecOfferItem[]): string {
  if (offer.length === 0)
    throw new FecNegotiationError('empty', 'an offer names at least one scheme');
  for (const a of offer) checkItem(a, 0);
  if (new Set(offer.map((a) => a.context)).size !== offer.length) {
    throw new FecNegotiationError(
      'duplicate-context',
      'each offered scheme has its own context ID',
    );
  }
  return serializeSfList(offer.map(toSfItem));
}

/**
 * Parses an offer as the proxy receives it. Unknown schemes and parameters are skipped; a syntax
 * error, a bad value of a known parameter, an odd or repeated context ID is a FecNegotiationError
 * (the proxy then ignores the offer and runs without FEC).
 */
export function parseFecOffer(value: string): FecOfferItem[] {
  const items = parseOrThrow(() => parseSfList(value));
  const out: FecOfferItem[] = [];
  for (const item of items) {
    const a = toOfferItem(item, false);
    if (a === undefined) continue;
    if (a.context % 2 !== 0) {
      throw new FecNegotiationError('bad-parameter', `client context ID ${a.context} is odd`);
    }
    if (out.some((b) => b.context === a.context)) {
      throw new FecNegotiationError('duplicate-context', `context ID ${a.context} offered twice`);
    }
    out.push(a);
  }
  return out;
}

/** The proxy's choice: the client's first offered scheme it accepts, limits lowered to its own. */
export function selectFec(
  offer: readonly FecOfferItem[],
  policy: FecPolicy,
): FecAgreement | undefined {
  for (const a of offer) {
    if (!policy.schemes.includes(a.scheme)) continue;
    const k = Math.min(a.k, policy.maxK);
    const m = a.scheme === 'xor' ? 1 : Math.min(a.m, policy.maxM);
    if (k < 1 || m < 1) continue;
    return { scheme: a.scheme, k, m, context: a.context };
  }
  return undefined;
}

export function formatFecAnswer(agreement: FecAgreement): string {
  checkItem(agreement, undefined);
  return serializeSfItem(toSfItem(agreement));
}

/**
 * Parses the proxy's answer as the client receives it and checks it against what was offered:
 * one known scheme, an offered context ID, k and m no larger than offered.
 */
export function parseFecAnswer(value: string, offered: readonly FecOfferItem[]): FecAgreement {
  const item = parseOrThrow(() => parseSfItem(value));
  const a = toOfferItem(item, true) as FecAgreement;
  const mine = offered.find((o) => o.context === a.context);
  if (mine === undefined || mine.scheme !== a.scheme) {
    throw new FecNegotiationError('not-offered', `answer ${value} matches nothing offered`);
  }
  if (a.k > mine.k || a.m > mine.m) {
    throw new FecNegotiationError('not-offered', `answer ${value} exceeds the offered limits`);
  }
  return a;
}
