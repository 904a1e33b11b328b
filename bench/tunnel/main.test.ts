import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseArgs } from './main.js';

test('defaults', () => {
  assert.deepEqual(parseArgs([]), {
    seconds: 5,
    workers: 2,
    peers: ['wg', 'ovpn'],
    pings: 50,
    json: false,
    gatePercent: 10,
    gateWaitSeconds: 60,
    hops: 0,
  });
});

test('flags', () => {
  assert.deepEqual(parseArgs(['--seconds', '10', '--workers', '4', '--peers', 'ovpn', '--json']), {
    seconds: 10,
    workers: 4,
    peers: ['ovpn'],
    pings: 50,
    json: true,
    gatePercent: 10,
    gateWaitSeconds: 60,
    hops: 0,
  });
  assert.deepEqual(parseArgs(['--quick']), {
    seconds: 2,
    workers: 2,
    peers: ['wg', 'ovpn'],
    pings: 20,
    json: false,
    gatePercent: 10,
    gateWaitSeconds: 10,
    hops: 0,
  });
  const gated = parseArgs(['--gate', '0', '--gate-wait', '30', '--quick']) as {
    gatePercent: number;
    gateWaitSeconds: number;
  };
  assert.equal(gated.gatePercent, 0);
  assert.equal(gated.gateWaitSeconds, 30);
  assert.equal((parseArgs(['--quick', '--seconds', '3']) as { seconds: number }).seconds, 3);
  assert.deepEqual((parseArgs(['--peers', '']) as { peers: string[] }).peers, []);
});

test('bad flags are messages, --help is empty', () => {
  assert.match(parseArgs(['--seconds', '11']) as string, /1\.\.10/);
  assert.match(parseArgs(['--seconds']) as string, /needs a value/);
  assert.match(parseArgs(['--peers', 'wg,ipsec']) as string, /unknown peer 'ipsec'/);
  assert.match(parseArgs(['--workers', '0']) as string, /workers/);
  assert.match(parseArgs(['--fast']) as string, /unknown option/);
  assert.match(parseArgs(['--gate', '-1']) as string, /--gate must be/);
  assert.match(parseArgs(['--gate-wait', '0']) as string, /--gate-wait must be/);
  assert.match(parseArgs(['--hops', 'x']) as string, /--hops must be/);
  assert.equal((parseArgs(['--hops', '100']) as { hops: number }).hops, 100);
  assert.equal(parseArgs(['--help']), '');
});
