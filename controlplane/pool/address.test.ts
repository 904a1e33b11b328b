import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import {
  addressOffset,
  canonicalAddress,
  cidrContains,
  compareAddresses,
  formatAddress,
  InvalidAddressError,
  InvalidCidrError,
  parseAddress,
  parseCidr,
} from './address.js';

test('IPv4 parses and formats', () => {
  assert.deepEqual(parseAddress('10.77.0.2'), { family: 4, value: 0x0a4d0002n });
  assert.deepEqual(parseAddress('0.0.0.0'), { family: 4, value: 0n });
  assert.equal(formatAddress(4, 0xffffffffn), '255.255.255.255');
  assert.equal(formatAddress(4, 0x0a4d0002n), '10.77.0.2');
});

test('IPv6 formats canonically (RFC 5952)', () => {
  const cases: [string, string][] = [
    ['fd77::2', 'fd77::2'],
    ['FD77:0:0:0:0:0:0:2', 'fd77::2'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of two equal runs
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['0:0:0:0:0:ffff:192.0.2.1', '::ffff:c000:201'],
    ['2001:db8::0:0:0:1', '2001:db8::1'],
  ];
  for (const [input, canonical] of cases) assert.equal(canonicalAddress(input), canonical, input);
});

test('malformed addresses throw InvalidAddressError only', () => {
  const bad = [
    '',
    '1.2.3',
    '1.2.3.4.5',
    '256.0.0.1',
    '01.2.3.4',
    '1.2.3.-4',
    '1.2.3.4 ',
    'a.b.c.d',
    '1::2::3',
    ':::',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8::',
    '12345::',
    'fe80::1%eth0',
    ':1::',
    'g::',
    '1.2.3.4::',
  ];
  for (const input of bad) {
    assert.throws(() => parseAddress(input), InvalidAddressError, input);
  }
  fc.assert(
    fc.property(fc.string({ maxLength: 50 }), (s) => {
      try {
        parseAddress(s);
        assert.notEqual(isIP(s), 0, `accepted ${JSON.stringify(s)}`);
      } catch (err) {
        assert.ok(err instanceof InvalidAddressError);
      }
    }),
  );
});

test('IPv6 text round-trips and agrees with the WHATWG serializer', () => {
  const word = fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
  fc.assert(
    fc.property(fc.array(word, { minLength: 8, maxLength: 8 }), (words) => {
      const value = words.reduce((acc, w) => (acc << 16n) | BigInt(w), 0n);
      const text = formatAddress(6, value);
      assert.deepEqual(parseAddress(text), { family: 6, value });
      // WHATWG's IPv6 serializer implements the same compression rule; mapped IPv4 stays hex there.
      assert.equal(new URL(`http://[${text}]/`).hostname, `[${text}]`);
      const longForm = words.map((w) => w.toString(16).padStart(4, '0')).join(':');
      assert.equal(canonicalAddress(longForm.toUpperCase()), text);
    }),
  );
});

test('IPv4 round-trips for any value', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: 0xffffffffn }), (value) => {
      const text = formatAddress(4, value);
      assert.equal(isIP(text), 4);
      assert.deepEqual(parseAddress(text), { family: 4, value });
    }),
  );
});

test('parseCidr accepts networks and names the problem otherwise', () => {
  assert.deepEqual(parseCidr('10.77.0.0/16'), {
    family: 4,
    network: 0x0a4d0000n,
    prefixLength: 16,
    text: '10.77.0.0/16',
  });
  assert.equal(parseCidr('FD77:0::/64').text, 'fd77::/64');
  assert.equal(parseCidr('0.0.0.0/0').prefixLength, 0);
  assert.equal(parseCidr('::/0').family, 6);

  const expectError = (input: string, fragment: RegExp): void => {
    assert.throws(
      () => parseCidr(input),
      (err: unknown) =>
        err instanceof InvalidCidrError && fragment.test(err.message) && err.input === input,
      input,
    );
  };
  expectError('10.77.0.1/16', /host bits are set \(did you mean 10\.77\.0\.0\/16\?\)/);
  expectError('fd77::1/64', /host bits are set \(did you mean fd77::\/64\?\)/);
  expectError('10.77.0.0/33', /prefix length must be 0\.\.32/);
  expectError('fd77::/129', /prefix length must be 0\.\.128/);
  expectError('10.77.0.0/', /prefix length/);
  expectError('10.77.0.0/016', /prefix length/);
  expectError('10.77.0.0/-1', /prefix length/);
  expectError('10.77.0.0', /missing "\/prefix-length"/);
  expectError('10.77.0/16', /four dotted decimal octets/);
  expectError('fd77:::/64', /invalid CIDR/);
});

test('compare, offset and containment', () => {
  assert.equal(compareAddresses('10.0.0.2', '10.0.0.10'), -1);
  assert.equal(compareAddresses('fd77::a', 'fd77::a'), 0);
  assert.equal(compareAddresses('fd77::', '255.255.255.255'), 1);
  assert.equal(addressOffset('10.0.0.255', 1n), '10.0.1.0');
  assert.equal(addressOffset('fd77::1:0', -1n), 'fd77::ffff');
  assert.throws(() => addressOffset('255.255.255.255', 1n), RangeError);
  assert.throws(() => addressOffset('::', -1n), RangeError);
  const cidr = parseCidr('10.77.0.0/16');
  assert.ok(cidrContains(cidr, parseAddress('10.77.255.255').value));
  assert.ok(!cidrContains(cidr, parseAddress('10.78.0.0').value));
});
