// The network codec carries exactly what the deciders consume: every command and event of every
// network aggregate, produced by driving the deciders through realistic histories, survives
// encode -> decode deep-equal (a null gateway and null port ranges stay null, empty lists stay []),
// and folding the decoded events gives the state the originals give. Bad fields are refused at
// decode, named.
import { describe, expect, it } from 'vitest';
import type { Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { testContext } from '../../domains/kernel/specification.js';
import { networkAggregate, networkAggregates } from '../../domains/network/network.deciders.js';
import { networkCodecFor, networkDefinitions, networkEventTypes } from './network.codec.js';

type M = Message & Record<string, any>;

const admin = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] };
const seen = new Map<string, { commands: Set<string>; events: Set<string> }>();

/** Runs commands in order against one aggregate through the codec; returns both folds. */
function drive(aggregateType: string, aggregateId: string, commands: M[]): { original: MachineState; decoded: MachineState } {
  const { decider } = networkAggregate(aggregateType);
  const codec = networkCodecFor(aggregateType);
  const record = seen.get(aggregateType) ?? { commands: new Set(), events: new Set() };
  seen.set(aggregateType, record);
  let original = decider.initialState;
  let decoded = decider.initialState;
  commands.forEach((command, i) => {
    const wire = codec.decodeCommand(command.type, codec.encodeCommand(command)) as M;
    expect(wire, `${command.type} after the wire`).toStrictEqual(command);
    record.commands.add(command.type);
    const context = testContext({ aggregateId, version: i, actor: admin, issuedAtMs: 1_767_225_600_000 + i });
    const want = decider.decide(original, command, context);
    const got = decider.decide(decoded, wire, context);
    if (!('events' in want)) throw new Error(`${command.type} (#${i}) refused: ${want.rejection.message}`);
    expect(got, `${command.type}: deciding the decoded command`).toStrictEqual(want);
    for (const event of want.events as M[]) {
      const back = codec.decodeEvent(event.type, codec.encodeEvent(event)) as M;
      expect(back, `${event.type} after the wire`).toStrictEqual(event);
      record.events.add(event.type);
      original = decider.evolve(original, event);
      decoded = decider.evolve(decoded, back);
    }
    expect({ value: decoded.value, context: decoded.context }, `state after ${command.type}`).toStrictEqual({ value: original.value, context: original.context });
    const snap = codec.decodeState(codec.encodeState(decoded));
    expect(snap).toStrictEqual({ value: decoded.value, context: decoded.context });
  });
  return { original, decoded };
}

const network = { id: 'n1', name: 'private', projectId: 'p1', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 1001 };
const subnet = { id: 's1', networkId: 'n1', projectId: 'p1', name: 'v4', ipVersion: 4, cidr: '10.0.0.0/28', gatewayIp: null, allocationPools: [], dnsNameservers: ['8.8.8.8'], hostRoutes: [{ destination: '192.168.0.0/16', nexthop: '10.0.0.14' }], enableDhcp: true };
const port = {
  id: 'p1', networkId: 'n1', projectId: 'p1', name: 'vm1-eth0', macAddress: 'fa:16:3e:12:34:56', fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.2' }], deviceOwner: 'compute:nova',
  deviceId: 'i1', securityGroups: ['g1'], portSecurityEnabled: true, allowedAddressPairs: [{ ipAddress: '10.0.0.100', macAddress: '' }], adminStateUp: true,
};
const rule = { id: 'r1', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: '', description: 'ssh' };

