// The deciders of the network domain: networks (with their MAC registry), segment pools, subnets
// (with their IPAM), ports, security groups (with their rules), routers (with their interfaces),
// floating IPs, project quotas and the hosts' network agents. Each machine
// states its own refusals (networkRefusal, subnetRefusal, ...): the guard refuses when the refusal
// is defined, and explain returns that refusal, so the rule and its message are one function.
import type { AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import { machineDecider, type MachineState } from '../kernel/machine-decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { NETWORK_AGENT_COMMANDS, NETWORK_AGENT_EVENTS, networkAgentMachine, networkAgentRefusal, type NetworkAgentContext } from './network-agent.machine.js';
import { exceededNetworkQuota, NETWORK_QUOTA_COMMANDS, NETWORK_QUOTA_EVENTS, networkQuotaMachine, type NetworkQuotaContext } from './network-quota.machine.js';
import { FLOATING_IP_COMMANDS, FLOATING_IP_EVENTS, floatingIpMachine, floatingIpRefusal, type FloatingIpContext } from './floating-ip.machine.js';
import { NETWORK_COMMANDS, NETWORK_EVENTS, networkMachine, networkRefusal, type NetworkContext } from './network.machine.js';
import { PORT_COMMANDS, PORT_EVENTS, portMachine, portRefusal, type PortContext } from './port.machine.js';
import { ROUTER_COMMANDS, ROUTER_EVENTS, routerMachine, routerRefusal, type RouterContext } from './router.machine.js';
import { SECURITY_GROUP_COMMANDS, SECURITY_GROUP_EVENTS, securityGroupMachine, securityGroupRefusal, type SecurityGroupContext } from './security-group.machine.js';
import { SEGMENT_POOL_COMMANDS, SEGMENT_POOL_EVENTS, segmentFor, segmentPoolMachine, type SegmentPoolContext } from './segment-pool.machine.js';
import { SUBNET_COMMANDS, SUBNET_EVENTS, subnetMachine, subnetRefusal, type SubnetContext } from './subnet.machine.js';

type Ev = Message & Record<string, any> & { meta?: CommandContext };

export interface NetworkAggregate {
  aggregateType: string;
  commandTypes: readonly string[];
  eventTypes: readonly string[];
  decider: ReturnType<typeof machineDecider<Message, Message>>;
}

type Refusal = (state: MachineState, event: Ev) => Rejection | undefined;

/** Refusals of a live aggregate only: in absent or deleted the generic NOT_FOUND / ALREADY_EXISTS stand, creation aside. */
const whenLive = (creation: string, refusal: (context: any, event: Ev) => Rejection | undefined): Refusal => (state, event) => {
  const name = String(state.value);
  if (name === 'deleted') return undefined;
  if (name === 'absent') return event.type === creation ? refusal(state.context, event) : undefined;
  return event.type === creation ? undefined : refusal(state.context, event);
};

function define(aggregateType: string, machine: AnyStateMachine, commandTypes: readonly string[], eventTypes: readonly string[], refusal: Refusal, options: { creation?: string; absentState?: string } = {}): NetworkAggregate {
  const decider = machineDecider<Message, Message>({
    aggregateType,
    machine,
    commandTypes,
    absentState: options.absentState ?? 'absent',
    goneStates: options.creation ? ['deleted'] : [],
    creationCommands: options.creation ? [options.creation] : [],
    explain: (state, command, context) => refusal(state, { ...(command as Ev), meta: context }),
  });
  return { aggregateType, commandTypes, eventTypes, decider };
}

const quotaRefusal: Refusal = (state, event) => {
  if (event.type !== 'ReserveNetworkQuota') return undefined;
  const over = exceededNetworkQuota(state.context as unknown as NetworkQuotaContext, event.usage);
  return over && { code: 'RESOURCE_EXHAUSTED', field: over.name, message: `Quota exceeded for resources: ${over.name}. Requested ${over.asked}, but already used ${over.used} of ${over.limit} ${over.name}` };
};

export const networkAggregates: NetworkAggregate[] = [
  define('network', networkMachine, NETWORK_COMMANDS, NETWORK_EVENTS, whenLive('CreateNetwork', (c: NetworkContext, e) => networkRefusal(c, e)), { creation: 'CreateNetwork' }),
  // A pool and a project's quota exist from the start: no absent state.
  define('segment_pool', segmentPoolMachine, SEGMENT_POOL_COMMANDS, SEGMENT_POOL_EVENTS, (state, e) => {
    if (e.type !== 'AllocateSegment') return undefined;
    const got = segmentFor(state.context as unknown as SegmentPoolContext, e);
    return 'rejection' in got ? got.rejection : undefined;
  }, { absentState: 'tracking' }),
  define('subnet', subnetMachine, SUBNET_COMMANDS, SUBNET_EVENTS, whenLive('CreateSubnet', (c: SubnetContext, e) => subnetRefusal(c, e)), { creation: 'CreateSubnet' }),
  define('port', portMachine, PORT_COMMANDS, PORT_EVENTS, whenLive('CreatePort', (c: PortContext, e) => portRefusal(c, e)), { creation: 'CreatePort' }),
  define('security_group', securityGroupMachine, SECURITY_GROUP_COMMANDS, SECURITY_GROUP_EVENTS, whenLive('CreateSecurityGroup', (c: SecurityGroupContext, e) => securityGroupRefusal(c, e)), { creation: 'CreateSecurityGroup' }),
  define('router', routerMachine, ROUTER_COMMANDS, ROUTER_EVENTS, whenLive('CreateRouter', (c: RouterContext, e) => routerRefusal(c, e)), { creation: 'CreateRouter' }),
  define('floating_ip', floatingIpMachine, FLOATING_IP_COMMANDS, FLOATING_IP_EVENTS, whenLive('CreateFloatingIp', (c: FloatingIpContext, e) => floatingIpRefusal(c, e)), { creation: 'CreateFloatingIp' }),
  define('network_quota', networkQuotaMachine, NETWORK_QUOTA_COMMANDS, NETWORK_QUOTA_EVENTS, quotaRefusal, { absentState: 'tracking' }),
  define('network_agent', networkAgentMachine, NETWORK_AGENT_COMMANDS, NETWORK_AGENT_EVENTS, (state, e) => networkAgentRefusal(state.context as unknown as NetworkAgentContext, e), { absentState: 'tracking' }),
];

export const networkAggregate = (aggregateType: string): NetworkAggregate => {
  const a = networkAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no network aggregate ${aggregateType}`);
  return a;
};
