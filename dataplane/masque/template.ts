// URI templates for CONNECT-IP (RFC 9484 §3, RFC 6570 levels ≤ 3): parsing the configured
// template, expanding it into a request's authority and path (client), and matching a received
// :path against it (proxy).

export const DEFAULT_PATH_TEMPLATE = '/.well-known/masque/ip/{target}/{ipproto}/';

/** A value meaning "unscoped" (RFC 9484 §4.6); also what an absent or empty variable means. */
export const WILDCARD = '*';

type Part =
  | { readonly kind: 'literal'; readonly text: string }
  | { readonly kind: 'simple'; readonly name: string }
  | { readonly kind: 'query'; readonly names: readonly string[]; readonly continuation: boolean };

export interface UriTemplate {
  /** The template as configured. */
  readonly source: string;
  /** `https` for an absolute template; undefined for a bare path template. */
  readonly scheme: string | undefined;
  /** Authority exactly as written in the template (sent byte-for-byte, PROTOCOL.md §10.1 item 4). */
  readonly authority: string | undefined;
  /** Path and query part, template expressions included. */
  readonly pathTemplate: string;
  readonly variables: readonly string[];
  readonly parts: readonly Part[];
}

export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

const NAME = /^[A-Za-z0-9_]+$/;

/**
 * Parses an absolute template (`https://proxy.example:443/.well-known/masque/ip/{target}/{ipproto}/`)
 * or a bare path template (`/vpn`). Throws TemplateError: templates come from configuration, where
 * failing loudly at start-up is the right reaction.
 */
export function parseTemplate(source: string): UriTemplate {
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) throw new TemplateError('template has a character outside 0x21-0x7E');
  }
  let scheme: string | undefined;
  let authority: string | undefined;
  let pathTemplate = source;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(source);
  if (m) {
    scheme = m[1].toLowerCase();
    authority = m[2];
    pathTemplate = m[3];
    if (authority === '') throw new TemplateError('template has an empty authority');
    if (authority.includes('{'))
      throw new TemplateError('variables are allowed only in path and query');
  }
  if (!pathTemplate.startsWith('/')) throw new TemplateError('template path must start with "/"');
  const parts: Part[] = [];
  const variables: string[] = [];
  let i = 0;
  let inQuery = false;
  while (i < pathTemplate.length) {
    const open = pathTemplate.indexOf('{', i);
    const literalEnd = open < 0 ? pathTemplate.length : open;
    if (literalEnd > i) {
      const text = pathTemplate.slice(i, literalEnd);
      if (text.includes('}')) throw new TemplateError('unbalanced "}" in template');
      if (text.includes('#')) throw new TemplateError('template must not have a fragment');
      if (text.includes('?')) inQuery = true;
      parts.push({ kind: 'literal', text });
    }
    if (open < 0) break;
    const close = pathTemplate.indexOf('}', open);
    if (close < 0) throw new TemplateError('unterminated "{" in template');
    let expr = pathTemplate.slice(open + 1, close);
    const op = expr[0];
    if (op === '+' || op === '#' || op === '.' || op === '/' || op === ';')
      throw new TemplateError(`operator "${op}" is not allowed in a CONNECT-IP template`);
    if (op === '?' || op === '&') {
      expr = expr.slice(1);
      if (op === '?' && inQuery) throw new TemplateError('"{?...}" after the query started');
      inQuery = true;
    } else if (expr.includes(',')) throw new TemplateError('only one variable per path expression');
    const names = expr.split(',');
    for (const n of names) {
      if (!NAME.test(n)) throw new TemplateError(`bad variable name "${n}"`);
      if (variables.includes(n)) throw new TemplateError(`variable "${n}" appears twice`);
      variables.push(n);
    }
    if (op === '?' || op === '&') parts.push({ kind: 'query', names, continuation: op === '&' });
    else {
      const prev = parts[parts.length - 1];
      if (prev && prev.kind === 'simple')
        throw new TemplateError('two adjacent variables cannot be matched');
      parts.push({ kind: 'simple', name: names[0] });
    }
    i = close + 1;
  }
  return { source, scheme, authority, pathTemplate, variables, parts };
}

