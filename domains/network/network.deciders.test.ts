// Networks, segment pools, subnets with their IPAM, security groups and quotas read as
// specifications: every command accepted where Neutron accepts it, and every refusal with its code
// and the field, address, MAC or range it names.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given, testContext } from '../kernel/specification.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const network = networkAggregate('network').decider;
const pool = networkAggregate('segment_pool').decider;
const subnet = networkAggregate('subnet').decider;
const group = networkAggregate('security_group').decider;
const quota = networkAggregate('network_quota').decider;

const ADMIN = { userId: 'admin', projectId: 'admin', roles: ['admin', 'member'] };
const net = (over: Record<string, any> = {}) => ({
  id: 'n1', name: 'private', projectId: 'p1', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: '', physicalNetwork: '', segmentationId: 0, ...over,
});

/** Runs commands in order against one aggregate, keeping accepted events; returns the refusals. */
function sequence(decider: typeof network, start: M[], commands: M[], aggregateId = 'a1', actor = ADMIN) {
  const events = [...start];
  const refusals: any[] = [];
  for (const c of commands) {
    const d = decider.decide(fold(decider, events), c, testContext({ aggregateId, actor, version: events.length }));
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(decider, events), refusals, events };
}

describe('networks', () => {
  it('creates a tenant network with the default MTU, ACTIVE; admin down is DOWN', () => {
    expect(given(network, []).when({ type: 'CreateNetwork', network: net() } as M)).toEqual({ events: [{ type: 'NetworkCreated', network: { ...net(), mtu: 1500 } }] });
    const vx = net({ networkType: 'vxlan', segmentationId: 7 });
    expect(given(network, []).when({ type: 'CreateNetwork', network: vx, segmentAllocated: true } as M)).toEqual({ events: [{ type: 'NetworkCreated', network: { ...vx, mtu: 1450 } }] });
    expect(given(network, [{ type: 'NetworkCreated', network: net({ adminStateUp: false }) } as M]).state.value).toBe('DOWN');
    const up = sequence(network, [{ type: 'NetworkCreated', network: net() }], [{ type: 'UpdateNetwork', network: { adminStateUp: false, name: 'x' }, updateMask: ['adminStateUp'] }]);
    expect(up.state.value).toBe('DOWN');
    expect(up.state.context.network).toMatchObject({ adminStateUp: false, name: 'private' });
  });

  it('leaves provider attributes, shared and router:external to admins, naming the field', () => {
    const member = { roles: ['member'], userId: 'u1', projectId: 'p1' };
    const when = (n: Record<string, any>, extra: Record<string, any> = {}) => given(network, []).when({ type: 'CreateNetwork', network: net(n), ...extra } as M, { actor: member, aggregateId: 'n1' });
    expect(when({ networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 })).toEqual({
      rejection: { code: 'PERMISSION_DENIED', field: 'provider:network_type', message: 'provider:network_type: only an admin may set provider:network_type on network n1' },
    });
    expect(when({ shared: true })).toMatchObject({ rejection: { code: 'PERMISSION_DENIED', field: 'shared' } });
    expect(when({ external: true })).toMatchObject({ rejection: { code: 'PERMISSION_DENIED', field: 'router:external' } });
    // The tenant segment the pool allocated is no request of the member's.
    expect(when({ networkType: 'vxlan', segmentationId: 5 }, { segmentAllocated: true })).toMatchObject({ events: [{ type: 'NetworkCreated' }] });
    expect(given(network, []).when({ type: 'CreateNetwork', network: net({ networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 }) } as M, { actor: ADMIN })).toMatchObject({ events: [{ type: 'NetworkCreated' }] });
    const upd = given(network, [{ type: 'NetworkCreated', network: net() } as M]).when({ type: 'UpdateNetwork', network: { shared: true }, updateMask: ['shared'] } as M, { actor: member });
    expect(upd).toMatchObject({ rejection: { code: 'PERMISSION_DENIED', field: 'shared' } });
  });

  it('refuses bad fields, naming them', () => {
    expect(given(network, []).when({ type: 'CreateNetwork', network: net({ networkType: 'gre' }) } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'network.network_type' } });
    expect(given(network, []).when({ type: 'CreateNetwork', network: net({ networkType: 'vlan', physicalNetwork: 'p', segmentationId: 5000 }) } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'network.segmentation_id' } });
  });

  it('keeps MACs unique on the network, and refuses deleting it while ports remain (NetworkInUse)', () => {
    const created = [{ type: 'NetworkCreated', network: net({ mtu: 1500 }) }];
    const { refusals, state, events } = sequence(network, created, [
      { type: 'AddNetworkPort', portId: 'p1', macAddress: 'fa:16:3e:00:00:01' },
      { type: 'AddNetworkPort', portId: 'p1', macAddress: 'fa:16:3e:00:00:01' },
      { type: 'AddNetworkPort', portId: 'p2', macAddress: 'fa:16:3e:00:00:01' },
      { type: 'DeleteNetwork' },
      { type: 'RemoveNetworkPort', portId: 'p1', macAddress: 'fa:16:3e:00:00:01' },
      { type: 'AddNetworkPort', portId: 'p2', macAddress: 'fa:16:3e:00:00:01' },
    ], 'n1');
    expect(refusals).toEqual([
      { code: 'ALREADY_EXISTS', field: 'mac_address', message: 'Unable to complete operation for network n1. The mac address fa:16:3e:00:00:01 is in use.' },
      { code: 'FAILED_PRECONDITION', state: 'in use', message: 'Unable to complete operation on network n1. There are 1 port(s) still in use on the network.' },
    ]);
    expect(state.context.macs).toEqual({ 'fa:16:3e:00:00:01': 'p2' });
    const after = sequence(network, events, [{ type: 'RemoveNetworkPort', portId: 'p2', macAddress: 'fa:16:3e:00:00:01' }, { type: 'DeleteNetwork' }, { type: 'UpdateNetwork', network: { name: 'x' }, updateMask: ['name'] }], 'n1');
    expect(after.state.value).toBe('deleted');
    expect(after.refusals).toMatchObject([{ code: 'NOT_FOUND' }]);
  });

  it('refuses a second creation (ALREADY_EXISTS) and commands to a network that is not there (NOT_FOUND)', () => {
    expect(given(network, [{ type: 'NetworkCreated', network: net() } as M]).when({ type: 'CreateNetwork', network: net() } as M)).toMatchObject({ rejection: { code: 'ALREADY_EXISTS' } });
    expect(given(network, []).when({ type: 'DeleteNetwork' })).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });
});

