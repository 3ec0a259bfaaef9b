// Network field rules as Neutron states them: each good command passes, each bad field is refused
// with InvalidArgumentError naming it by its proto path.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../kernel/rejection.js';
import { validateNetworkCommand } from './network.validation.js';

type C = { type: string } & Record<string, unknown>;

function refused(command: C): string | undefined {
  try {
    validateNetworkCommand(command);
    return undefined;
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    expect(e.message.startsWith(`${e.field}: `)).toBe(true);
    return e.field;
  }
}

const network = { id: 'n1', name: 'net', projectId: 'p1', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: '', physicalNetwork: '', segmentationId: 0 };
const subnet = { id: 's1', networkId: 'n1', projectId: 'p1', name: '', ipVersion: 4, cidr: '10.0.0.0/24', gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true };
const port = { id: 'p1', networkId: 'n1', projectId: 'p1', name: '', macAddress: 'fa:16:3e:00:00:01', fixedIps: [], deviceOwner: '', deviceId: '', securityGroups: [], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true };
const rule = { id: 'r1', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '', remoteGroupId: '', description: '' };

describe('network field rules', () => {
  it.each<[string, C]>([
    ['a tenant network', { type: 'CreateNetwork', network }],
    ['a vlan provider network', { type: 'CreateNetwork', network: { ...network, networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 4094, mtu: 9000 } }],
    ['a flat provider network', { type: 'CreateNetwork', network: { ...network, networkType: 'flat', physicalNetwork: 'physnet1' } }],
    ['an IPv4 subnet', { type: 'CreateSubnet', subnet: { ...subnet, dnsNameservers: ['8.8.8.8'], hostRoutes: [{ destination: '192.168.0.0/16', nexthop: '10.0.0.254' }] } }],
    ['an IPv6 subnet with pools', { type: 'CreateSubnet', subnet: { ...subnet, ipVersion: 6, cidr: '2001:db8::/64', gatewayIp: '2001:db8::1', allocationPools: [{ start: '2001:db8::10', end: '2001:db8::20' }] } }],
    ['a port', { type: 'CreatePort', port: { ...port, fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.5' }], allowedAddressPairs: [{ ipAddress: '10.0.0.0/24', macAddress: '' }] } }],
    ['an icmp rule', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: 'icmp', portRangeMin: 8, portRangeMax: 0 } }],
    ['an any rule', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: '', portRangeMin: null, portRangeMax: null, remoteGroupId: 'g1' } }],
    ['a numbered protocol', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: '132', ethertype: 'IPv6', remoteIpPrefix: '2001:db8::/32' } }],
  ])('accepts %s', (_what, command) => expect(refused(command)).toBeUndefined());

  it.each<[string, C, string]>([
    ['a network type', { type: 'CreateNetwork', network: { ...network, networkType: 'gre' } }, 'network.network_type'],
    ['a vlan without physical network', { type: 'CreateNetwork', network: { ...network, networkType: 'vlan', segmentationId: 5 } }, 'network.physical_network'],
    ['a vxlan with one', { type: 'CreateNetwork', network: { ...network, networkType: 'vxlan', physicalNetwork: 'x' } }, 'network.physical_network'],
    ['a flat segmentation id', { type: 'CreateNetwork', network: { ...network, networkType: 'flat', physicalNetwork: 'p', segmentationId: 3 } }, 'network.segmentation_id'],
    ['a segmentation id without type', { type: 'CreateNetwork', network: { ...network, segmentationId: 3 } }, 'network.network_type'],
    ['an MTU', { type: 'CreateNetwork', network: { ...network, mtu: 20 } }, 'network.mtu'],
    ['an update mask', { type: 'UpdateNetwork', network, updateMask: ['networkType'] }, 'network.network_type'],
    ['an empty mask', { type: 'UpdateNetwork', network, updateMask: [] }, 'update_mask'],
    ['a CIDR', { type: 'CreateSubnet', subnet: { ...subnet, cidr: '10.0.0.0' } }, 'subnet.cidr'],
    ['a prefix', { type: 'CreateSubnet', subnet: { ...subnet, cidr: '10.0.0.0/33' } }, 'subnet.cidr'],
    ['host bits', { type: 'CreateSubnet', subnet: { ...subnet, cidr: '10.0.0.5/24' } }, 'subnet.cidr'],
    ['a version mismatch', { type: 'CreateSubnet', subnet: { ...subnet, ipVersion: 6 } }, 'subnet.cidr'],
    ['an ip version', { type: 'CreateSubnet', subnet: { ...subnet, ipVersion: 5 } }, 'subnet.ip_version'],
    ['a gateway outside', { type: 'CreateSubnet', subnet: { ...subnet, gatewayIp: '10.0.1.1' } }, 'subnet.gateway_ip'],
    ['a gateway with no_gateway', { type: 'CreateSubnet', subnet: { ...subnet, gatewayIp: '10.0.0.1' }, noGateway: true }, 'subnet.gateway_ip'],
    ['a pool outside', { type: 'CreateSubnet', subnet: { ...subnet, allocationPools: [{ start: '10.0.0.10', end: '10.0.1.10' }] } }, 'subnet.allocation_pools[0].end'],
    ['a reversed pool', { type: 'CreateSubnet', subnet: { ...subnet, allocationPools: [{ start: '10.0.0.20', end: '10.0.0.10' }] } }, 'subnet.allocation_pools[0]'],
    ['overlapping pools', { type: 'CreateSubnet', subnet: { ...subnet, allocationPools: [{ start: '10.0.0.10', end: '10.0.0.20' }, { start: '10.0.0.20', end: '10.0.0.30' }] } }, 'subnet.allocation_pools[1]'],
    ['a pool with the gateway', { type: 'CreateSubnet', subnet: { ...subnet, allocationPools: [{ start: '10.0.0.1', end: '10.0.0.20' }] } }, 'subnet.allocation_pools[0]'],
    ['a pool address', { type: 'CreateSubnet', subnet: { ...subnet, allocationPools: [{ start: 'x', end: '10.0.0.20' }] } }, 'subnet.allocation_pools[0].start'],
    ['a name server', { type: 'CreateSubnet', subnet: { ...subnet, dnsNameservers: ['2001:db8::1'] } }, 'subnet.dns_nameservers[0]'],
    ['a host route', { type: 'CreateSubnet', subnet: { ...subnet, hostRoutes: [{ destination: '192.168.0.1/16', nexthop: '10.0.0.1' }] } }, 'subnet.host_routes[0].destination'],
    ['a MAC', { type: 'CreatePort', port: { ...port, macAddress: 'fa:16:3e:00:00' } }, 'port.mac_address'],
    ['a multicast MAC', { type: 'CreatePort', port: { ...port, macAddress: '01:00:5e:00:00:01' } }, 'port.mac_address'],
    ['a fixed IP', { type: 'CreatePort', port: { ...port, fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0' }] } }, 'port.fixed_ips[0].ip_address'],
    ['an address pair', { type: 'CreatePort', port: { ...port, allowedAddressPairs: [{ ipAddress: 'x', macAddress: '' }] } }, 'port.allowed_address_pairs[0].ip_address'],
    ['a host', { type: 'BindPort', hostId: '' }, 'host_id'],
    ['a direction', { type: 'AddSecurityGroupRule', rule: { ...rule, direction: 'in' } }, 'rule.direction'],
    ['an ethertype', { type: 'AddSecurityGroupRule', rule: { ...rule, ethertype: 'ipv4' } }, 'rule.ethertype'],
    ['a protocol', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: 'tcpx' } }, 'rule.protocol'],
    ['a protocol number', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: '256' } }, 'rule.protocol'],
    ['a port range', { type: 'AddSecurityGroupRule', rule: { ...rule, portRangeMin: 80, portRangeMax: 22 } }, 'rule.port_range_max'],
    ['a port', { type: 'AddSecurityGroupRule', rule: { ...rule, portRangeMin: 0, portRangeMax: 22 } }, 'rule.port_range_min'],
    ['ports for any', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: '' } }, 'rule.port_range_min'],
    ['an icmp code without type', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: 'icmp', portRangeMin: null, portRangeMax: 0 } }, 'rule.port_range_min'],
    ['an icmp type', { type: 'AddSecurityGroupRule', rule: { ...rule, protocol: 'icmp', portRangeMin: 256, portRangeMax: null } }, 'rule.port_range_min'],
    ['a prefix and a group', { type: 'AddSecurityGroupRule', rule: { ...rule, remoteIpPrefix: '10.0.0.0/8', remoteGroupId: 'g' } }, 'rule.remote_ip_prefix'],
    ['a prefix of the other family', { type: 'AddSecurityGroupRule', rule: { ...rule, remoteIpPrefix: '2001:db8::/32' } }, 'rule.remote_ip_prefix'],
    ['a segment range', { type: 'AllocateSegment', networkId: 'n1', segmentationId: 0, rangeMin: 10, rangeMax: 5 }, 'range_max'],
    ['a quota name', { type: 'SetNetworkQuotaLimits', limits: { volumes: 3 } }, 'limits'],
    ['a quota limit', { type: 'SetNetworkQuotaLimits', limits: { port: -2 } }, 'limits.port'],
  ])('refuses %s', (_what, command, field) => expect(refused(command)).toBe(field));
});