/** RFC 6570 simple-string encoding, except that `*` (the wildcard value) stays literal. */
function encodeValue(value: string): string {
  let out = '';
  for (const byte of new TextEncoder().encode(value)) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-._~*]/.test(c)) out += c;
    else out += '%' + byte.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/**
 * Expands the template's path. Variables missing from `values`, or empty, become `*`: RFC 9484
 * §3 forbids empty values, and `*` is what an absent one means.
 */
export function expandTemplate(t: UriTemplate, values: Readonly<Record<string, string>>): string {
  const v = (name: string): string => {
    const x = values[name];
    return x === undefined || x === '' ? WILDCARD : encodeValue(x);
  };
  let out = '';
  for (const p of t.parts) {
    if (p.kind === 'literal') out += p.text;
    else if (p.kind === 'simple') out += v(p.name);
    else out += (p.continuation ? '&' : '?') + p.names.map((n) => `${n}=${v(n)}`).join('&');
  }
  return out;
}

function decodeValue(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Matches a request's `:path` against the template. Returns the decoded variables (absent or empty
 * ones as `*`), or `undefined` when the path does not match. Query parameters the template does
 * not name are ignored.
 */
export function matchTemplate(t: UriTemplate, path: string): Record<string, string> | undefined {
  const q = path.indexOf('?');
  const pathOnly = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q + 1);
  const values: Record<string, string> = {};
  for (const n of t.variables) values[n] = WILDCARD;
  // Literal text of the template before the query; a literal "?" in the template splits it too.
  let pos = 0;
  let templateQuery = '';
  let inQuery = false;
  const queryNames: string[] = [];
  for (let i = 0; i < t.parts.length; i++) {
    const p = t.parts[i];
    if (inQuery) {
      if (p.kind === 'literal') templateQuery += p.text;
      else if (p.kind === 'query') queryNames.push(...p.names);
      else return undefined; // {var} inside a query literal: matched through the query below
      continue;
    }
    if (p.kind === 'literal') {
      const qi = p.text.indexOf('?');
      const text = qi < 0 ? p.text : p.text.slice(0, qi);
      if (!pathOnly.startsWith(text, pos)) return undefined;
      pos += text.length;
      if (qi >= 0) {
        inQuery = true;
        templateQuery += p.text.slice(qi + 1);
      }
    } else if (p.kind === 'simple') {
      const next = t.parts[i + 1];
      // A variable runs up to the next "/" or, when the template continues with a literal, to
      // that literal's first occurrence; it never crosses a "/" of the path.
      let end = pathOnly.indexOf('/', pos);
      if (end < 0) end = pathOnly.length;
      if (next && next.kind === 'literal') {
        const lit = next.text.split('?')[0];
        if (lit !== '' && !lit.startsWith('/')) {
          const at = pathOnly.indexOf(lit, pos);
          if (at < 0 || at > end) return undefined;
          end = at;
        }
      }
      const raw = pathOnly.slice(pos, end);
      const value = decodeValue(raw);
      if (value === undefined) return undefined;
      values[p.name] = value === '' ? WILDCARD : value;
      pos = end;
    } else {
      inQuery = true;
      queryNames.push(...p.names);
    }
  }
  if (pos !== pathOnly.length) return undefined;
  const params = new Map<string, string>();
  for (const kv of query === '' ? [] : query.split('&')) {
    const eq = kv.indexOf('=');
    params.set(eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
  }
  // Literal query pairs of the template (`/vpn?mode=ip`) must be present as written.
  for (const kv of templateQuery.split('&')) {
    if (kv === '') continue;
    const eq = kv.indexOf('=');
    const name = eq < 0 ? kv : kv.slice(0, eq);
    if (params.get(name) !== (eq < 0 ? '' : kv.slice(eq + 1))) return undefined;
  }
  for (const n of queryNames) {
    const raw = params.get(n);
    if (raw === undefined) continue;
    const value = decodeValue(raw);
    if (value === undefined) return undefined;
    values[n] = value === '' ? WILDCARD : value;
  }
  return values;
}
