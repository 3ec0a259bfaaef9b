// The pure part of DHCP (dhcp.ts): which networks get a server on a host and what it serves, the
// dnsmasq files and command line, when a change needs a restart, and the flows. The same plans and
// flows serve real guests in test/network/dhcp.test.ts (udhcpc through OVS into dnsmasq).
import { describe, expect, it } from 'vitest';
import type { Network, Port, Subnet } from '../../domains/network/network.types.js';
import { NetworkView } from '../../domains/network/network.view.js';
import {
  compileDhcpFlows, dhcpDeviceNames, dhcpServerMac, dnsmasqArgs, hostsChangeNeedsRestart, hostsFileText, keptLeases, optionsFileText, planDhcp,
  type DhcpServerPort,
} from './dhcp.js';
import type { LocalPort } from './flows.js';

const network = (id: string, over: Partial<Network> = {}): Network => ({
  id, name: id, projectId: 'p', adminStateUp: true, shared: false, external: false, mtu: 1450, networkType: 'vxlan', physicalNetwork: '', segmentationId: 7, ...over,
});
const subnet = (id: string, networkId: string, cidr: string, over: Partial<Subnet> = {}): Subnet => ({
  id, networkId, projectId: 'p', name: id, ipVersion: 4, cidr, gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true, ...over,
});
const port = (id: string, networkId: string, mac: string, fixedIps: { subnetId: string; ipAddress: string }[]): Port => ({
  id, networkId, projectId: 'p', name: id, macAddress: mac, fixedIps, deviceOwner: 'compute:nova', deviceId: '', securityGroups: [], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
});
const local = (p: Port, ofport: number, portSecurity = true): LocalPort =>
  ({ portId: p.id, ofport, mac: p.macAddress, ips: p.fixedIps.map((f) => f.ipAddress), networkId: p.networkId, portSecurity, firewall: null }) as LocalPort;

function view(): { view: NetworkView; ports: Record<string, Port> } {
  const v = new NetworkView();
  v.networks.set('net-a', network('net-a'));
  v.networks.set('net-b', network('net-b', { mtu: 0, networkType: 'vlan' }));
  v.subnets.set('sa4', subnet('sa4', 'net-a', '10.0.0.0/24', { gatewayIp: '10.0.0.1', dnsNameservers: ['192.0.2.53'], hostRoutes: [{ destination: '192.168.0.0/16', nexthop: '10.0.0.254' }] }));
  v.subnets.set('sa6', subnet('sa6', 'net-a', 'fd00::/64', { ipVersion: 6, gatewayIp: 'fd00::1' }));
  v.subnets.set('sb', subnet('sb', 'net-b', '10.1.0.0/29'));
  v.subnets.set('sb-off', subnet('sb-off', 'net-b', '10.2.0.0/24', { enableDhcp: false }));
  const ports = {
    a1: port('a1', 'net-a', 'FA:16:3E:00:00:01', [{ subnetId: 'sa4', ipAddress: '10.0.0.11' }, { subnetId: 'sa6', ipAddress: 'fd00::11' }]),
    a2: port('a2', 'net-a', 'fa:16:3e:00:00:02', [{ subnetId: 'sa4', ipAddress: '10.0.0.12' }]),
    b1: port('b1', 'net-b', 'fa:16:3e:00:00:03', [{ subnetId: 'sb', ipAddress: '10.1.0.6' }]),
    // On the subnet without DHCP only: no server for it.
    b2: port('b2', 'net-b', 'fa:16:3e:00:00:04', [{ subnetId: 'sb-off', ipAddress: '10.2.0.4' }]),
  };
  for (const p of Object.values(ports)) v.ports.set(p.id, { port: p, hostId: 'h1', status: 'ACTIVE', version: 1 });
  return { view: v, ports };
}