describe('network codec', () => {
  it('carries a network, its MAC registry, its segment and its quota', () => {
    drive('segment_pool', 'vxlan', [
      { type: 'AllocateSegment', networkId: 'n1', segmentationId: 0, rangeMin: 1001, rangeMax: 2000 },
      { type: 'ReleaseSegment', networkId: 'n1' },
    ]);
    const { decoded } = drive('network', 'n1', [
      { type: 'CreateNetwork', network, segmentAllocated: true },
      { type: 'UpdateNetwork', network: { ...network, adminStateUp: false, name: 'renamed' }, updateMask: ['adminStateUp', 'name'] },
      { type: 'AddNetworkPort', portId: 'p1', macAddress: port.macAddress },
      { type: 'RemoveNetworkPort', portId: 'p1', macAddress: port.macAddress },
      { type: 'DeleteNetwork' },
    ]);
    expect(decoded.value).toBe('deleted');
    drive('network_quota', 'p1', [
      { type: 'SetNetworkQuotaLimits', limits: { port: 10, network: -1 } },
      { type: 'ReserveNetworkQuota', consumerId: 'n1', usage: { network: 1 } },
      { type: 'ReleaseNetworkQuota', consumerId: 'n1' },
    ]);
  });

  it('carries a subnet with no gateway, its allocations and releases', () => {
    drive('subnet', 's2', [{ type: 'CreateSubnet', subnet: { ...subnet, id: 's2' }, noGateway: true }]);
    const { decoded } = drive('subnet', 's1', [
      { type: 'CreateSubnet', subnet, noGateway: false },
      { type: 'AllocateIp', portId: 'p1', ipAddress: '', deviceOwner: '' },
      { type: 'AllocateIp', portId: 'p2', ipAddress: '10.0.0.9', deviceOwner: 'compute:nova' },
      { type: 'UpdateSubnet', subnet: { ...subnet, name: 'v4b', enableDhcp: false }, updateMask: ['name', 'enableDhcp'] },
      { type: 'ReleaseIp', portId: 'p1', ipAddress: '' },
      { type: 'ReleaseIp', portId: 'p2', ipAddress: '10.0.0.9' },
      { type: 'DeleteSubnet' },
    ]);
    expect(decoded.value).toBe('deleted');
  });

  it('carries a port through its statuses', () => {
    drive('port', 'p1', [
      { type: 'CreatePort', port },
      { type: 'BindPort', hostId: 'h1' },
      { type: 'ReportPortUp', hostId: 'h1' },
      { type: 'ReportPortDown', hostId: 'h1' },
      { type: 'UpdatePort', port: { ...port, securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [] }, updateMask: ['securityGroups', 'portSecurityEnabled', 'allowedAddressPairs'] },
      { type: 'UnbindPort' },
      { type: 'DeletePort', byOwner: false },
    ]);
  });

  it('carries a router through its gateway and interfaces', () => {
    const r = { id: 'r1', projectId: 'p1', name: 'edge', adminStateUp: true, externalGatewayInfo: null };
    const gateway = { networkId: 'ext', enableSnat: true, externalFixedIps: [{ subnetId: 'ext-s', ipAddress: '203.0.113.2' }] };
    drive('router', 'r1', [
      { type: 'CreateRouter', router: r },
      { type: 'UpdateRouter', router: { ...r, name: 'core' }, updateMask: ['name'] },
      { type: 'SetRouterGateway', externalGatewayInfo: gateway, portId: 'gw1' },
      { type: 'AddRouterInterface', portId: 'p1', subnets: [{ subnetId: 's1', cidr: '10.0.0.0/24' }] },
      { type: 'RemoveRouterInterface', portId: 'p1', subnetId: '' },
      { type: 'ClearRouterGateway' },
      { type: 'DeleteRouter' },
    ]);
  });

  it('carries a floating IP through association and the agent reports', () => {
    const f = { id: 'f1', projectId: 'p1', floatingNetworkId: 'ext', floatingIpAddress: '203.0.113.5', portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' };
    const assoc = { ...f, portId: 'p1', fixedIpAddress: '10.0.0.5', routerId: 'r1' };
    drive('floating_ip', 'f1', [
      { type: 'CreateFloatingIp', floatingIp: f },
      { type: 'UpdateFloatingIp', floatingIp: assoc },
      { type: 'ReportFloatingIpStatus', status: 'ACTIVE', portId: 'p1' },
      { type: 'DeleteFloatingIp' },
    ]);
  });

  it('carries a network agent registration and its removal', () => {
    drive('network_agent', 'h1', [
      { type: 'RegisterNetworkAgent', agent: { hostId: 'h1', tunnelIp: '192.0.2.1', l3: false, dhcp: true } },
      { type: 'RegisterNetworkAgent', agent: { hostId: 'h1', tunnelIp: '192.0.2.9', l3: true, dhcp: true } },
      { type: 'RemoveNetworkAgent' },
    ]);
  });

  it('carries security groups and rules, null port ranges included', () => {
    drive('security_group', 'g1', [
      { type: 'CreateSecurityGroup', securityGroup: { id: 'g1', projectId: 'p1', name: 'default', description: '', stateful: true, isDefault: true } },
      { type: 'AddSecurityGroupRule', rule },
      { type: 'AddSecurityGroupRule', rule: { ...rule, id: 'r2', protocol: 'icmp', portRangeMin: 8, portRangeMax: null, remoteIpPrefix: '' } },
      { type: 'UpdateSecurityGroup', securityGroup: { id: 'g1', projectId: 'p1', name: 'default', description: 'ours', stateful: true, isDefault: true }, updateMask: ['description'] },
      { type: 'RemoveSecurityGroupRule', ruleId: 'g1-egress-ipv6' },
      { type: 'DeleteSecurityGroup' },
    ]);
  });

  it('has seen every command and event type of every network aggregate (runs last)', () => {
    for (const a of networkAggregates) {
      const s = seen.get(a.aggregateType);
      expect([...(s?.commands ?? [])].sort(), `${a.aggregateType} commands`).toEqual([...a.commandTypes].sort());
      expect([...(s?.events ?? [])].sort(), `${a.aggregateType} events`).toEqual([...a.eventTypes].sort());
    }
  });
});

describe('network codec: refusals', () => {
  const refusal = (aggregateType: string, command: M) => {
    const codec = networkCodecFor(aggregateType);
    try {
      codec.decodeCommand(command.type, codec.encodeCommand(command));
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      return { field: (e as InvalidArgumentError).field, message: (e as Error).message };
    }
    throw new Error(`${command.type} was accepted`);
  };

  it('refuses bad fields at decode, naming them', () => {
    expect(refusal('subnet', { type: 'CreateSubnet', subnet: { ...subnet, cidr: '10.0.0.1/28' }, noGateway: false })).toMatchObject({ field: 'subnet.cidr', message: expect.stringContaining('host bits') });
    expect(refusal('subnet', { type: 'AllocateIp', portId: 'p1', ipAddress: '10.0.0.x', deviceOwner: '' })).toMatchObject({ field: 'ip_address' });
    expect(refusal('port', { type: 'CreatePort', port: { ...port, macAddress: 'zz' } })).toMatchObject({ field: 'port.mac_address' });
    expect(refusal('security_group', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: 'udp', portRangeMin: null, portRangeMax: 53 } })).toMatchObject({ field: 'rule.port_range_min' });
    expect(refusal('network', { type: 'CreateNetwork', network: { ...network, networkType: 'vlan' }, segmentAllocated: false })).toMatchObject({ field: 'network.physical_network' });
  });

  it('lists every aggregate and distinct event types', () => {
    expect(networkDefinitions.map((d) => d.decider.aggregateType)).toEqual(['network', 'segment_pool', 'subnet', 'port', 'security_group', 'router', 'floating_ip', 'network_quota', 'network_agent']);
    expect(new Set(networkEventTypes).size).toBe(networkEventTypes.length);
    expect(() => networkCodecFor('volume')).toThrow(/no network aggregate/);
  });
});
