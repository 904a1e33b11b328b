import { test } from 'node:test';
import assert from 'node:assert/strict';
import { H3Error, H3ErrorCode } from './error.js';
import { headerValue, validateRequestHeaders, validateResponseHeaders } from './message.js';

type Fields = Array<[string, string]>;
const malformed = (err: unknown) =>
  err instanceof H3Error && err.code === H3ErrorCode.MESSAGE_ERROR && err.scope === 'stream';

const CONNECT_IP: Fields = [
  [':method', 'CONNECT'],
  [':protocol', 'connect-ip'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/vpn'],
  ['capsule-protocol', '?1'],
];

test('a valid Extended CONNECT passes and reports its pseudo-headers', () => {
  assert.deepEqual(validateRequestHeaders(CONNECT_IP, true), {
    method: 'CONNECT',
    protocol: 'connect-ip',
    scheme: 'https',
    authority: 'proxy.example.org',
    path: '/vpn',
  });
  assert.equal(headerValue(CONNECT_IP, 'capsule-protocol'), '?1');
});

const without = (name: string): Fields => CONNECT_IP.filter(([n]) => n !== name);

const MALFORMED: Array<[string, Fields, boolean?]> = [
  ['uppercase field name', [...CONNECT_IP, ['User-Agent', 'x']]],
  ['pseudo-header after a regular field', [...without(':path'), [':path', '/vpn']]],
  ['duplicate pseudo-header', [...CONNECT_IP.slice(0, 5), [':path', '/x'], ['a', 'b']]],
  ['unknown pseudo-header', [[':foo', 'x'], ...CONNECT_IP]],
  ['response pseudo-header in a request', [[':status', '200'], ...CONNECT_IP]],
  ['missing :scheme', without(':scheme')],
  ['missing :path', without(':path')],
  ['missing :authority', without(':authority')],
  ['missing :method', without(':method')],
  [':protocol without CONNECT', [[':method', 'GET'], ...without(':method')]],
  ['Extended CONNECT while disabled', CONNECT_IP, false],
  ['connection-specific field', [...CONNECT_IP, ['connection', 'close']]],
  ['transfer-encoding', [...CONNECT_IP, ['transfer-encoding', 'chunked']]],
  ['te other than trailers', [...CONNECT_IP, ['te', 'gzip']]],
  ['CR in a value', [...CONNECT_IP, ['x', 'a\rb']]],
  ['empty field name', [...CONNECT_IP, ['', 'x']]],
  [
    'plain CONNECT with :path',
    [
      [':method', 'CONNECT'],
      [':authority', 'a:443'],
      [':path', '/'],
    ],
  ],
];
for (const [name, fields, enabled] of MALFORMED) {
  test(`§10.2 request: ${name} → H3_MESSAGE_ERROR`, () => {
    assert.throws(() => validateRequestHeaders(fields, enabled ?? true), malformed);
  });
}

test('te: trailers, unknown regular fields and a plain CONNECT are accepted', () => {
  validateRequestHeaders([...CONNECT_IP, ['te', 'trailers'], ['connect-ip-version', '3']], true);
  validateRequestHeaders(
    [
      [':method', 'CONNECT'],
      [':authority', 'a:443'],
    ],
    false,
  );
  validateRequestHeaders(
    [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':path', '/'],
    ],
    false,
  );
});

test('§10.2 response: missing :status, 101, pseudo-headers out of place → H3_MESSAGE_ERROR', () => {
  assert.throws(() => validateResponseHeaders([['capsule-protocol', '?1']]), malformed);
  assert.throws(() => validateResponseHeaders([[':status', '101']]), malformed);
  assert.throws(() => validateResponseHeaders([[':status', '20']]), malformed);
  assert.throws(
    () =>
      validateResponseHeaders([
        [':path', '/'],
        [':status', '200'],
      ]),
    malformed,
  );
  assert.throws(
    () =>
      validateResponseHeaders([
        ['a', 'b'],
        [':status', '200'],
      ]),
    malformed,
  );
  assert.equal(validateResponseHeaders([[':status', '200']]), 200);
  assert.equal(validateResponseHeaders([[':status', '103']]), 103);
});