describe('DHCP plans', () => {
  it('serve the local ports their fixed IPv4 addresses on DHCP subnets, the same whatever the order', () => {
    const { view: v, ports } = view();
    const locals = [local(ports.a1, 1), local(ports.a2, 2), local(ports.b1, 3), local(ports.b2, 4)];
    const plans = planDhcp(v, locals);
    expect(plans.map((p) => p.networkId)).toEqual(['net-a', 'net-b']);
    expect(planDhcp(v, [...locals].reverse())).toEqual(plans);
    const [a, b] = plans;
    expect(a!.hosts).toEqual([
      { mac: 'fa:16:3e:00:00:01', ip: '10.0.0.11', subnetId: 'sa4' },
      { mac: 'fa:16:3e:00:00:02', ip: '10.0.0.12', subnetId: 'sa4' },
    ]);
    expect(a!.subnets).toEqual([{ subnetId: 'sa4', networkAddress: '10.0.0.0', netmask: '255.255.255.0', prefix: 24, serverIp: '10.0.0.1', gatewayIp: '10.0.0.1', dnsNameservers: ['192.0.2.53'], hostRoutes: [{ destination: '192.168.0.0/16', nexthop: '10.0.0.254' }] }]);
    expect(a!.mtu).toBe(1450);
    // No gateway: the server takes the highest address no port holds (.6 is b1's); the MTU is the type's default.
    expect(b!.subnets[0]).toMatchObject({ serverIp: '10.1.0.5', gatewayIp: null });
    expect(b!.mtu).toBe(1500);
    expect(b!.clients.map((c) => c.portId)).toEqual(['b1']);
  });

  it('need no server where no local port has an address on a DHCP subnet', () => {
    const { view: v, ports } = view();
    expect(planDhcp(v, [local(ports.b2, 4)])).toEqual([]);
    expect(planDhcp(v, [])).toEqual([]);
    // A router interface holds the gateway address itself: no DHCP for it.
    const routerPort = { ...port('r1', 'net-a', 'fa:16:3e:00:00:09', [{ subnetId: 'sa4', ipAddress: '10.0.0.1' }]), deviceOwner: 'network:router_interface' };
    v.ports.set('r1', { port: routerPort, hostId: 'h1', status: 'ACTIVE', version: 1 });
    expect(planDhcp(v, [local(routerPort, 9, false)])).toEqual([]);
    v.subnets.set('sa4', { ...v.subnets.get('sa4')!, enableDhcp: false });
    expect(planDhcp(v, [local(ports.a1, 1)])).toEqual([]);
  });
});

describe('dnsmasq files and command line', () => {
  const { view: v, ports } = view();
  const [a, b] = planDhcp(v, [local(ports.a1, 1), local(ports.a2, 2), local(ports.b1, 3)]);

  it('list one static host per address, and the options per subnet', () => {
    expect(hostsFileText(a!)).toBe('fa:16:3e:00:00:01,10.0.0.11,host-10-0-0-11\nfa:16:3e:00:00:02,10.0.0.12,host-10-0-0-12\n');
    expect(optionsFileText(a!)).toBe([
      'tag:subnet-sa4,option:router,10.0.0.1',
      'tag:subnet-sa4,option:dns-server,192.0.2.53',
      'tag:subnet-sa4,option:classless-static-route,192.168.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1',
      'tag:subnet-sa4,249,192.168.0.0/16,10.0.0.254,0.0.0.0/0,10.0.0.1',
      '',
    ].join('\n'));
    // No gateway and no DNS servers: empty options, so that dnsmasq does not offer itself.
    expect(optionsFileText(b!)).toBe('tag:subnet-sb,option:router\ntag:subnet-sb,option:dns-server\n');
  });

  it('give dnsmasq a static range only, the MTU and its files', () => {
    const paths = { pidFile: '/s/pid', hostsFile: '/s/host', optionsFile: '/s/opts', leaseFile: '/s/leases', logFile: '/s/log' };
    const args = dnsmasqArgs(a!, 'dhcp0', paths, 600);
    expect(args).toContain('--dhcp-range=set:subnet-sa4,10.0.0.0,static,255.255.255.0,600s');
    expect(args).toContain('--dhcp-option-force=option:mtu,1450');
    expect(args).toContain('--port=0');
    expect(args).toContain('--interface=dhcp0');
    expect(args).toContain('--dhcp-hostsfile=/s/host');
    expect(args.filter((x) => x.startsWith('--dhcp-range')).every((x) => x.includes(',static,'))).toBe(true);
  });

  it('restart only when a served address goes or changes (added hosts are a reload)', () => {
    const one = 'aa,10.0.0.1,h1\n';
    const two = 'aa,10.0.0.1,h1\nbb,10.0.0.2,h2\n';
    expect(hostsChangeNeedsRestart(one, two)).toBe(false);
    expect(hostsChangeNeedsRestart(two, one)).toBe(true);
    expect(hostsChangeNeedsRestart(one, 'aa,10.0.0.9,h9\n')).toBe(true);
    expect(hostsChangeNeedsRestart('', one)).toBe(false);
  });

  it('keep only the leases of served addresses when dnsmasq restarts', () => {
    const leases = [
      '1764700000 fa:16:3e:00:00:01 10.0.0.11 host-10-0-0-11 01:fa:16:3e:00:00:01',
      '1764700000 fa:16:3e:00:00:07 10.0.0.17 host-10-0-0-17 *', // a port gone
      '1764700000 fa:16:3e:00:00:02 10.0.0.99 host-10-0-0-99 *', // a port whose address changed
      '',
    ].join('\n');
    expect(keptLeases(leases, a!)).toBe('1764700000 fa:16:3e:00:00:01 10.0.0.11 host-10-0-0-11 01:fa:16:3e:00:00:01\n');
    expect(keptLeases('', a!)).toBe('');
  });

  it('name devices within 15 characters and give each host its own stable server MAC', () => {
    const names = dhcpDeviceNames('3f2a1c4e-0000-4000-8000-000000000001');
    expect(names.bridgeSide.length).toBeLessThanOrEqual(15);
    expect(dhcpDeviceNames('net-a').bridgeSide).not.toBe(dhcpDeviceNames('net-b').bridgeSide);
    expect(dhcpServerMac('h1', 'net-a')).toBe(dhcpServerMac('h1', 'net-a'));
    expect(dhcpServerMac('h1', 'net-a')).not.toBe(dhcpServerMac('h2', 'net-a'));
    expect(dhcpServerMac('h1', 'net-a')).toMatch(/^02:d4(:[0-9a-f]{2}){4}$/);
  });
});