describe('segment pools', () => {
  const alloc = (networkId: string, segmentationId = 0): M => ({ type: 'AllocateSegment', networkId, segmentationId, rangeMin: 100, rangeMax: 102 });
  it('hands out the lowest free id, takes it back, and names the range when none is left', () => {
    const { refusals, state } = sequence(pool, [], [alloc('a'), alloc('b'), alloc('c'), alloc('d'), { type: 'ReleaseSegment', networkId: 'b' }, alloc('d'), alloc('a')], 'vxlan');
    expect(refusals).toEqual([{ code: 'RESOURCE_EXHAUSTED', message: 'no free segmentation id of vxlan in the range 100:102' }]);
    expect(state.context.allocations).toEqual({ a: 100, c: 102, d: 101 });
  });
  it('records an admin-chosen id, and refuses it when taken (naming it)', () => {
    const { refusals, state } = sequence(pool, [], [alloc('a', 2000), alloc('b', 2000), alloc('a', 2001)], 'vlan:physnet1');
    expect(refusals).toEqual([
      { code: 'ALREADY_EXISTS', field: 'segmentation_id', message: 'segmentation id 2000 of vlan:physnet1 is in use by network a' },
      { code: 'FAILED_PRECONDITION', state: 'allocated', message: 'network a already holds segmentation id 2000 of vlan:physnet1' },
    ]);
    expect(state.context.allocations).toEqual({ a: 2000 });
  });
});

