import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_PATH_TEMPLATE,
  TemplateError,
  expandTemplate,
  matchTemplate,
  parseTemplate,
} from './template.js';

test('§4.1 default template expands to /.well-known/masque/ip/*/*/ for a full tunnel', () => {
  const t = parseTemplate('https://proxy.example.org/.well-known/masque/ip/{target}/{ipproto}/');
  assert.equal(t.authority, 'proxy.example.org');
  assert.equal(expandTemplate(t, {}), '/.well-known/masque/ip/*/*/');
  assert.equal(
    expandTemplate(t, { target: '', ipproto: '' }),
    '/.well-known/masque/ip/*/*/',
    'empty → *',
  );
});

test('§4.1 scoped expansion percent-encodes IPv6 colons and the prefix slash', () => {
  const t = parseTemplate('https://proxy.example.org:4443' + DEFAULT_PATH_TEMPLATE);
  assert.equal(t.authority, 'proxy.example.org:4443');
  assert.equal(
    expandTemplate(t, { target: '2001:db8::42/128', ipproto: '17' }),
    '/.well-known/masque/ip/2001%3Adb8%3A%3A42%2F128/17/',
  );
  assert.equal(
    expandTemplate(t, { target: '192.0.2.0/24' }),
    '/.well-known/masque/ip/192.0.2.0%2F24/*/',
  );
});

test('query-style templates expand and match', () => {
  const t = parseTemplate('https://p.example/connect{?target,ipproto}');
  assert.equal(
    expandTemplate(t, { target: 'example.com' }),
    '/connect?target=example.com&ipproto=*',
  );
  assert.deepEqual(matchTemplate(t, '/connect?ipproto=6&target=10.0.0.0%2F8'), {
    target: '10.0.0.0/8',
    ipproto: '6',
  });
  assert.deepEqual(matchTemplate(t, '/connect'), { target: '*', ipproto: '*' }, 'absent → *');
  assert.equal(matchTemplate(t, '/connectx'), undefined);
});

test('matching: default template, empty variables as * (connect-ip-go intermediate client), literal /vpn', () => {
  const d = parseTemplate(DEFAULT_PATH_TEMPLATE);
  assert.deepEqual(matchTemplate(d, '/.well-known/masque/ip/*/*/'), { target: '*', ipproto: '*' });
  assert.deepEqual(matchTemplate(d, '/.well-known/masque/ip///'), { target: '*', ipproto: '*' });
  assert.deepEqual(matchTemplate(d, '/.well-known/masque/ip/2001%3Adb8%3A%3A42/58/'), {
    target: '2001:db8::42',
    ipproto: '58',
  });
  assert.equal(matchTemplate(d, '/.well-known/masque/ip/*/*'), undefined);
  assert.equal(matchTemplate(d, '/.well-known/masque/ip/*/*/extra'), undefined);
  assert.equal(matchTemplate(d, '/.well-known/masque/ip/a/b/c/'), undefined);
  assert.equal(
    matchTemplate(d, '/.well-known/masque/ip/%zz/*/'),
    undefined,
    'bad percent-encoding',
  );
  const vpn = parseTemplate('https://proxy:4443/vpn');
  assert.deepEqual(matchTemplate(vpn, '/vpn'), {});
  assert.equal(matchTemplate(vpn, '/vpn/'), undefined);
  assert.equal(matchTemplate(vpn, '/'), undefined);
});

test('templates with forbidden operators, bad characters or variables outside the path are refused', () => {
  for (const bad of [
    'https://p/{+target}',
    'https://p/{#target}',
    'https://p/{.target}',
    'https://p/{/target}',
    'https://p/{;target}',
    'https://{target}/x',
    'https://p/x y',
    'https://p/{target',
    'https:///x',
    'vpn',
    'https://p/{target}{ipproto}',
    'https://p/{a,b}',
  ])
    assert.throws(() => parseTemplate(bad), TemplateError, bad);
});
