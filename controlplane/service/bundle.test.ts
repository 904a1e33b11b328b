import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parse as parseToml } from 'smol-toml';
import { bundleFromUri, bundleToml, bundleUri, type BundleFields } from './bundle.js';

const FIELDS: BundleFields = {
  user: 'alice',
  device: 'default',
  endpoints: ['10.200.0.1:4433', '[2001:db8::1]:4433'],
  serverName: 'vpn.test',
  templatePath: '/.well-known/masque/ip/{target}/{ipproto}/',
  mtu: 1280,
  ipv4: '10.77.0.2',
  ipv6: 'fd77::2',
  fec: { enabled: true, blockSize: 10, redundancyPercent: 20 },
  caPem: '-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n',
  certPem: '-----BEGIN CERTIFICATE-----\nREVG\n-----END CERTIFICATE-----\n',
  keyPem: '-----BEGIN PRIVATE KEY-----\nR0hJ\n-----END PRIVATE KEY-----\n',
};

test('bundle TOML has the documented keys (docs/bundle.md)', () => {
  const doc = parseToml(bundleToml(FIELDS)) as Record<string, Record<string, unknown>>;
  assert.equal(doc.version as unknown, 1);
  assert.deepEqual(
    { ...doc.server },
    {
      endpoints: FIELDS.endpoints,
      server_name: 'vpn.test',
      template_path: FIELDS.templatePath,
    },
  );
  assert.deepEqual({ ...doc.tunnel }, { mtu: 1280, ipv4: '10.77.0.2', ipv6: 'fd77::2' });
  assert.deepEqual({ ...doc.fec }, { enabled: true, block_size: 10, redundancy_percent: 20 });
  assert.deepEqual({ ...doc.tls }, { ca: FIELDS.caPem, cert: FIELDS.certPem, key: FIELDS.keyPem });
});

test('without a key (CSR export) and without IPv6 the keys are absent', () => {
  const doc = parseToml(bundleToml({ ...FIELDS, keyPem: undefined, ipv6: undefined })) as Record<
    string,
    Record<string, unknown>
  >;
  assert.equal('key' in doc.tls, false);
  assert.equal('ipv6' in doc.tunnel, false);
});

test('masque:// URI round-trips any bundle text', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 2000 }), fc.domain(), (text, host) => {
      assert.equal(bundleFromUri(bundleUri(host, text)), text);
    }),
    { numRuns: 200 },
  );
  const uri = bundleUri('vpn.test', bundleToml(FIELDS));
  assert.match(uri, /^masque:\/\/vpn\.test\/\?v=1&b=[A-Za-z0-9_-]+$/);
});

test('bad URIs are rejected with a reason', () => {
  assert.throws(() => bundleFromUri('https://x/?v=1&b=AA'), /not a masque:\/\/ URI/);
  assert.throws(() => bundleFromUri('masque://x/?v=2&b=AA'), /unsupported bundle URI version 2/);
  assert.throws(() => bundleFromUri('masque://x/?v=1'), /without payload/);
  assert.throws(() => bundleFromUri('not a uri'), /not a URI/);
});
