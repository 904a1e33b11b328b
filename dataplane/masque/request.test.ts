import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { H3_MESSAGE_ERROR } from './errors.js';
import {
  buildConnectIpRequest,
  capsuleProtocolOf,
  classifyResponse,
  retryAfterOf,
  connectIpSuccessResponse,
  validateConnectIpRequest,
  type HeaderList,
  type ProxyRequestConfig,
} from './request.js';
import { parseTemplate } from './template.js';

const config: ProxyRequestConfig = {
  authorities: ['proxy.example.org'],
  templates: [parseTemplate('https://proxy.example.org/vpn')],
  extendedConnectEnabled: true,
};

/** The §3.7 request block, as the QPACK decoder hands it over. */
const section37: HeaderList = [
  [':method', 'CONNECT'],
  [':scheme', 'https'],
  [':authority', 'proxy.example.org'],
  [':path', '/.well-known/masque/ip/*/*/'],
  [':protocol', 'connect-ip'],
  ['capsule-protocol', '?1'],
];

const withField = (name: string, value: string | undefined, base = section37): HeaderList => {
  const out = base.filter(([n]) => n !== name);
  if (value === undefined) return out;
  const i = name.startsWith(':') ? out.findIndex(([n]) => !n.startsWith(':')) : out.length;
  out.splice(i < 0 ? out.length : i, 0, [name, value]);
  return out;
};

