// The slice of RFC 8941 structured fields the FEC negotiation needs: parsing a List whose members
// are Items with Parameters, and serializing the same. Bare items are Integer, Decimal, String,
// Token, Byte Sequence and Boolean. Inner Lists are valid RFC 8941 but meaningless here, so they
// are reported as a syntax error rather than silently skipped. Only SfSyntaxError escapes.

/** Integers are numbers; Decimals keep their own type so "k=10.0" is not mistaken for 10. */
export type SfBareItem = number | SfDecimal | string | boolean | Uint8Array | SfToken;

export class SfDecimal {
  constructor(readonly value: number) {}
}

export class SfToken {
  constructor(readonly name: string) {}
}

export interface SfItem {
  value: SfBareItem;
  /** Parameters in order; a repeated key keeps its last value (RFC 8941 §4.2.3.2). */
  params: Map<string, SfBareItem>;
}

export class SfSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
    this.name = 'SfSyntaxError';
  }
}

const isDigit = (c: string) => c >= '0' && c <= '9';
const isLcAlpha = (c: string) => c >= 'a' && c <= 'z';
const isAlpha = (c: string) => isLcAlpha(c) || (c >= 'A' && c <= 'Z');
const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]$/;
const BASE64 = /^[A-Za-z0-9+/=]*$/;

class Cursor {
  i = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.i >= this.s.length;
  }
  peek(): string {
    return this.s[this.i] ?? '';
  }
  fail(message: string): never {
    throw new SfSyntaxError(message, this.i);
  }
  skipSp(): void {
    while (this.peek() === ' ') this.i++;
  }
  skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
  }
}

export function parseSfList(input: string): SfItem[] {
  const c = new Cursor(input);
  c.skipSp();
  const out: SfItem[] = [];
  if (c.done) return out;
  for (;;) {
    if (c.peek() === '(') c.fail('inner lists are not used in this field');
    out.push(parseItem(c));
    c.skipOws();
    if (c.done) return out;
    if (c.peek() !== ',') c.fail(`expected ',' between list members, found '${c.peek()}'`);
    c.i++;
    c.skipOws();
    if (c.done) c.fail('trailing comma');
  }
}

/** Parses a field holding exactly one Item. */
export function parseSfItem(input: string): SfItem {
  const c = new Cursor(input);
  c.skipSp();
  const item = parseItem(c);
  c.skipSp();
  if (!c.done) c.fail('unexpected characters after the item');
  return item;
}

function parseItem(c: Cursor): SfItem {
  const value = parseBareItem(c);
  const params = new Map<string, SfBareItem>();
  while (c.peek() === ';') {
    c.i++;
    c.skipSp();
    const key = parseKey(c);
    let v: SfBareItem = true;
    if (c.peek() === '=') {
      c.i++;
      v = parseBareItem(c);
    }
    params.delete(key);
    params.set(key, v);
  }
  return { value, params };
}

function parseKey(c: Cursor): string {
  const first = c.peek();
  if (!isLcAlpha(first) && first !== '*') c.fail('a key starts with a lowercase letter or *');
  const start = c.i;
  while (/^[a-z0-9_\-.*]$/.test(c.peek())) c.i++;
  return c.s.slice(start, c.i);
}

function parseBareItem(c: Cursor): SfBareItem {
  const ch = c.peek();
  if (ch === '-' || isDigit(ch)) return parseNumber(c);
  if (ch === '"') return parseString(c);
  if (ch === '*' || isAlpha(ch)) return parseToken(c);
  if (ch === ':') return parseBytes(c);
  if (ch === '?') return parseBoolean(c);
  return c.fail(ch === '' ? 'missing value' : `unexpected '${ch}'`);
}

function parseNumber(c: Cursor): number | SfDecimal {
  const start = c.i;
  if (c.peek() === '-') c.i++;
  if (!isDigit(c.peek())) c.fail('a number needs a digit');
  const intStart = c.i;
  while (isDigit(c.peek())) c.i++;
  const intDigits = c.i - intStart;
  if (c.peek() !== '.') {
    if (intDigits > 15) c.fail('integer longer than 15 digits');
    return Number.parseInt(c.s.slice(start, c.i), 10);
  }
  if (intDigits > 12) c.fail('decimal integer part longer than 12 digits');
  c.i++;
  const fracStart = c.i;
  while (isDigit(c.peek())) c.i++;
  const frac = c.i - fracStart;
  if (frac < 1 || frac > 3) c.fail('decimal needs 1 to 3 fraction digits');
  return new SfDecimal(Number.parseFloat(c.s.slice(start, c.i)));
}

function parseString(c: Cursor): string {
  c.i++;
  let out = '';
  for (;;) {
    if (c.done) c.fail('unterminated string');
    const ch = c.s[c.i++];
    if (ch === '\\') {
      const next = c.s[c.i++];
      if (next !== '"' && next !== '\\') c.fail('bad escape in string');
      out += next;
    } else if (ch === '"') {
      return out;
    } else {
      const code = ch.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) c.fail('string holds a non-printable character');
      out += ch;
    }
  }
}

function parseToken(c: Cursor): SfToken {
  const start = c.i;
  c.i++;
  while (TCHAR.test(c.peek())) c.i++;
  return new SfToken(c.s.slice(start, c.i));
}

function parseBytes(c: Cursor): Uint8Array {
  c.i++;
  const end = c.s.indexOf(':', c.i);
  if (end < 0) c.fail('unterminated byte sequence');
  const text = c.s.slice(c.i, end);
  if (!BASE64.test(text)) c.fail('byte sequence is not base64');
  c.i = end + 1;
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function parseBoolean(c: Cursor): boolean {
  c.i++;
  const ch = c.s[c.i++];
  if (ch === '1') return true;
  if (ch === '0') return false;
  return c.fail('a boolean is ?0 or ?1');
}

export function serializeSfList(items: readonly SfItem[]): string {
  return items.map(serializeSfItem).join(', ');
}

export function serializeSfItem(item: SfItem): string {
  let out = serializeBare(item.value);
  for (const [key, v] of item.params) {
    if (!/^[a-z*][a-z0-9_\-.*]*$/.test(key)) throw new SfSyntaxError(`bad key '${key}'`, 0);
    out += v === true ? `;${key}` : `;${key}=${serializeBare(v)}`;
  }
  return out;
}

function serializeBare(v: SfBareItem): string {
  if (v instanceof SfToken) {
    if (!/^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/.test(v.name)) {
      throw new SfSyntaxError(`bad token '${v.name}'`, 0);
    }
    return v.name;
  }
  if (typeof v === 'boolean') return v ? '?1' : '?0';
  if (v instanceof SfDecimal) {
    const text = (Math.round(v.value * 1000) / 1000).toString();
    return text.includes('.') ? text : `${text}.0`;
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= 999_999_999_999_999) return String(v);
    throw new SfSyntaxError(`number ${v} is not a serializable integer`, 0);
  }
  if (typeof v === 'string') {
    if (!/^[\x20-\x7e]*$/.test(v)) throw new SfSyntaxError('string is not printable ASCII', 0);
    return `"${v.replace(/[\\"]/g, (m) => `\\${m}`)}"`;
  }
  return `:${Buffer.from(v).toString('base64')}:`;
}
