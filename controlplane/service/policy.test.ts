import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { RuleRecord } from '../store/store.js';
import { effectivePolicy, orderRules } from './policy.js';

function rule(
  id: number,
  action: 'allow' | 'deny',
  priority: number,
  prefix = '10.0.0.0/8',
): RuleRecord {
  return {
    id,
    group: '*',
    action,
    prefix,
    protocol: 0,
    portFrom: 0,
    portTo: 0,
    priority,
    description: '',
  };
}

test('order: priority ascending, deny before allow at equal priority, then id', () => {
  const ordered = orderRules([
    rule(1, 'allow', 10),
    rule(2, 'deny', 10),
    rule(3, 'allow', 5),
    rule(4, 'deny', 20),
  ]);
  assert.deepEqual(
    ordered.map((r) => r.id),
    [3, 2, 1, 4],
  );
});

test('order is a total order: any permutation sorts the same', () => {
  const arb = fc.uniqueArray(
    fc.record({ id: fc.nat(1000), deny: fc.boolean(), priority: fc.integer({ min: -5, max: 5 }) }),
    { selector: (r) => r.id, maxLength: 30 },
  );
  fc.assert(
    fc.property(arb, (specs) => {
      const rules = specs.map((s) => rule(s.id, s.deny ? 'deny' : 'allow', s.priority));
      const a = orderRules(rules).map((r) => r.id);
      const b = orderRules([...rules].reverse()).map((r) => r.id);
      assert.deepEqual(a, b);
      for (let i = 1; i < a.length; i++) {
        const p = rules.find((r) => r.id === a[i - 1]) as RuleRecord;
        const q = rules.find((r) => r.id === a[i]) as RuleRecord;
        assert.ok(p.priority <= q.priority);
      }
    }),
  );
});

test('routes: allow prefixes of served families; default routes only when the default allows', () => {
  const rules = [
    rule(1, 'allow', 1, '10.1.0.0/16'),
    rule(2, 'deny', 1, '10.2.0.0/16'),
    rule(3, 'allow', 2, 'fd00::/8'),
    rule(4, 'allow', 3, '10.1.0.0/16'),
  ];
  assert.deepEqual(effectivePolicy(rules, 'deny', { ipv4: true, ipv6: true }).routes, [
    '10.1.0.0/16',
    'fd00::/8',
  ]);
  assert.deepEqual(effectivePolicy(rules, 'deny', { ipv4: true, ipv6: false }).routes, [
    '10.1.0.0/16',
  ]);
  assert.deepEqual(effectivePolicy(rules, 'allow', { ipv4: true, ipv6: true }).routes, [
    '0.0.0.0/0',
    '::/0',
    '10.1.0.0/16',
    'fd00::/8',
  ]);
});