function rejected(
  headers: HeaderList,
  status: number,
  resetCode: number | undefined,
  cfg = config,
): string {
  const v = validateConnectIpRequest(headers, cfg);
  assert.equal(v.ok, false, 'expected a rejection');
  assert.ok(!v.ok);
  assert.equal(v.status, status, v.reason);
  assert.equal(v.resetCode, resetCode, v.reason);
  assert.equal(v.response[0][0], ':status');
  assert.equal(v.response[0][1], String(status));
  const ps = v.response.find(([n]) => n === 'proxy-status');
  assert.ok(ps, 'proxy-status present');
  assert.match(ps[1], /^masque-vpn; error=[a-z_]+; details="/);
  return v.reason;
}

test('§3.7 request: the client builds exactly the reference field list (order and values)', () => {
  const h = buildConnectIpRequest({
    template: parseTemplate('https://proxy.example.org/.well-known/masque/ip/{target}/{ipproto}/'),
  });
  assert.deepEqual(h, section37);
});

test('§3.7 request validates on the proxy; target and ipproto are *', () => {
  const v = validateConnectIpRequest(section37, config);
  assert.ok(v.ok);
  assert.deepEqual(v.request.target, { kind: 'any' });
  assert.equal(v.request.ipproto, undefined);
  assert.equal(v.request.capsuleProtocol, true);
});

test('§10.1 item 4: client sends the template authority byte-for-byte; proxy compares leniently', () => {
  const h = buildConnectIpRequest({ template: parseTemplate('https://Proxy.Example.org:443/vpn') });
  assert.equal(new Map(h).get(':authority'), 'Proxy.Example.org:443');
  assert.ok(validateConnectIpRequest(withField(':authority', 'PROXY.example.ORG'), config).ok);
  assert.ok(validateConnectIpRequest(withField(':authority', 'proxy.example.org:443'), config).ok);
  assert.ok(
    validateConnectIpRequest(withField(':authority', 'proxy.example.org:443'), {
      ...config,
      authorities: ['proxy.example.org:443'],
    }).ok,
  );
  rejected(withField(':authority', 'proxy.example.org:8443'), 400, undefined);
  rejected(withField(':authority', 'other.example'), 400, undefined);
  assert.ok(
    validateConnectIpRequest(withField(':authority', 'anything'), {
      ...config,
      authorities: undefined,
    }).ok,
  );
});

test('§10.1 item 5: a request without capsule-protocol (quiche) is accepted; ?0 and junk count as absent', () => {
  for (const value of [undefined, '?0', '1', 'true']) {
    const v = validateConnectIpRequest(withField('capsule-protocol', value), config);
    assert.ok(v.ok, String(value));
    assert.equal(v.request.capsuleProtocol, false);
  }
  assert.equal(capsuleProtocolOf([['capsule-protocol', '?1;foo=bar']]), true, 'parameters ignored');
  assert.equal(
    capsuleProtocolOf([
      ['capsule-protocol', '?1'],
      ['capsule-protocol', '?1'],
    ]),
    false,
    'two lines = absent',
  );
});

test('§10.1 item 7: default path plus operator paths (/vpn); empty variables; unknown headers ignored', () => {
  assert.ok(validateConnectIpRequest(withField(':path', '/vpn'), config).ok);
  assert.ok(validateConnectIpRequest(withField(':path', '/.well-known/masque/ip///'), config).ok);
  const quiche = [
    ...withField('capsule-protocol', undefined),
    ['connect-ip-version', '3'],
    ['user-agent', 'quiche'],
    ['authorization', 'Concealed x'],
  ] as HeaderList;
  assert.ok(validateConnectIpRequest(quiche, config).ok);
  const scoped = validateConnectIpRequest(
    withField(':path', '/.well-known/masque/ip/2001%3Adb8%3A%3A%2F32/6/'),
    config,
  );
  assert.ok(scoped.ok);
  assert.deepEqual(scoped.request.target.kind, 'prefix');
  assert.equal(scoped.request.ipproto, 6);
  const dns = validateConnectIpRequest(
    withField(':path', '/.well-known/masque/ip/Example.COM/*/'),
    config,
  );
  assert.ok(dns.ok);
  assert.deepEqual(dns.request.target, { kind: 'dns', name: 'example.com' });
});

test('status 404: unknown path', () => {
  rejected(withField(':path', '/nope'), 404, undefined);
});

test('status 405: method other than CONNECT (connect-ip-go)', () => {
  rejected(withField(':protocol', undefined, withField(':method', 'GET')), 405, undefined);
});

test('§10.2 unsupported :protocol with Extended CONNECT enabled → 501', () => {
  rejected(withField(':protocol', 'connect-udp'), 501, undefined);
  rejected(withField(':protocol', 'cf-connect-ip'), 501, undefined);
  assert.ok(
    validateConnectIpRequest(withField(':protocol', 'cf-connect-ip'), {
      ...config,
      acceptCfConnectIp: true,
    }).ok,
  );
});

test('§10.2 malformed requests → 400 then stream error H3_MESSAGE_ERROR', () => {
  const cases: Array<[string, HeaderList]> = [
    ['uppercase field name', [...section37, ['User-Agent', 'x']]],
    [
      'pseudo-header after a regular field',
      [...section37.filter(([n]) => n !== ':path'), [':path', '/vpn']],
    ],
    ['duplicate pseudo-header', [[':method', 'CONNECT'], ...section37]],
    ['unknown pseudo-header', withField(':foo', 'x')],
    ['response-only pseudo-header', withField(':status', '200')],
    ['missing :scheme', withField(':scheme', undefined)],
    ['missing :path', withField(':path', undefined)],
    ['missing :authority', withField(':authority', undefined)],
    ['missing :protocol', withField(':protocol', undefined)],
    [':protocol without CONNECT', withField(':method', 'POST')],
    ['connection-specific field', [...section37, ['connection', 'keep-alive']]],
    ['transfer-encoding', [...section37, ['transfer-encoding', 'chunked']]],
    ['te other than trailers', [...section37, ['te', 'gzip']]],
    ['content-length with the capsule protocol', [...section37, ['content-length', '0']]],
    ['host ≠ :authority', [...section37, ['host', 'evil.example']]],
    ['invalid target', withField(':path', '/.well-known/masque/ip/10.0.0.1%2F8/*/')],
    ['invalid target syntax', withField(':path', '/.well-known/masque/ip/-bad-/*/')],
    ['invalid ipproto', withField(':path', '/.well-known/masque/ip/*/256/')],
    ['non-decimal ipproto', withField(':path', '/.well-known/masque/ip/*/tcp/')],
  ];
  for (const [name, headers] of cases) {
    const reason = rejected(headers, 400, H3_MESSAGE_ERROR);
    assert.ok(reason.length > 0, name);
  }
  // host equal to :authority modulo case and :443 is fine.
  assert.ok(validateConnectIpRequest([...section37, ['host', 'PROXY.example.org:443']], config).ok);
  assert.ok(validateConnectIpRequest([...section37, ['te', 'trailers']], config).ok);
});

test('§10.2 Extended CONNECT while disabled → malformed (H3_MESSAGE_ERROR)', () => {
  rejected(section37, 400, H3_MESSAGE_ERROR, { ...config, extendedConnectEnabled: false });
});

test('retry-after on a refusal: delta-seconds read, anything else ignored', () => {
  const refusal = (v?: string) => {
    const headers: [string, string][] = [[':status', '503']];
    if (v !== undefined) headers.push(['retry-after', v]);
    return classifyResponse(headers);
  };
  assert.deepEqual(refusal('5'), {
    kind: 'failure',
    status: 503,
    proxyStatus: undefined,
    retryAfterSeconds: 5,
  });
  assert.deepEqual(refusal(), {
    kind: 'failure',
    status: 503,
    proxyStatus: undefined,
    retryAfterSeconds: undefined,
  });
  assert.equal(retryAfterOf([['retry-after', ' 120 ']]), 120);
  for (const bad of ['Wed, 21 Oct 2026 07:28:00 GMT', '-1', '1.5', '', '9999999', '86401'])
    assert.equal(retryAfterOf([['retry-after', bad]]), undefined, bad);
});

test('§10.1 item 6 / §10.2: response classification', () => {
  assert.deepEqual(classifyResponse(connectIpSuccessResponse()), {
    kind: 'success',
    status: 200,
    capsuleProtocol: true,
  });
  assert.deepEqual(
    classifyResponse([[':status', '200']]),
    { kind: 'success', status: 200, capsuleProtocol: false },
    'quiche omits capsule-protocol',
  );
  assert.equal(classifyResponse([[':status', '202']]).kind, 'success');
  assert.deepEqual(classifyResponse([[':status', '100']]), { kind: 'interim', status: 100 });
  assert.equal(
    classifyResponse([
      [':status', '302'],
      ['location', '/x'],
    ]).kind,
    'failure',
    '3xx is not followed',
  );
  assert.equal(
    classifyResponse([
      [':status', '403'],
      ['proxy-status', 'x'],
    ]).kind,
    'failure',
  );
  for (const h of [
    [[':status', '204']],
    [[':status', '205']],
    [[':status', '206']],
    [[':status', '101']],
    [['server', 'x']],
    [[':status', '2000']],
    [
      [':status', '200'],
      ['content-length', '0'],
    ],
    [
      [':status', '200'],
      [':status', '200'],
    ],
    [
      [':status', '200'],
      [':path', '/'],
    ],
  ] as HeaderList[])
    assert.equal(classifyResponse(h).kind, 'malformed', JSON.stringify(h));
});

test('fuzz-ish: random header lists never throw from validation or classification', () => {
  const names = fc.constantFrom(
    ':method',
    ':scheme',
    ':authority',
    ':path',
    ':protocol',
    ':status',
    'host',
    'capsule-protocol',
    'te',
    'content-length',
    'X',
    'a',
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.oneof(names, fc.string()), fc.string()), { maxLength: 10 }),
      (headers) => {
        const v = validateConnectIpRequest(headers, config);
        if (!v.ok) assert.ok([400, 404, 405, 501].includes(v.status));
        classifyResponse(headers);
      },
    ),
    { numRuns: 2000 },
  );
});
