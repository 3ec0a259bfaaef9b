// A security group and its rules: the group is the single writer of its rules, so a duplicate
// (Neutron's SecurityGroupRuleExists) is caught however many requests race. A new group gets
// Neutron's egress-any rules for IPv4 and IPv6; a project's default group also admits ingress from
// its own members (remote_group_id = itself). Rule ids of these built-in rules are derived from the
// group's id (pure: no randomness here). Only an admin deletes a default group. Whether a port
// still uses the group needs every port's view: the delete saga checks that before it sends
// DeleteSecurityGroup (not built yet).
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { cidrText, parseCidr, parseIp } from './ip.js';
import type { SecurityGroup, SecurityGroupRule } from './network.types.js';
import { fieldProblem, protocolNumber } from './network.validation.js';

export interface SecurityGroupContext {
  securityGroup: SecurityGroup | null;
  rules: SecurityGroupRule[];
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

const rule = (groupId: string, direction: string, ethertype: string, remoteGroupId = ''): SecurityGroupRule => ({
  id: `${groupId}-${direction}-${ethertype.toLowerCase()}`,
  direction, ethertype, protocol: '', portRangeMin: null, portRangeMax: null, remoteIpPrefix: '', remoteGroupId, description: '',
});

/** The rules a new group starts with (Neutron's defaults). */
export function builtInRules(group: SecurityGroup): SecurityGroupRule[] {
  return [
    rule(group.id, 'egress', 'IPv4'),
    rule(group.id, 'egress', 'IPv6'),
    ...(group.isDefault ? [rule(group.id, 'ingress', 'IPv4', group.id), rule(group.id, 'ingress', 'IPv6', group.id)] : []),
  ];
}

/** What makes two rules the same rule: ids and descriptions aside, protocols by number, prefixes canonical (/0 = any). */
function ruleKey(r: SecurityGroupRule): string {
  let prefix = '';
  if (r.remoteIpPrefix) {
    const c = parseCidr(r.remoteIpPrefix) ?? parseCidr(`${r.remoteIpPrefix}/${parseIp(r.remoteIpPrefix)?.version === 6 ? 128 : 32}`);
    prefix = c && c.prefix > 0 ? cidrText({ ...c, network: c.network }) : '';
  }
  const proto = protocolNumber(r.protocol) ?? r.protocol;
  const min = r.portRangeMin ?? null;
  const max = r.portRangeMax ?? (proto === '1' || proto === '58' ? null : min);
  return JSON.stringify([r.direction, r.ethertype, proto, min, max, prefix, r.remoteGroupId]);
}

/** Why this command may not run on this group (undefined: it may). */
export function securityGroupRefusal(context: SecurityGroupContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'AddSecurityGroupRule') {
    const same = context.rules.find((r) => r.id === event.rule.id || ruleKey(r) === ruleKey(event.rule));
    if (same) return { code: 'ALREADY_EXISTS', message: `Security group rule already exists. Rule id is ${same.id}.` };
  }
  if (event.type === 'RemoveSecurityGroupRule' && !context.rules.some((r) => r.id === event.ruleId)) {
    return { code: 'NOT_FOUND', message: `Security group rule ${event.ruleId} does not exist in security group ${id}` };
  }
  if (event.type === 'DeleteSecurityGroup' && context.securityGroup?.isDefault && !event.meta?.actor.roles.includes('admin')) {
    return { code: 'FAILED_PRECONDITION', state: 'default', message: `Insufficient rights for removing default security group ${id}` };
  }
  return undefined;
}

const allowed = ({ context, event }: { context: SecurityGroupContext; event: Ev }) => securityGroupRefusal(context, event) === undefined;
const emit = (make: (c: SecurityGroupContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: SecurityGroupContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });

export const securityGroupMachine = setup({}).createMachine({
  id: 'security_group',
  initial: 'absent',
  context: { securityGroup: null, rules: [] } as SecurityGroupContext,
  states: {
    absent: {
      on: {
        CreateSecurityGroup: {
          guard: allowed,
          actions: emit((_c, e) => [
            { type: 'SecurityGroupCreated', securityGroup: e.securityGroup },
            ...builtInRules(e.securityGroup).map((r) => ({ type: 'SecurityGroupRuleAdded', rule: r })),
          ]),
        },
        SecurityGroupCreated: { target: 'active', actions: assign(({ event }: { event: Ev }) => ({ securityGroup: event.securityGroup, rules: [] })) },
      },
    },
    active: {
      on: {
        UpdateSecurityGroup: { guard: allowed, actions: emit((c, e) => [{ type: 'SecurityGroupUpdated', securityGroup: applyMask(c.securityGroup as never, e.securityGroup, e.updateMask) }]) },
        SecurityGroupUpdated: { actions: assign(({ event }: { event: Ev }) => ({ securityGroup: event.securityGroup })) },
        DeleteSecurityGroup: { guard: allowed, actions: emit((c) => [{ type: 'SecurityGroupDeleted', securityGroup: c.securityGroup }]) },
        SecurityGroupDeleted: { target: 'deleted' },
        AddSecurityGroupRule: { guard: allowed, actions: emit((_c, e) => [{ type: 'SecurityGroupRuleAdded', rule: e.rule }]) },
        SecurityGroupRuleAdded: { actions: assign(({ context, event }: { context: SecurityGroupContext; event: Ev }) => ({ rules: [...context.rules, event.rule] })) },
        RemoveSecurityGroupRule: { guard: allowed, actions: emit((c, e) => [{ type: 'SecurityGroupRuleRemoved', rule: c.rules.find((r) => r.id === e.ruleId) }]) },
        SecurityGroupRuleRemoved: {
          actions: assign(({ context, event }: { context: SecurityGroupContext; event: Ev }) => ({ rules: context.rules.filter((r) => r.id !== event.rule.id) })),
        },
      },
    },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const SECURITY_GROUP_COMMANDS = ['CreateSecurityGroup', 'UpdateSecurityGroup', 'DeleteSecurityGroup', 'AddSecurityGroupRule', 'RemoveSecurityGroupRule'] as const;
export const SECURITY_GROUP_EVENTS = ['SecurityGroupCreated', 'SecurityGroupUpdated', 'SecurityGroupDeleted', 'SecurityGroupRuleAdded', 'SecurityGroupRuleRemoved'] as const;
