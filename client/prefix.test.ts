import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addressToBigInt,
  bigIntToAddress,
  formatPrefix,
  parsePrefix,
  prefixContains,
  prefixToRange,
  rangeToPrefixes,
  PrefixError,
} from './prefix.js';

describe('prefix', () => {
  it('parses and canonicalises', () => {
    assert.equal(formatPrefix(parsePrefix('10.77.0.2')), '10.77.0.2/32');
    assert.equal(formatPrefix(parsePrefix('2001:DB8:0:0::1/64')), '2001:db8::1/64');
    assert.equal(formatPrefix(parsePrefix('::ffff:1.2.3.4/128')), '::ffff:102:304/128');
    assert.throws(() => parsePrefix('10.0.0.1/33'), PrefixError);
    assert.throws(() => parsePrefix('10.0.0.1/24', { network: true }), /host bits/);
    assert.throws(() => parsePrefix('nope'), PrefixError);
  });

  it('formats IPv6 per RFC 5952', () => {
    assert.equal(bigIntToAddress(0n, 6), '::');
    assert.equal(bigIntToAddress(1n, 6), '::1');
    assert.equal(bigIntToAddress(addressToBigInt('2001:db8:0:1:0:0:0:1'), 6), '2001:db8:0:1::1');
    assert.equal(bigIntToAddress(addressToBigInt('1:0:0:2:0:0:0:3'), 6), '1:0:0:2::3');
    assert.equal(bigIntToAddress(addressToBigInt('1:0:2:3:4:5:6:7'), 6), '1:0:2:3:4:5:6:7');
  });

  it('decomposes ranges into the minimal prefix cover', () => {
    const all4 = rangeToPrefixes({
      version: 4,
      start: '0.0.0.0',
      end: '255.255.255.255',
      protocol: 0,
    });
    assert.deepEqual(all4.map(formatPrefix), ['0.0.0.0/0']);
    const odd = rangeToPrefixes({ version: 4, start: '10.0.0.1', end: '10.0.0.6', protocol: 0 });
    assert.deepEqual(odd.map(formatPrefix), [
      '10.0.0.1/32',
      '10.0.0.2/31',
      '10.0.0.4/31',
      '10.0.0.6/32',
    ]);
    const all6 = rangeToPrefixes({
      version: 6,
      start: '::',
      end: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      protocol: 0,
    });
    assert.deepEqual(all6.map(formatPrefix), ['::/0']);
    assert.throws(() =>
      rangeToPrefixes({ version: 4, start: '10.0.0.2', end: '10.0.0.1', protocol: 0 }),
    );
  });

  it('covers a random IPv4 range exactly, with aligned blocks', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffff), (start, span) => {
        const end = Math.min(0xffffffff, start + span);
        const prefixes = rangeToPrefixes({
          version: 4,
          start: bigIntToAddress(BigInt(start), 4),
          end: bigIntToAddress(BigInt(end), 4),
          protocol: 0,
        });
        let next = BigInt(start);
        for (const p of prefixes) {
          const r = prefixToRange(p);
          assert.equal(addressToBigInt(r.start), next, 'contiguous, no overlap');
          next = addressToBigInt(r.end) + 1n;
        }
        assert.equal(next, BigInt(end) + 1n, 'ends exactly at the range end');
      }),
      { numRuns: 300 },
    );
  });

  it('tests containment by family and prefix', () => {
    assert.ok(prefixContains(parsePrefix('0.0.0.0/0'), '10.200.0.1'));
    assert.ok(!prefixContains(parsePrefix('0.0.0.0/1'), '192.0.2.1'));
    assert.ok(prefixContains(parsePrefix('128.0.0.0/1'), '192.0.2.1'));
    assert.ok(!prefixContains(parsePrefix('::/0'), '10.0.0.1'));
    assert.ok(prefixContains(parsePrefix('2001:db8::/32'), '2001:db8:1::5'));
  });
});
