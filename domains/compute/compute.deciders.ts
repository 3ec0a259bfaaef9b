// The deciders of the compute domain: the instance lifecycle, hosts (inventory and claims),
// project quotas, and the plain resources (flavors with project access, keypairs, server groups
// with members, host aggregates with hosts and metadata).
import { assign, enqueueActions, type AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';
import { machineDecider, type MachineState } from '../kernel/machine-decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { commandTypesOf, eventTypesOf, resourceMachine, type ResourceContext, type ResourceMachineSpec } from '../kernel/resource.machine.js';
import { HOST_COMMANDS, HOST_EVENTS, hostMachine, groupFull, shortfall, type Claim, type HostContext } from './host.machine.js';
import { instanceDecider } from './instance.decider.js';
import { INSTANCE_COMMANDS, INSTANCE_EVENTS } from './instance.machine.js';
import { QUOTA_COMMANDS, QUOTA_EVENTS, exceeded, quotaMachine, type QuotaContext } from './quota.machine.js';

type Ev = Message & Record<string, any>;

export interface ComputeAggregate {
  aggregateType: string;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  decider: ReturnType<typeof machineDecider<Message, Message>>;
}

const emit = (type: string, pick: (e: Ev) => Record<string, unknown>) =>
  enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type, ...pick(event) }));

const member = (list: string, key: string) => ({
  add: (e: Ev) => ({ [key]: e[key] }),
  assignAdd: assign(({ context, event }: { context: ResourceContext; event: Ev }) => ({ [list]: [...((context[list] as string[]) ?? []), event[key]] })),
  assignRemove: assign(({ context, event }: { context: ResourceContext; event: Ev }) => ({ [list]: ((context[list] as string[]) ?? []).filter((x) => x !== event[key]) })),
});

const access = member('access', 'projectId');
const groupMember = member('members', 'instanceId');
const aggregateHost = member('hosts', 'host');

const specs: { aggregateType: string; spec: ResourceMachineSpec; extraCommands: string[]; extraEvents: string[] }[] = [
  {
    aggregateType: 'flavor',
    spec: {
      noun: 'Flavor', field: 'flavor', toggles: false, context: { access: [] },
      live: {
        AddFlavorAccess: { guard: ({ context, event }: { context: ResourceContext; event: Ev }) => !(context.access as string[]).includes(event.projectId), actions: emit('FlavorAccessAdded', access.add) },
        FlavorAccessAdded: { actions: access.assignAdd },
        RemoveFlavorAccess: { guard: ({ context, event }: { context: ResourceContext; event: Ev }) => (context.access as string[]).includes(event.projectId), actions: emit('FlavorAccessRemoved', access.add) },
        FlavorAccessRemoved: { actions: access.assignRemove },
      },
    },
    extraCommands: ['AddFlavorAccess', 'RemoveFlavorAccess'],
    extraEvents: ['FlavorAccessAdded', 'FlavorAccessRemoved'],
  },
  { aggregateType: 'keypair', spec: { noun: 'Keypair', field: 'keypair', toggles: false }, extraCommands: [], extraEvents: [] },
  {
    aggregateType: 'server_group',
    spec: {
      noun: 'ServerGroup', field: 'serverGroup', toggles: false, context: { members: [] },
      live: {
        AddServerGroupMember: {
          guard: ({ context, event }: { context: ResourceContext; event: Ev }) =>
            (context.members as string[]).includes(event.instanceId) || event.maxMembers < 0 || (context.members as string[]).length < event.maxMembers,
          actions: enqueueActions(({ context, event, enqueue }: { context: ResourceContext; event: Ev; enqueue: any }) => {
            if (!(context.members as string[]).includes(event.instanceId)) enqueue.emit({ type: 'ServerGroupMemberAdded', instanceId: event.instanceId });
          }),
        },
        ServerGroupMemberAdded: { actions: groupMember.assignAdd },
        RemoveServerGroupMember: {
          actions: enqueueActions(({ context, event, enqueue }: { context: ResourceContext; event: Ev; enqueue: any }) => {
            if ((context.members as string[]).includes(event.instanceId)) enqueue.emit({ type: 'ServerGroupMemberRemoved', instanceId: event.instanceId });
          }),
        },
        ServerGroupMemberRemoved: { actions: groupMember.assignRemove },
      },
    },
    extraCommands: ['AddServerGroupMember', 'RemoveServerGroupMember'],
    extraEvents: ['ServerGroupMemberAdded', 'ServerGroupMemberRemoved'],
  },
  {
    aggregateType: 'aggregate',
    spec: {
      noun: 'Aggregate', field: 'aggregate', toggles: false, context: { hosts: [] },
      live: {
        AddAggregateHost: { guard: ({ context, event }: { context: ResourceContext; event: Ev }) => !(context.hosts as string[]).includes(event.host), actions: emit('AggregateHostAdded', aggregateHost.add) },
        AggregateHostAdded: { actions: aggregateHost.assignAdd },
        RemoveAggregateHost: { guard: ({ context, event }: { context: ResourceContext; event: Ev }) => (context.hosts as string[]).includes(event.host), actions: emit('AggregateHostRemoved', aggregateHost.add) },
        AggregateHostRemoved: { actions: aggregateHost.assignRemove },
      },
    },
    extraCommands: ['AddAggregateHost', 'RemoveAggregateHost'],
    extraEvents: ['AggregateHostAdded', 'AggregateHostRemoved'],
  },
];

