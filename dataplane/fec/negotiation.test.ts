import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FecConfigError, fecPolicy, parseFecConfig } from './config.js';
import {
  FecNegotiationError,
  formatFecAnswer,
  formatFecOffer,
  offerFromConfig,
  parseFecAnswer,
  parseFecOffer,
  selectFec,
  type FecOfferItem,
} from './negotiation.js';
import { SfDecimal, SfSyntaxError, SfToken, parseSfList } from './structured-field.js';

const OFFER: FecOfferItem[] = [
  { scheme: 'rs', k: 10, m: 3, context: 2 },
  { scheme: 'xor', k: 10, m: 1, context: 4 },
];

const reason = (r: string) => (err: unknown) =>
  err instanceof FecNegotiationError && err.reason === r;

test('offer: formats as a structured-field list and parses back', () => {
  const text = formatFecOffer(OFFER);
  assert.equal(text, 'rs;k=10;m=3;ctx=2, xor;k=10;ctx=4');
  assert.deepEqual(parseFecOffer(text), OFFER);
});

test('offer round trip for any valid offer', () => {
  const item = fc
    .record({
      scheme: fc.constantFrom('rs' as const, 'xor' as const),
      k: fc.integer({ min: 1, max: 200 }),
    })
    .chain((a) =>
      fc.integer({ min: 1, max: a.scheme === 'xor' ? 1 : 256 - a.k }).map((m) => ({ ...a, m })),
    );
  fc.assert(
    fc.property(fc.array(item, { minLength: 1, maxLength: 4 }), (items) => {
      const offer = items.map((a, i) => ({ ...a, context: 2 * (i + 1) }));
      assert.deepEqual(parseFecOffer(formatFecOffer(offer)), offer);
    }),
  );
});

test('offer: unknown schemes and parameters are skipped, whitespace tolerated', () => {
  assert.deepEqual(parseFecOffer('  raptorq;k=50;ctx=6 ,\trs;k=8;m=2;ctx=2;future="x";flag'), [
    { scheme: 'rs', k: 8, m: 2, context: 2 },
  ]);
  assert.deepEqual(parseFecOffer(''), []);
});

test('offer: malformed input is a typed error', () => {
  const bad: [string, string][] = [
    ['rs;k=10;m=3;ctx=2,', 'syntax'],
    ['rs;k=10;;ctx=2', 'syntax'],
    ['(rs xor);ctx=2', 'syntax'],
    ['rs;K=10;m=3;ctx=2', 'syntax'],
    ['rs;k=1000000000000000000;m=3;ctx=2', 'syntax'],
    ['"rs";k=10;m=3;ctx=2', 'bad-member'],
    ['rs;m=3;ctx=2', 'bad-parameter'],
    ['rs;k=10;ctx=2', 'bad-parameter'],
    ['rs;k=10.0;m=3;ctx=2', 'bad-parameter'],
    ['rs;k=0;m=3;ctx=2', 'bad-parameter'],
    ['rs;k=255;m=3;ctx=2', 'bad-parameter'],
    ['xor;k=10;m=2;ctx=2', 'bad-parameter'],
    ['rs;k=10;m=3', 'bad-parameter'],
    ['rs;k=10;m=3;ctx=3', 'bad-parameter'],
    ['rs;k=10;m=3;ctx=2, xor;k=4;ctx=2', 'duplicate-context'],
  ];
  for (const [text, r] of bad) assert.throws(() => parseFecOffer(text), reason(r), text);
  assert.throws(() => formatFecOffer([]), reason('empty'));
  assert.throws(
    () => formatFecOffer([{ scheme: 'rs', k: 10, m: 3, context: 3 }]),
    reason('bad-member'),
  );
});

test('proxy selects the first offered scheme it accepts, lowering limits', () => {
  assert.deepEqual(selectFec(OFFER, { schemes: ['xor', 'rs'], maxK: 8, maxM: 2 }), {
    scheme: 'rs',
    k: 8,
    m: 2,
    context: 2,
  });
  assert.deepEqual(selectFec(OFFER, { schemes: ['xor'], maxK: 20, maxM: 4 }), OFFER[1]);
  assert.equal(selectFec(OFFER, { schemes: [], maxK: 20, maxM: 4 }), undefined);
});