describe('DHCP flows', () => {
  const { ports } = view();
  const locals = [local(ports.a1, 1), local(ports.a2, 2, false), local(ports.b1, 3)];
  const server: DhcpServerPort = {
    networkId: 'net-a', ofport: 50, mac: '02:d4:00:00:00:01',
    clients: [
      { portId: 'a1', ofport: 1, mac: 'fa:16:3e:00:00:01', portSecurity: true },
      { portId: 'a2', ofport: 2, mac: 'fa:16:3e:00:00:02', portSecurity: false },
    ],
  };
  const flows = compileDhcpFlows([server], locals);

  it('send the clients\' requests to their server (from their own MAC when port security is on)', () => {
    expect(flows).toContain('table=0,priority=125,udp,tp_src=68,tp_dst=67,in_port=1,dl_src=fa:16:3e:00:00:01,actions=set_field:02:d4:00:00:00:01->eth_dst,output:50');
    expect(flows).toContain('table=0,priority=125,udp,tp_src=68,tp_dst=67,in_port=2,actions=set_field:02:d4:00:00:00:01->eth_dst,output:50');
    // b1's network has no server here: its requests take the normal path.
    expect(flows.some((f) => f.includes('in_port=3,') && f.includes('tp_dst=67'))).toBe(false);
  });

  it('send the server\'s replies to its local clients only, and nothing else it sends anywhere', () => {
    const fromServer = flows.filter((f) => f.includes('in_port=50'));
    expect(fromServer).toEqual([
      'table=0,priority=125,udp,tp_src=67,tp_dst=68,in_port=50,dl_src=02:d4:00:00:00:01,dl_dst=fa:16:3e:00:00:01,actions=output:1',
      'table=0,priority=125,udp,tp_src=67,tp_dst=68,in_port=50,dl_src=02:d4:00:00:00:01,dl_dst=fa:16:3e:00:00:02,actions=output:2',
      'table=0,priority=125,udp,tp_src=67,tp_dst=68,in_port=50,dl_src=02:d4:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,actions=output:1,output:2',
      'table=0,priority=124,in_port=50,actions=drop',
    ]);
    expect(fromServer.some((f) => /tun_id|goto_table|resubmit/.test(f))).toBe(false);
  });

  it('drop DHCP server replies from ports with port security, and are the same whatever the order', () => {
    expect(flows).toContain('table=0,priority=120,udp,tp_src=67,tp_dst=68,in_port=1,actions=drop');
    expect(flows).toContain('table=0,priority=120,udp,tp_src=67,tp_dst=68,in_port=3,actions=drop');
    expect(flows.some((f) => f.includes('priority=120') && f.includes('in_port=2,'))).toBe(false);
    expect(compileDhcpFlows([{ ...server, clients: [...server.clients].reverse() }], [...locals].reverse())).toEqual(flows);
    // Without servers only the spoofing drops remain.
    expect(compileDhcpFlows([], locals)).toEqual(flows.filter((f) => f.includes('priority=120')));
  });
});
