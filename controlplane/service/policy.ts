// Effective policy of a user: the rules that apply to it in evaluation order, the default action,
// and the routes its devices are told about. Pure: the store supplies the rules.
import type { RuleAction, RuleRecord } from '../store/store.js';

export interface EffectivePolicy {
  rules: RuleRecord[];
  defaultAction: RuleAction;
  routes: string[];
}

/**
 * Evaluation order: ascending priority; at equal priority deny before allow (a deny never loses a
 * tie); then creation order. The data plane takes the first match.
 */
export function orderRules(rules: readonly RuleRecord[]): RuleRecord[] {
  return [...rules].sort(
    (a, b) =>
      a.priority - b.priority ||
      (a.action === b.action ? 0 : a.action === 'deny' ? -1 : 1) ||
      a.id - b.id,
  );
}

/**
 * Routes are the prefixes of the allow rules (what the user may reach), plus the default routes
 * when the default action is allow, for each family the pools serve. A deny rule does not remove a
 * route: routes steer traffic into the tunnel, the rules decide per packet.
 */
export function effectivePolicy(
  rules: readonly RuleRecord[],
  defaultAction: RuleAction,
  families: { ipv4: boolean; ipv6: boolean },
): EffectivePolicy {
  const ordered = orderRules(rules);
  const routes = new Set<string>();
  if (defaultAction === 'allow') {
    if (families.ipv4) routes.add('0.0.0.0/0');
    if (families.ipv6) routes.add('::/0');
  }
  for (const r of ordered) {
    if (r.action !== 'allow') continue;
    const v6 = r.prefix.includes(':');
    if ((v6 && families.ipv6) || (!v6 && families.ipv4)) routes.add(r.prefix);
  }
  return { rules: ordered, defaultAction, routes: [...routes] };
}
