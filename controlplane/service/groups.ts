// Groups and Policies: who belongs together, and what each may reach. Every change is pushed to the
// live sessions it affects before the call returns.
import { GroupsService, PoliciesService, type Group } from '../../proto/gen/masque/v1/policy.js';
import { PolicyAction } from '../../proto/gen/masque/v1/common.js';
import type { GroupRecord, RuleAction } from '../store/store.js';
import { actionMessage, ruleMessage, type ControlPlane } from './control.js';
import type { Implementation } from './rpc.js';
import { invalidArgument, notFound } from './errors.js';
import * as valid from './validate.js';
import { orderRules } from './policy.js';

function groupMessage(g: GroupRecord): Group {
  return {
    name: g.name,
    description: g.description,
    members: g.members,
    createdAtMs: g.createdAt,
  };
}

function actionOf(a: PolicyAction): RuleAction {
  if (a === PolicyAction.POLICY_ACTION_ALLOW) return 'allow';
  if (a === PolicyAction.POLICY_ACTION_DENY) return 'deny';
  throw invalidArgument('give an action: allow or deny');
}

export function groupsService(cp: ControlPlane): Implementation<typeof GroupsService> {
  const missing = (name: string) =>
    notFound(`no group "${name}"; list groups with \`vpnctl group list\``);
  return {
    async createGroup(req) {
      const name = valid.groupName(req.name);
      return groupMessage(await cp.store.createGroup(name, req.description, cp.now()));
    },
    async getGroup(req) {
      const g = await cp.store.getGroup(req.name);
      if (g === undefined) throw missing(req.name);
      return groupMessage(g);
    },
    async listGroups() {
      return { groups: (await cp.store.listGroups()).map(groupMessage) };
    },
    async deleteGroup(req) {
      if (!(await cp.store.deleteGroup(req.name))) throw missing(req.name);
      await cp.pushPolicy();
      return {};
    },
    async addMember(req) {
      const g = await cp.store.addMember(req.group, req.user);
      await cp.pushPolicy();
      return groupMessage(g);
    },
    async removeMember(req) {
      const g = await cp.store.removeMember(req.group, req.user);
      await cp.pushPolicy();
      return groupMessage(g);
    },
  };
}

export function policiesService(cp: ControlPlane): Implementation<typeof PoliciesService> {
  return {
    async addRule(req) {
      const group = valid.ruleGroup(req.group);
      const action = actionOf(req.action);
      const prefix = valid.prefix(req.prefix);
      const protocol = valid.protocol(req.protocol);
      const [portFrom, portTo] = valid.portRange(protocol, req.portFrom, req.portTo);
      if (req.description.length > 200) throw invalidArgument('description longer than 200');
      const rule = await cp.store.addRule({
        group,
        action,
        prefix,
        protocol,
        portFrom,
        portTo,
        priority: req.priority,
        description: req.description,
      });
      await cp.pushPolicy();
      return ruleMessage(rule);
    },
    async removeRule(req) {
      if (!(await cp.store.removeRule(req.id))) {
        throw notFound(`no rule with id ${req.id}; list rules with \`vpnctl policy list\``);
      }
      await cp.pushPolicy();
      return {};
    },
    async listRules(req) {
      if (
        req.group !== '' &&
        req.group !== '*' &&
        (await cp.store.getGroup(req.group)) === undefined
      ) {
        throw notFound(`no group "${req.group}"; list groups with \`vpnctl group list\``);
      }
      const rules = await cp.store.listRules(req.group === '' ? undefined : req.group);
      return {
        rules: orderRules(rules).map(ruleMessage),
        defaultAction: actionMessage(await cp.defaultAction()),
      };
    },
    async getDefaultAction() {
      return { action: actionMessage(await cp.defaultAction()) };
    },
    async setDefaultAction(req) {
      await cp.setDefaultAction(actionOf(req.action));
      await cp.pushPolicy();
      return { action: actionMessage(await cp.defaultAction()) };
    },
    async getEffectivePolicy(req) {
      const user = await cp.requireUser(req.user);
      const p = await cp.effectivePolicy(user.id);
      return {
        rules: p.rules.map(ruleMessage),
        defaultAction: actionMessage(p.defaultAction),
        routes: p.routes,
      };
    },
  };
}