const sub = (over: Record<string, unknown> = {}) => ({
  id: 's1', networkId: 'n1', projectId: 'p1', name: 'sub', ipVersion: 4, cidr: '10.0.0.0/28', gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true, ...over,
});

describe('subnets', () => {
  it("fills Neutron's defaults: first host as gateway, the rest of the CIDR as the pool", () => {
    expect(given(subnet, []).when({ type: 'CreateSubnet', subnet: sub() } as M)).toEqual({
      events: [{ type: 'SubnetCreated', subnet: sub({ gatewayIp: '10.0.0.1', allocationPools: [{ start: '10.0.0.2', end: '10.0.0.14' }] }) }],
    });
    expect(given(subnet, []).when({ type: 'CreateSubnet', subnet: sub(), noGateway: true } as M)).toMatchObject({
      events: [{ subnet: { gatewayIp: null, allocationPools: [{ start: '10.0.0.1', end: '10.0.0.14' }] } }],
    });
    expect(given(subnet, []).when({ type: 'CreateSubnet', subnet: sub({ ipVersion: 6, cidr: '2001:DB8::/64', gatewayIp: '2001:db8::ff' }) } as M)).toMatchObject({
      events: [{ subnet: { cidr: '2001:db8::/64', gatewayIp: '2001:db8::ff', allocationPools: [{ start: '2001:db8::1', end: '2001:db8::fe' }, { start: '2001:db8::100', end: '2001:db8::ffff:ffff:ffff:ffff' }] } }],
    });
  });

  it('refuses a bad CIDR, gateway or pool, naming the field', () => {
    const field = (s: Record<string, any>) => (given(subnet, []).when({ type: 'CreateSubnet', subnet: sub(s) } as M) as any).rejection?.field;
    expect(field({ cidr: '10.0.0.1/28' })).toBe('subnet.cidr');
    expect(field({ gatewayIp: '10.0.1.1' })).toBe('subnet.gateway_ip');
    expect(field({ allocationPools: [{ start: '10.0.0.2', end: '10.0.0.20' }] })).toBe('subnet.allocation_pools[0].end');
    expect(field({ allocationPools: [{ start: '10.0.0.1', end: '10.0.0.5' }] })).toBe('subnet.allocation_pools[0]');
  });

  it('allocates the lowest free address, a specific one once, and names what it refuses', () => {
    const created = [{ type: 'SubnetCreated', subnet: sub({ gatewayIp: '10.0.0.1', allocationPools: [{ start: '10.0.0.2', end: '10.0.0.4' }] }) }];
    const { refusals, state } = sequence(subnet, created, [
      { type: 'AllocateIp', portId: 'a', ipAddress: '' },
      { type: 'AllocateIp', portId: 'b', ipAddress: '10.0.0.3' },
      { type: 'AllocateIp', portId: 'c', ipAddress: '10.0.0.3' },
      { type: 'AllocateIp', portId: 'b', ipAddress: '10.0.0.3' },
      { type: 'AllocateIp', portId: 'c', ipAddress: '' },
      { type: 'AllocateIp', portId: 'd', ipAddress: '' },
      { type: 'AllocateIp', portId: 'd', ipAddress: '10.0.1.9' },
      { type: 'AllocateIp', portId: 'd', ipAddress: '10.0.0.1' },
      { type: 'AllocateIp', portId: 'r', ipAddress: '10.0.0.1', deviceOwner: 'network:router_interface' },
      { type: 'AllocateIp', portId: 'd', ipAddress: '10.0.0.15' },
      { type: 'AllocateIp', portId: 'e', ipAddress: '10.0.0.9' },
    ], 's1');
    expect(refusals).toEqual([
      { code: 'ALREADY_EXISTS', field: 'ip_address', message: 'IP address 10.0.0.3 already allocated in subnet s1' },
      { code: 'RESOURCE_EXHAUSTED', message: 'No more IP addresses available on subnet s1 (network n1)' },
      { code: 'INVALID_ARGUMENT', field: 'ip_address', message: 'ip_address: 10.0.1.9 is not a valid IP for subnet s1 (10.0.0.0/28)' },
      { code: 'INVALID_ARGUMENT', field: 'ip_address', message: 'ip_address: 10.0.0.1 is the gateway of subnet s1; only a router interface may take it' },
      { code: 'INVALID_ARGUMENT', field: 'ip_address', message: "ip_address: 10.0.0.15 is the network's reserved address on subnet s1" },
    ]);
    // A specific address outside the pools but inside the CIDR is Neutron's fixed IP: allowed.
    expect(state.context.allocations).toEqual({ '10.0.0.2': 'a', '10.0.0.3': 'b', '10.0.0.4': 'c', '10.0.0.1': 'r', '10.0.0.9': 'e' });
  });

  it('releases one address or all of a port, refuses deleting while allocated (SubnetInUse), then deletes', () => {
    const created = [{ type: 'SubnetCreated', subnet: sub({ gatewayIp: '10.0.0.1', allocationPools: [{ start: '10.0.0.2', end: '10.0.0.14' }] }) }];
    const { refusals, state, events } = sequence(subnet, created, [
      { type: 'AllocateIp', portId: 'a', ipAddress: '' },
      { type: 'AllocateIp', portId: 'a', ipAddress: '' },
      { type: 'DeleteSubnet' },
      { type: 'ReleaseIp', portId: 'b', ipAddress: '10.0.0.2' },
      { type: 'ReleaseIp', portId: 'a', ipAddress: '' },
      { type: 'AllocateIp', portId: 'c', ipAddress: '' },
    ], 's1');
    expect(refusals).toMatchObject([{ code: 'FAILED_PRECONDITION', state: 'in use' }]);
    expect(events.filter((e) => e.type === 'IpReleased')).toEqual([{ type: 'IpReleased', portId: 'a', ipAddress: '10.0.0.2' }, { type: 'IpReleased', portId: 'a', ipAddress: '10.0.0.3' }]);
    expect(state.context.allocations).toEqual({ '10.0.0.2': 'c' });
    const after = sequence(subnet, events, [{ type: 'ReleaseIp', portId: 'c', ipAddress: '10.0.0.2' }, { type: 'UpdateSubnet', subnet: { name: 'renamed', dnsNameservers: ['8.8.8.8'] }, updateMask: ['name', 'dnsNameservers'] }, { type: 'DeleteSubnet' }, { type: 'AllocateIp', portId: 'x', ipAddress: '' }], 's1');
    expect(after.refusals).toMatchObject([{ code: 'NOT_FOUND' }]);
    expect(after.events.find((e) => e.type === 'SubnetDeleted')!.subnet).toMatchObject({ name: 'renamed', dnsNameservers: ['8.8.8.8'] });
  });
});

