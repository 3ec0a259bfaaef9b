// The deciders of the network domain: networks (with their MAC registry), segment pools, subnets
// (with their IPAM), ports, security groups (with their rules), routers (with their interfaces),
// floating IPs, project quotas and the hosts' network agents. Each machine
// states its own refusals (networkRefusal, subnetRefusal, ...): the guard refuses when the refusal
// is defined, and explain returns that refusal, so the rule and its message are one function.
import { defineAggregate, whenLive, type DomainAggregate, type Refusal } from '../kernel/aggregate.js';
import { NETWORK_AGENT_COMMANDS, NETWORK_AGENT_EVENTS, networkAgentMachine, networkAgentRefusal, type NetworkAgentContext } from './network-agent.machine.js';
import { exceededNetworkQuota, NETWORK_QUOTA_COMMANDS, NETWORK_QUOTA_EVENTS, networkQuotaMachine, type NetworkQuotaContext } from './network-quota.machine.js';
import { FLOATING_IP_COMMANDS, FLOATING_IP_EVENTS, floatingIpMachine, floatingIpRefusal, type FloatingIpContext } from './floating-ip.machine.js';
import { NETWORK_COMMANDS, NETWORK_EVENTS, networkMachine, networkRefusal, type NetworkContext } from './network.machine.js';
import { PORT_COMMANDS, PORT_EVENTS, portMachine, portRefusal, type PortContext } from './port.machine.js';
import { ROUTER_COMMANDS, ROUTER_EVENTS, routerMachine, routerRefusal, type RouterContext } from './router.machine.js';
import { SECURITY_GROUP_COMMANDS, SECURITY_GROUP_EVENTS, securityGroupMachine, securityGroupRefusal, type SecurityGroupContext } from './security-group.machine.js';
import { SEGMENT_POOL_COMMANDS, SEGMENT_POOL_EVENTS, segmentFor, segmentPoolMachine, type SegmentPoolContext } from './segment-pool.machine.js';
import { SUBNET_COMMANDS, SUBNET_EVENTS, subnetMachine, subnetRefusal, type SubnetContext } from './subnet.machine.js';


export type NetworkAggregate = DomainAggregate;

const quotaRefusal: Refusal = (state, event) => {
  if (event.type !== 'ReserveNetworkQuota') return undefined;
  const over = exceededNetworkQuota(state.context as unknown as NetworkQuotaContext, event.usage);
  return over && { code: 'RESOURCE_EXHAUSTED', field: over.name, message: `Quota exceeded for resources: ${over.name}. Requested ${over.asked}, but already used ${over.used} of ${over.limit} ${over.name}` };
};

export const networkAggregates: NetworkAggregate[] = [
  defineAggregate('network', networkMachine, NETWORK_COMMANDS, NETWORK_EVENTS, whenLive('CreateNetwork', (c: NetworkContext, e) => networkRefusal(c, e)), { creation: 'CreateNetwork' }),
  // A pool and a project's quota exist from the start: no absent state.
  defineAggregate('segment_pool', segmentPoolMachine, SEGMENT_POOL_COMMANDS, SEGMENT_POOL_EVENTS, (state, e) => {
    if (e.type !== 'AllocateSegment') return undefined;
    const got = segmentFor(state.context as unknown as SegmentPoolContext, e);
    return 'rejection' in got ? got.rejection : undefined;
  }, { absentState: 'tracking' }),
  defineAggregate('subnet', subnetMachine, SUBNET_COMMANDS, SUBNET_EVENTS, whenLive('CreateSubnet', (c: SubnetContext, e) => subnetRefusal(c, e)), { creation: 'CreateSubnet' }),
  defineAggregate('port', portMachine, PORT_COMMANDS, PORT_EVENTS, whenLive('CreatePort', (c: PortContext, e) => portRefusal(c, e)), { creation: 'CreatePort' }),
  defineAggregate('security_group', securityGroupMachine, SECURITY_GROUP_COMMANDS, SECURITY_GROUP_EVENTS, whenLive('CreateSecurityGroup', (c: SecurityGroupContext, e) => securityGroupRefusal(c, e)), { creation: 'CreateSecurityGroup' }),
  defineAggregate('router', routerMachine, ROUTER_COMMANDS, ROUTER_EVENTS, whenLive('CreateRouter', (c: RouterContext, e) => routerRefusal(c, e)), { creation: 'CreateRouter' }),
  defineAggregate('floating_ip', floatingIpMachine, FLOATING_IP_COMMANDS, FLOATING_IP_EVENTS, whenLive('CreateFloatingIp', (c: FloatingIpContext, e) => floatingIpRefusal(c, e)), { creation: 'CreateFloatingIp' }),
  defineAggregate('network_quota', networkQuotaMachine, NETWORK_QUOTA_COMMANDS, NETWORK_QUOTA_EVENTS, quotaRefusal, { absentState: 'tracking' }),
  defineAggregate('network_agent', networkAgentMachine, NETWORK_AGENT_COMMANDS, NETWORK_AGENT_EVENTS, (state, e) => networkAgentRefusal(state.context as unknown as NetworkAgentContext, e), { absentState: 'tracking' }),
];

export const networkAggregate = (aggregateType: string): NetworkAggregate => {
  const a = networkAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no network aggregate ${aggregateType}`);
  return a;
};
