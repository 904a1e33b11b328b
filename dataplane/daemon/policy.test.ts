import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspectPacket, PacketInfo } from '../masque/ip.js';
import { compilePolicy, PolicyError, type PolicyRuleInput } from './policy.js';

/** A minimal IPv4 packet with a UDP or TCP header to `dst:port`. */
function v4(dst: string, protocol: number, port: number): Uint8Array {
  const p = new Uint8Array(28);
  p[0] = 0x45;
  p[2] = 0;
  p[3] = 28;
  p[8] = 64;
  p[9] = protocol;
  p.set([10, 77, 0, 2], 12);
  p.set(dst.split('.').map(Number), 16);
  p[22] = port >> 8;
  p[23] = port & 0xff;
  return p;
}

function decide(rules: PolicyRuleInput[], defaultAllow: boolean, pkt: Uint8Array): boolean {
  const info = new PacketInfo();
  assert.ok(inspectPacket(pkt, 0, pkt.length, info));
  return compilePolicy(rules, defaultAllow)(pkt, info);
}

const rule = (over: Partial<PolicyRuleInput>): PolicyRuleInput => ({
  action: 'allow',
  prefix: '0.0.0.0/0',
  protocol: 0,
  portFrom: 0,
  portTo: 0,
  priority: 100,
  ...over,
});

test('default applies when nothing matches', () => {
  assert.equal(decide([], false, v4('10.0.0.1', 17, 53)), false);
  assert.equal(decide([], true, v4('10.0.0.1', 17, 53)), true);
  assert.equal(decide([rule({ prefix: '192.168.0.0/16' })], false, v4('10.0.0.1', 17, 53)), false);
});

test('lower priority number wins; deny wins a tie', () => {
  const rules = [
    rule({ action: 'deny', prefix: '10.0.0.0/8', priority: 20 }),
    rule({ action: 'allow', prefix: '10.1.0.0/16', priority: 10 }),
  ];
  assert.equal(decide(rules, false, v4('10.1.2.3', 6, 80)), true);
  assert.equal(decide(rules, false, v4('10.2.2.3', 6, 80)), false);
  const tie = [
    rule({ prefix: '10.0.0.0/8', priority: 5 }),
    rule({ action: 'deny', prefix: '10.0.0.0/8', priority: 5 }),
  ];
  assert.equal(decide(tie, true, v4('10.9.9.9', 6, 80)), false);
});

test('protocol and port ranges narrow a rule; port rules never match ICMP', () => {
  const rules = [rule({ prefix: '10.0.0.0/8', protocol: 6, portFrom: 443, portTo: 443 })];
  assert.equal(decide(rules, false, v4('10.0.0.1', 6, 443)), true);
  assert.equal(decide(rules, false, v4('10.0.0.1', 6, 444)), false);
  assert.equal(decide(rules, false, v4('10.0.0.1', 17, 443)), false);
  const anyProto = [rule({ prefix: '10.0.0.0/8', portFrom: 1000, portTo: 2000 })];
  assert.equal(decide(anyProto, false, v4('10.0.0.1', 17, 1500)), true);
  assert.equal(decide(anyProto, false, v4('10.0.0.1', 1, 1500)), false);
});

test('IPv4 rules do not match IPv6 packets', () => {
  const p = new Uint8Array(48);
  p[0] = 0x60;
  p[5] = 8;
  p[6] = 17;
  p[7] = 64;
  p[24] = 0xfd;
  assert.equal(decide([rule({ prefix: '0.0.0.0/0' })], false, p), false);
  assert.equal(decide([rule({ prefix: '::/0' })], false, p), true);
});

test('invalid rules are refused at compile time', () => {
  assert.throws(() => compilePolicy([rule({ prefix: '10.0.0.1/8' })], false), PolicyError);
  assert.throws(() => compilePolicy([rule({ prefix: 'nope' })], false), PolicyError);
  assert.throws(() => compilePolicy([rule({ portFrom: 9, portTo: 1 })], false), PolicyError);
});