const sg = (over: Record<string, unknown> = {}) => ({ id: 'g1', projectId: 'p1', name: 'web', description: '', stateful: true, isDefault: false, ...over });
const rule = (over: Record<string, unknown> = {}) => ({
  id: 'r1', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: '', description: '', ...over,
});

describe('security groups', () => {
  it("creates the default group with Neutron's default rules, and other groups with egress only", () => {
    const d = given(group, []).when({ type: 'CreateSecurityGroup', securityGroup: sg({ id: 'd1', name: 'default', isDefault: true }) } as M) as { events: M[] };
    const rules = d.events.filter((e) => e.type === 'SecurityGroupRuleAdded').map((e) => [e.rule.direction, e.rule.ethertype, e.rule.protocol, e.rule.remoteGroupId]);
    expect(rules).toEqual([['egress', 'IPv4', '', ''], ['egress', 'IPv6', '', ''], ['ingress', 'IPv4', '', 'd1'], ['ingress', 'IPv6', '', 'd1']]);
    const w = given(group, []).when({ type: 'CreateSecurityGroup', securityGroup: sg() } as M) as { events: M[] };
    expect(w.events.map((e) => e.rule?.id ?? e.type)).toEqual(['SecurityGroupCreated', 'g1-egress-ipv4', 'g1-egress-ipv6']);
  });

  it('adds rules once (SecurityGroupRuleExists names the rule), removes them, refuses unknown ones', () => {
    const start = [{ type: 'SecurityGroupCreated', securityGroup: sg() }];
    const { refusals, state } = sequence(group, start, [
      { type: 'AddSecurityGroupRule', rule: rule() },
      // The same rule spelled otherwise: protocol by number, the prefix as any.
      { type: 'AddSecurityGroupRule', rule: rule({ id: 'r2', protocol: '6', remoteIpPrefix: '' }) },
      { type: 'AddSecurityGroupRule', rule: rule({ id: 'r1', portRangeMin: 80, portRangeMax: 80 }) },
      { type: 'AddSecurityGroupRule', rule: rule({ id: 'r3', remoteIpPrefix: '10.0.0.0/8', remoteGroupId: 'g2' }) },
      { type: 'AddSecurityGroupRule', rule: rule({ id: 'r4', protocol: 'icmp', portRangeMin: 8, portRangeMax: 0 }) },
      { type: 'RemoveSecurityGroupRule', ruleId: 'r1' },
      { type: 'RemoveSecurityGroupRule', ruleId: 'r1' },
    ], 'g1');
    expect(refusals).toEqual([
      { code: 'ALREADY_EXISTS', message: 'Security group rule already exists. Rule id is r1.' },
      { code: 'ALREADY_EXISTS', message: 'Security group rule already exists. Rule id is r1.' },
      { code: 'INVALID_ARGUMENT', field: 'rule.remote_ip_prefix', message: 'rule.remote_ip_prefix: give remote_ip_prefix or remote_group_id, not both' },
      { code: 'NOT_FOUND', message: 'Security group rule r1 does not exist in security group g1' },
    ]);
    expect((state.context.rules as { id: string }[]).map((r: { id: string }) => r.id)).toEqual(['r4']);
  });

  it('lets only an admin delete a default group', () => {
    const start = [{ type: 'SecurityGroupCreated', securityGroup: sg({ name: 'default', isDefault: true }) }];
    expect(given(group, start).when({ type: 'DeleteSecurityGroup' }, { aggregateId: 'g1' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'default', message: 'Insufficient rights for removing default security group g1' },
    });
    expect(given(group, start).when({ type: 'DeleteSecurityGroup' }, { actor: ADMIN })).toMatchObject({ events: [{ type: 'SecurityGroupDeleted' }] });
    expect(sequence(group, [{ type: 'SecurityGroupCreated', securityGroup: sg() }], [{ type: 'UpdateSecurityGroup', securityGroup: { name: 'web2' }, updateMask: ['name'] }]).state.context.securityGroup).toMatchObject({ name: 'web2' });
  });
});

