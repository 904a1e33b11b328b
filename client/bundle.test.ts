import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BundleError, CertificateError, ResolveError } from './errors.js';
import {
  parseBundle,
  parseEndpoint,
  checkTemplate,
  resolveEndpoints,
  uriTemplate,
} from './bundle.js';
import { bundleText, makePki, type Pki } from './pki-fixture.js';

let pki: Pki;
before(() => {
  pki = makePki();
});

function rejects(text: string, pattern: RegExp, type: typeof BundleError = BundleError): void {
  assert.throws(
    () => parseBundle(text, 'b.toml'),
    (err: unknown) => {
      assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
      assert.match((err as Error).message, pattern);
      assert.ok(!(err as Error).message.includes('\n'), 'one line');
      return true;
    },
  );
}

describe('parseBundle', () => {
  it('accepts a good bundle and fills defaults', () => {
    const b = parseBundle(bundleText(pki), 'b.toml');
    assert.deepEqual(b.endpoints, [{ host: '127.0.0.1', port: 4433 }]);
    assert.equal(b.serverName, 'vpn.test');
    assert.equal(b.templatePath, '/.well-known/masque/ip/{target}/{ipproto}/');
    assert.equal(b.mtu, 1280);
    assert.deepEqual(b.fec, {
      enabled: false,
      blockSize: 10,
      redundancyPercent: 20,
      flushMs: 5,
      interleave: 1,
    });
    assert.match(b.subject, /CN=alice/);
    assert.equal(b.identity, 'alice/laptop');
    assert.deepEqual(b.ignoredKeys, []);
    assert.equal(
      uriTemplate(b.serverName, b.endpoints[0].port, b.templatePath),
      'https://vpn.test:4433/.well-known/masque/ip/{target}/{ipproto}/',
    );
  });

  it('names a missing key', () => {
    rejects(bundleText(pki, { omit: ['cert'] }), /^b\.toml: missing key tls\.cert$/);
    rejects(bundleText(pki, { omit: ['endpoints'] }), /missing key server\.endpoints$/);
    rejects(bundleText(pki, { omit: ['server_name'] }), /missing key server\.server_name$/);
    rejects(bundleText(pki, { omit: ['version'] }), /missing key version$/);
    rejects(
      bundleText(pki, { omit: ['key'] }),
      /missing key tls\.key \(a bundle exported from a CSR needs --key FILE\)$/,
    );
    rejects('version = 1\n[server]\nendpoints = ["a:1"]\nserver_name = "a"\n', /missing key tls$/);
  });

  it('rejects unknown top-level keys and tables by name', () => {
    rejects(bundleText(pki, { top: 'colour = "blue"\n' }), /^b\.toml: unknown key colour$/);
    rejects(bundleText(pki) + '\n[extra]\na = 1\n', /unknown key extra$/);
  });

  it('ignores, but names, unknown keys inside known tables (docs/bundle.md forward compatibility)', () => {
    const b = parseBundle(bundleText(pki, { extra: 'ocsp = "later"\n' }), 'b.toml');
    assert.deepEqual(b.ignoredKeys, ['tls.ocsp']);
  });

  it('rejects a format version it does not know', () => {
    rejects(
      bundleText(pki, { version: 2 }),
      /bundle format version 2 is not supported \(this client reads 1\)/,
    );
  });

  it('reports bad TOML and wrong types in one line', () => {
    rejects('[server\n', /not valid TOML/);
    rejects(
      bundleText(pki).replace('mtu = 1280', 'mtu = "big"'),
      /tunnel\.mtu must be number \(got string\)/,
    );
  });

  it('reads the FEC flush timer and interleaving, in range', () => {
    const fec = (lines: string) =>
      bundleText(pki).replace('redundancy_percent = 20\n', `redundancy_percent = 20\n${lines}`);
    const b = parseBundle(fec('flush_ms = 40\ninterleave = 8\n'), 'b');
    assert.equal(b.fec.flushMs, 40);
    assert.equal(b.fec.interleave, 8);
    rejects(fec('interleave = 17\n'), /fec\.interleave/);
    rejects(fec('flush_ms = 1001\n'), /fec\.flush_ms/);
  });

  it('rejects an MTU outside 1280-9000', () => {
    rejects(bundleText(pki, { mtu: 1279 }), /tunnel\.mtu 1279 is out of range \(1280-9000\)/);
    rejects(bundleText(pki, { mtu: 9001 }), /out of range/);
    assert.equal(parseBundle(bundleText(pki, { mtu: 9000 }), 'b').mtu, 9000);
  });

  it('rejects an unreadable certificate or key', () => {
    rejects(
      bundleText(pki, { cert: 'hello' }),
      /tls\.cert is not a PEM certificate/,
      CertificateError,
    );
    const broken = pki.client.certPem.replace(/\n[A-Za-z0-9+/]{10}/, '\nAAAAAAAAAA');
    rejects(
      bundleText(pki, { cert: broken }),
      /tls\.cert is not a readable certificate/,
      CertificateError,
    );
    rejects(
      bundleText(pki, { key: 'nope' }),
      /tls\.key is not a readable private key/,
      CertificateError,
    );
    rejects(bundleText(pki, { ca: 'x' }), /tls\.ca is not a PEM certificate/, CertificateError);
  });

  it('detects a certificate/key mismatch', () => {
    rejects(
      bundleText(pki, { key: pki.strayKeyPem }),
      /certificate\/key mismatch/,
      CertificateError,
    );
  });

  it('detects expired and not-yet-valid certificates', () => {
    rejects(
      bundleText(pki, { cert: pki.expired.certPem, key: pki.expired.keyPem }),
      /client certificate \(tls\.cert\) expired on \d{4}-\d\d-\d\dT/,
      CertificateError,
    );
    rejects(
      bundleText(pki, { cert: pki.notYetValid.certPem, key: pki.notYetValid.keyPem }),
      /is not valid before/,
      CertificateError,
    );
  });

  it('detects a client certificate the CA did not sign', () => {
    rejects(
      bundleText(pki, { cert: pki.foreign.certPem, key: pki.foreign.keyPem }),
      /tls\.cert was not signed by tls\.ca \(certificate issuer: CN=someone else CA\)/,
      CertificateError,
    );
  });

  it('rejects a bad endpoint and a bad template', () => {
    rejects(
      bundleText(pki, { endpoint: 'vpn.test' }),
      /server\.endpoints "vpn\.test" is not host:port/,
    );
    rejects(bundleText(pki, { endpoint: 'vpn.test:0' }), /invalid port/);
    rejects(bundleText(pki, { template: 'vpn' }), /server\.template_path "vpn" must start with \//);
    rejects(bundleText(pki, { template: '/ip/{+target}/' }), /operator/);
  });

  it('accepts IPv6 endpoints and absolute templates', () => {
    assert.deepEqual(parseEndpoint('[2001:db8::1]:443', 'k', 's'), {
      host: '2001:db8::1',
      port: 443,
    });
    assert.equal(checkTemplate('https://vpn.test:4433/vpn', 'k', 's'), 'https://vpn.test:4433/vpn');
    assert.throws(() => checkTemplate('http://x/vpn', 'k', 's'), BundleError);
  });

  it('takes the key of a CSR bundle from the caller', () => {
    const text = bundleText(pki, { omit: ['key'] });
    const b = parseBundle(text, 'b', { keyPem: pki.client.keyPem, keySource: 'alice.key' });
    assert.equal(b.keyPem, pki.client.keyPem);
    assert.throws(
      () => parseBundle(text, 'b', { keyPem: pki.strayKeyPem, keySource: 'alice.key' }),
      /b: alice\.key does not belong to tls\.cert/,
    );
  });

  it('builds templates per endpoint and keeps absolute ones as written', () => {
    assert.equal(uriTemplate('vpn.test', 443, '/vpn'), 'https://vpn.test:443/vpn');
    assert.equal(uriTemplate('2001:db8::1', 4433, '/vpn'), 'https://[2001:db8::1]:4433/vpn');
    assert.equal(uriTemplate('vpn.test', 4433, 'https://VPN.test/x'), 'https://VPN.test/x');
  });
});

describe('resolveEndpoints', () => {
  it('passes literals through and resolves names', async () => {
    const r = await resolveEndpoints(
      [
        { host: '10.0.0.1', port: 1 },
        { host: 'vpn.test', port: 2 },
      ],
      { lookup: async () => ['192.0.2.7', '2001:db8::7'] },
    );
    assert.deepEqual(r[0].addresses, ['10.0.0.1']);
    assert.deepEqual(r[1].addresses, ['192.0.2.7', '2001:db8::7']);
  });

  it('fails with a ResolveError for a name that does not resolve', async () => {
    await assert.rejects(
      resolveEndpoints([{ host: 'nowhere.invalid', port: 1 }], {
        lookup: async () => {
          throw Object.assign(new Error('x'), { code: 'ENOTFOUND' });
        },
      }),
      (err: unknown) =>
        err instanceof ResolveError &&
        /nowhere\.invalid cannot be resolved \(ENOTFOUND\)/.test(err.message),
    );
  });

  it('times out a lookup that hangs', async () => {
    await assert.rejects(
      resolveEndpoints([{ host: 'slow.test', port: 1 }], {
        timeoutMs: 20,
        lookup: () => new Promise(() => {}),
      }),
      /slow\.test did not resolve within 20 ms/,
    );
  });
});