test('answer: formats, and the client accepts only what it offered', () => {
  const answer = formatFecAnswer({ scheme: 'rs', k: 8, m: 2, context: 2 });
  assert.equal(answer, 'rs;k=8;m=2;ctx=2');
  assert.deepEqual(parseFecAnswer(answer, OFFER), { scheme: 'rs', k: 8, m: 2, context: 2 });
  const bad: [string, string][] = [
    ['rs;k=11;m=3;ctx=2', 'not-offered'],
    ['rs;k=10;m=4;ctx=2', 'not-offered'],
    ['xor;k=10;ctx=2', 'not-offered'],
    ['rs;k=10;m=3;ctx=6', 'not-offered'],
    ['raptorq;k=10;ctx=2', 'not-offered'],
    ['rs;k=10;m=3;ctx=2;extra=1', 'bad-parameter'],
    ['rs;k=10;m=3;ctx=2, xor;k=10;ctx=4', 'syntax'],
    ['', 'syntax'],
  ];
  for (const [text, r] of bad) assert.throws(() => parseFecAnswer(text, OFFER), reason(r), text);
});

test('structured fields: bare item types and hostile input', () => {
  const [item] = parseSfList('tok;a=-12;b=1.5;c="q\\"x";d=:AQI=:;e=?0;f');
  assert.ok(item.value instanceof SfToken && item.value.name === 'tok');
  assert.equal(item.params.get('a'), -12);
  assert.deepEqual(item.params.get('b'), new SfDecimal(1.5));
  assert.equal(item.params.get('c'), 'q"x');
  assert.deepEqual(item.params.get('d'), new Uint8Array([1, 2]));
  assert.equal(item.params.get('e'), false);
  assert.equal(item.params.get('f'), true);
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      try {
        parseFecOffer(s);
      } catch (err) {
        assert.ok(err instanceof FecNegotiationError, String(err));
      }
      try {
        parseSfList(s);
      } catch (err) {
        assert.ok(err instanceof SfSyntaxError, String(err));
      }
    }),
    { numRuns: 2000 },
  );
});

test('config: defaults, validation, unknown keys named', () => {
  const c = parseFecConfig({});
  assert.equal(c.enabled, false);
  assert.deepEqual(fecPolicy(c), { schemes: ['rs', 'xor'], maxK: 10, maxM: 4 });
  assert.equal(parseFecConfig({ enabled: true, block_size: 20, max_repair: 5 }).block_size, 20);
  assert.throws(
    () => parseFecConfig({ enabled: true, redundancy_percent: 20, blocksize: 3 }),
    (err: unknown) =>
      err instanceof FecConfigError &&
      err.message.includes("'redundancy_percent'") &&
      err.message.includes("'blocksize'"),
  );
  assert.throws(() => parseFecConfig({ block_size: 250, max_repair: 10 }), /max_repair/);
  // The stretched flush defaults to 20 ms, or to flush_ms when that is longer; never below it.
  assert.equal(c.max_flush_ms, 20);
  assert.equal(parseFecConfig({ flush_ms: 40 }).max_flush_ms, 40);
  assert.equal(parseFecConfig({ flush_ms: 5, max_flush_ms: 5 }).max_flush_ms, 5);
  assert.throws(() => parseFecConfig({ flush_ms: 10, max_flush_ms: 5 }), /max_flush_ms/);
  assert.throws(() => parseFecConfig({ schemes: ['rs', 'rs'] }), FecConfigError);
  assert.throws(() => parseFecConfig({ schemes: ['ldpc'] }), FecConfigError);
  assert.throws(
    () => parseFecConfig({ min_redundancy_percent: 50, max_redundancy_percent: 20 }),
    /min_redundancy_percent/,
  );
});

test('offer from configuration: one context per scheme, round trips through the header', () => {
  const offer = offerFromConfig(
    parseFecConfig({ enabled: true, block_size: 12, max_repair: 3 }),
    [2, 4],
  );
  assert.deepEqual(offer, [
    { scheme: 'rs', k: 12, m: 3, context: 2 },
    { scheme: 'xor', k: 12, m: 1, context: 4 },
  ]);
  assert.deepEqual(parseFecOffer(formatFecOffer(offer)), offer);
  assert.throws(() => offerFromConfig(parseFecConfig({}), [2]), reason('bad-member'));
});