describe('network quotas', () => {
  it("uses Neutron's defaults and names the quota a create would exceed", () => {
    const reserve = (consumerId: string, usage: object): M => ({ type: 'ReserveNetworkQuota', consumerId, usage });
    const { refusals, state } = sequence(quota, [{ type: 'NetworkQuotaLimitsSet', limits: { network: 2 } }], [
      reserve('n1', { network: 1 }), reserve('n2', { network: 1 }), reserve('n1', { network: 1 }), reserve('n3', { network: 1 }),
      { type: 'ReleaseNetworkQuota', consumerId: 'n1' }, reserve('n3', { network: 1 }), reserve('p1', { port: 500 }), reserve('p2', { port: 1 }),
    ], 'p1');
    expect(refusals).toEqual([
      { code: 'RESOURCE_EXHAUSTED', field: 'network', message: 'Quota exceeded for resources: network. Requested 1, but already used 2 of 2 network' },
      { code: 'RESOURCE_EXHAUSTED', field: 'port', message: 'Quota exceeded for resources: port. Requested 1, but already used 500 of 500 port' },
    ]);
    expect(state.context.used).toEqual({ network: 2, subnet: 0, port: 500, router: 0, floatingip: 0, security_group: 0, security_group_rule: 0 });
    expect(state.context.limits).toEqual({ network: 2, subnet: 100, port: 500, router: 10, floatingip: 50, security_group: 10, security_group_rule: 100 });
  });
});