function explain(aggregateType: string, state: MachineState, command: Ev, id: string): Rejection | undefined {
  const name = String(state.value);
  const ctx = state.context as Record<string, any>;
  if (aggregateType === 'host' && command.type === 'ClaimResources') {
    if (name === 'disabled') return { code: 'FAILED_PRECONDITION', state: name, message: `host ${id} is disabled${ctx.disabledReason ? `: ${ctx.disabledReason}` : ''}` };
    const short = shortfall(ctx as HostContext, command as unknown as Claim);
    if (short) return { code: 'RESOURCE_EXHAUSTED', message: `host ${id} lacks ${short}` };
    if (groupFull(ctx as HostContext, command)) {
      return { code: 'FAILED_PRECONDITION', state: 'anti-affinity', message: `anti-affinity group ${command.groupId} already has ${command.maxServerPerHost ?? 1} member(s) on host ${id}` };
    }
  }
  if (aggregateType === 'quota' && command.type === 'ReserveQuota') {
    const over = exceeded(ctx as QuotaContext, command.usage);
    if (over) {
      return { code: 'RESOURCE_EXHAUSTED', field: over.name, message: `Quota exceeded for ${over.name}: Requested ${over.asked}, but already used ${over.used} of ${over.limit} ${over.name}` };
    }
  }
  if (aggregateType === 'server_group' && command.type === 'AddServerGroupMember' && name === 'active') {
    return { code: 'RESOURCE_EXHAUSTED', field: 'server_group_members', message: `Quota exceeded for server_group_members: server group ${id} already has ${command.maxMembers} members` };
  }
  if (aggregateType === 'flavor' && command.type === 'AddFlavorAccess' && name === 'active') return { code: 'ALREADY_EXISTS', message: `project ${command.projectId} already has access to flavor ${id}` };
  if (aggregateType === 'flavor' && command.type === 'RemoveFlavorAccess' && name === 'active') return { code: 'NOT_FOUND', message: `project ${command.projectId} has no access to flavor ${id}` };
  if (aggregateType === 'aggregate' && command.type === 'AddAggregateHost' && name === 'active') return { code: 'ALREADY_EXISTS', message: `host ${command.host} is already in aggregate ${id}` };
  if (aggregateType === 'aggregate' && command.type === 'RemoveAggregateHost' && name === 'active') return { code: 'NOT_FOUND', message: `host ${command.host} is not in aggregate ${id}` };
  return undefined;
}

function define(aggregateType: string, machine: AnyStateMachine, commandTypes: readonly string[], eventTypes: readonly string[], options: { goneStates?: string[]; creationCommands?: string[]; absentState?: string } = {}): ComputeAggregate {
  const decider = machineDecider<Message, Message>({
    aggregateType,
    machine,
    commandTypes,
    absentState: options.absentState ?? 'absent',
    goneStates: options.goneStates,
    creationCommands: options.creationCommands,
    explain: (state, command, context) => explain(aggregateType, state, command as Ev, context.aggregateId),
  });
  return { aggregateType, commandTypes, eventTypes, decider };
}

export const computeAggregates: ComputeAggregate[] = [
  { aggregateType: 'instance', commandTypes: INSTANCE_COMMANDS, eventTypes: INSTANCE_EVENTS, decider: instanceDecider },
  define('host', hostMachine, HOST_COMMANDS, HOST_EVENTS, { creationCommands: [] }),
  // A project's quota exists from the start (with Nova's defaults): no absent state.
  define('quota', quotaMachine, QUOTA_COMMANDS, QUOTA_EVENTS, { absentState: 'tracking' }),
  ...specs.map(({ aggregateType, spec, extraCommands, extraEvents }) =>
    define(aggregateType, resourceMachine(spec), commandTypesOf(spec, extraCommands), eventTypesOf(spec, extraEvents), {
      goneStates: ['deleted'],
      creationCommands: [`Create${spec.noun}`],
    }),
  ),
];

export const computeAggregate = (aggregateType: string): ComputeAggregate => {
  const a = computeAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no compute aggregate ${aggregateType}`);
  return a;
};
