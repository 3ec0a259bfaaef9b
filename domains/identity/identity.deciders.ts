// The deciders of the identity domain: one xstate machine per aggregate type, each the single
// statement of which command is legal in which state. Aggregate ids are resource ids (audit ids
// for tokens, "<kind>/<scope>/<name>" for name claims).
import type { AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';
import { machineDecider, type MachineState } from '../kernel/machine-decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { groupExtraCommands, groupExtraEvents, groupSpec } from './group.machine.js';
import { nameClaimCommands, nameClaimEvents, nameClaimMachine } from './name-claim.machine.js';
import { commandTypesOf, eventTypesOf, resourceMachine, type ResourceMachineSpec } from '../kernel/resource.machine.js';
import { roleAssignmentCommands, roleAssignmentEvents, roleAssignmentMachine } from './role-assignment.machine.js';
import { tokenCommands, tokenEvents, tokenMachine } from './token.machine.js';
import { userExtraCommands, userExtraEvents, userSpec } from './user.machine.js';

export interface IdentityAggregate {
  aggregateType: string;
  machine: AnyStateMachine;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  decider: ReturnType<typeof machineDecider<Message, Message>>;
}

const plain: ResourceMachineSpec[] = [
  { noun: 'Domain', field: 'domain', toggles: true, deleteOnlyWhenDisabled: true },
  { noun: 'Project', field: 'project', toggles: true },
  { noun: 'Role', field: 'role', toggles: false },
  { noun: 'Region', field: 'region', toggles: false },
  { noun: 'Service', field: 'service', toggles: false },
  { noun: 'Endpoint', field: 'endpoint', toggles: false },
];

const stateName = (s: MachineState) => String(s.value);

function explain(aggregateType: string, state: MachineState, command: Message & Record<string, unknown>, aggregateId: string): Rejection | undefined {
  const name = stateName(state);
  if (command.type === 'DeleteDomain' && name === 'enabled') {
    return { code: 'FAILED_PRECONDITION', state: name, message: `domain ${aggregateId} is enabled: disable it before deleting it` };
  }
  if (command.type === 'RemoveGroupMember' && name === 'active') {
    return { code: 'NOT_FOUND', message: `user ${command.userId} is not a member of group ${aggregateId}` };
  }
  if (command.type === 'ClaimName' && name === 'claimed') {
    const [kind, , ...rest] = aggregateId.split('/');
    return { code: 'ALREADY_EXISTS', message: `a ${kind} named "${rest.join('/')}" already exists there` };
  }
  if (command.type === 'RevokeToken' && name === 'issued') {
    return { code: 'FAILED_PRECONDITION', state: 'expired', message: `token ${aggregateId} has expired` };
  }
  if (command.type === 'ExpireToken' && name === 'issued') {
    return { code: 'FAILED_PRECONDITION', state: name, message: `token ${aggregateId} has not expired yet` };
  }
  if (aggregateType === 'user' && command.type.startsWith('Record') && name === 'disabled') {
    return { code: 'FAILED_PRECONDITION', state: name, message: `user ${aggregateId} is disabled` };
  }
  return undefined;
}

function define(
  aggregateType: string,
  machine: AnyStateMachine,
  commandTypes: readonly string[],
  eventTypes: readonly string[],
  options: { goneStates?: string[]; creationCommands?: string[]; absentState?: string } = {},
): IdentityAggregate {
  const decider = machineDecider<Message, Message>({
    aggregateType,
    machine,
    commandTypes,
    absentState: options.absentState ?? 'absent',
    goneStates: options.goneStates,
    creationCommands: options.creationCommands,
    explain: (state, command, context) => explain(aggregateType, state, command as Message & Record<string, unknown>, context.aggregateId),
  });
  return { aggregateType, machine, commandTypes, eventTypes, decider };
}

const resource = (spec: ResourceMachineSpec, extraCommands: readonly string[] = [], extraEvents: readonly string[] = []) =>
  define(spec.field, resourceMachine(spec), commandTypesOf(spec, extraCommands), eventTypesOf(spec, extraEvents), {
    goneStates: ['deleted'],
    creationCommands: [`Create${spec.noun}`],
  });

export const identityAggregates: IdentityAggregate[] = [
  ...plain.map((spec) => resource(spec)),
  resource(userSpec, userExtraCommands, userExtraEvents),
  resource(groupSpec, groupExtraCommands, groupExtraEvents),
  define('role_assignment', roleAssignmentMachine, roleAssignmentCommands, roleAssignmentEvents, { goneStates: ['revoked'] }),
  define('token', tokenMachine, tokenCommands, tokenEvents, { goneStates: ['revoked', 'expired'], creationCommands: ['IssueToken'] }),
  define('name', nameClaimMachine, nameClaimCommands, nameClaimEvents, { absentState: 'free' }),
];

export const identityAggregate = (aggregateType: string): IdentityAggregate => {
  const a = identityAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no identity aggregate ${aggregateType}`);
  return a;
};
