// The L3 agent's pure part: from the network view to the routers a host runs (namespace, qr-/qg-
// ports with their addresses and prefixes, default route, SNAT, floating IP pairs), the nat table
// they get, which router ports an L3 agent binds to itself, and the floating IP reports due.
import { describe, expect, it } from 'vitest';
import { NetworkView, type NetworkEvent } from '../../domains/network/network.view.js';
import type { FloatingIp, Network, Port, Router, Subnet } from '../../domains/network/network.types.js';
import { desiredRouters, dnatMappings, floatingIpReports, natRules, normalizeNatSave, routerHostOf, routerPortsToBind } from './l3.js';

let version = 0;
const ev = (aggregateType: string, aggregateId: string, type: string, body: Record<string, unknown>) =>
  ({ aggregateType, aggregateId, type, version: ++version, ...body }) as NetworkEvent;

function network(id: string, over: Partial<Network> = {}): NetworkEvent {
  return ev('network', id, 'NetworkCreated', {
    network: { id, name: id, projectId: 'p', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 7, ...over },
  });
}
function subnet(id: string, networkId: string, cidr: string, gatewayIp: string | null): NetworkEvent {
  const s: Subnet = { id, networkId, projectId: 'p', name: id, ipVersion: 4, cidr, gatewayIp, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: false };
  return ev('subnet', id, 'SubnetCreated', { subnet: s });
}
function port(id: string, networkId: string, subnetId: string, ip: string, owner: string, deviceId: string, mac = '02:00:00:00:00:01'): NetworkEvent {
  const p: Port = {
    id, networkId, projectId: 'p', name: id, macAddress: mac, fixedIps: [{ subnetId, ipAddress: ip }], deviceOwner: owner, deviceId,
    securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [], adminStateUp: true,
  };
  return ev('port', id, 'PortCreated', { port: p });
}
const bound = (portId: string, hostId: string) => ev('port', portId, 'PortBound', { hostId });
function router(id: string, gateway: { networkId: string; enableSnat: boolean } | null, adminStateUp = true): NetworkEvent {
  const r: Router = { id, projectId: 'p', name: id, adminStateUp, externalGatewayInfo: gateway && { ...gateway, externalFixedIps: [] } };
  return ev('router', id, 'RouterCreated', { router: r });
}
function floatingIp(id: string, address: string, association: { portId: string; fixedIpAddress: string; routerId: string } | null, status: FloatingIp['status'] = 'DOWN'): NetworkEvent {
  const f: FloatingIp = { id, projectId: 'p', floatingNetworkId: 'ext', floatingIpAddress: address, portId: '', fixedIpAddress: '', routerId: '', ...association, status };
  return ev('floating_ip', id, 'FloatingIpCreated', { floatingIp: f });
}

/** Two tenant subnets and an external one; router r1 joins them, gateway on ext, FIP 203.0.113.20 -> 10.1.0.5. */
function world(opts: { enableSnat?: boolean } = {}): NetworkView {
  const v = new NetworkView();
  for (const e of [
    network('net-a'), network('net-b', { mtu: 1400 }), network('ext', { external: true }),
    subnet('sub-a', 'net-a', '10.1.0.0/24', '10.1.0.1'), subnet('sub-b', 'net-b', '10.2.0.0/16', '10.2.0.1'), subnet('sub-ext', 'ext', '203.0.113.0/24', '203.0.113.1'),
    router('r1', { networkId: 'ext', enableSnat: opts.enableSnat ?? true }),
    port('rif-a-0123456789', 'net-a', 'sub-a', '10.1.0.1', 'network:router_interface', 'r1', '02:00:00:00:01:01'),
    port('rif-b', 'net-b', 'sub-b', '10.2.0.1', 'network:router_interface', 'r1', '02:00:00:00:01:02'),
    port('rgw', 'ext', 'sub-ext', '203.0.113.2', 'network:router_gateway', 'r1', '02:00:00:00:01:03'),
    port('vm-a', 'net-a', 'sub-a', '10.1.0.5', 'compute:nova', 'vm1'),
    floatingIp('fip1', '203.0.113.20', { portId: 'vm-a', fixedIpAddress: '10.1.0.5', routerId: 'r1' }),
  ]) v.apply(e);
  return v;
}
const bindAll = (v: NetworkView, hostId: string) => {
  for (const id of ['rif-a-0123456789', 'rif-b', 'rgw']) v.apply(bound(id, hostId));
};

describe('desiredRouters', () => {
  it("gives a router its namespace, qr-/qg- ports with the subnets' prefixes, default route, SNAT and floating IP", () => {
    const v = world();
    bindAll(v, 'h1');
    const [r, ...more] = desiredRouters(v, 'h1');
    expect(more).toEqual([]);
    expect(r).toEqual({
      routerId: 'r1',
      namespace: 'qrouter-r1',
      interfaces: [
        { portId: 'rif-a-0123456789', device: 'qr-rif-a-01234', mac: '02:00:00:00:01:01', addresses: ['10.1.0.1/24'], mtu: 1450 },
        { portId: 'rif-b', device: 'qr-rif-b', mac: '02:00:00:00:01:02', addresses: ['10.2.0.1/16'], mtu: 1400 },
      ],
      gateway: { portId: 'rgw', device: 'qg-rgw', mac: '02:00:00:00:01:03', addresses: ['203.0.113.2/24', '203.0.113.20/32'], mtu: 1450, defaultRoute: '203.0.113.1' },
      snatSources: ['10.1.0.0/24', '10.2.0.0/16'],
      snatAddress: '203.0.113.2',
      floatingIps: [{ floatingIpId: 'fip1', floatingIp: '203.0.113.20', fixedIp: '10.1.0.5' }],
    });
    expect(desiredRouters(v, 'h2')).toEqual([]);
    expect(desiredRouters(v, 'h1', 'qrouter-test-')[0]!.namespace).toBe('qrouter-test-r1');
  });

  it('without enable_snat: no gateway SNAT, the floating IP still translated both ways', () => {
    const v = world({ enableSnat: false });
    bindAll(v, 'h1');
    const r = desiredRouters(v, 'h1')[0]!;
    expect(r.snatAddress).toBeNull();
    expect(natRules(r).filter((l) => l.includes('NAT'))).toEqual([
      '-A strata-dnat -d 203.0.113.20/32 -j DNAT --to-destination 10.1.0.5',
      '-A strata-snat -s 10.1.0.5/32 -o qg-rgw -j SNAT --to-source 203.0.113.20',
    ]);
  });

  it('a disassociated floating IP leaves the gateway and the nat table; a router without a gateway has neither', () => {
    const v = world();
    bindAll(v, 'h1');
    const f = v.floatingIps.get('fip1')!.floatingIp;
    v.apply(ev('floating_ip', 'fip1', 'FloatingIpUpdated', { floatingIp: { ...f, portId: '', fixedIpAddress: '', routerId: '' } }));
    const r = desiredRouters(v, 'h1')[0]!;
    expect(r.floatingIps).toEqual([]);
    expect(r.gateway!.addresses).toEqual(['203.0.113.2/24']);
    expect(natRules(r).filter((l) => l.includes('NAT'))).toEqual([
      '-A strata-snat -s 10.1.0.0/24 -o qg-rgw -j SNAT --to-source 203.0.113.2',
      '-A strata-snat -s 10.2.0.0/16 -o qg-rgw -j SNAT --to-source 203.0.113.2',
    ]);

    v.apply(ev('router', 'r1', 'RouterGatewayCleared', { router: { ...v.routers.get('r1')!.router, externalGatewayInfo: null } }));
    const plain = desiredRouters(v, 'h1')[0]!;
    expect(plain.gateway).toBeNull();
    expect(plain.interfaces.map((i) => i.device)).toEqual(['qr-rif-a-01234', 'qr-rif-b']);
    expect(natRules(plain).filter((l) => l.includes('NAT'))).toEqual([]);
  });

  it('a floating IP whose fixed address no interface reaches is not served', () => {
    const v = world();
    bindAll(v, 'h1');
    const f = v.floatingIps.get('fip1')!.floatingIp;
    v.apply(ev('floating_ip', 'fip1', 'FloatingIpUpdated', { floatingIp: { ...f, fixedIpAddress: '10.9.0.5' } }));
    expect(desiredRouters(v, 'h1')[0]!.floatingIps).toEqual([]);
  });

  it('an admin-down or deleted router is not run; its unbound ports are nobody’s to bind', () => {
    const v = world();
    bindAll(v, 'h1');
    v.apply(ev('router', 'r1', 'RouterUpdated', { router: { ...v.routers.get('r1')!.router, adminStateUp: false } }));
    expect(desiredRouters(v, 'h1')).toEqual([]);
    v.apply(ev('router', 'r1', 'RouterDeleted', { router: v.routers.get('r1')!.router }));
    expect(routerPortsToBind(v, 'h1')).toEqual([]);
  });
});

describe('scheduling', () => {
  it('an unscheduled router is any L3 agent’s to claim; once bound it is its host’s, which binds the stragglers', () => {
    const v = world();
    expect(routerHostOf(v, 'r1')).toBe('');
    expect(routerPortsToBind(v, 'h1').map((p) => p.portId)).toEqual(['rgw', 'rif-a-0123456789', 'rif-b']);
    expect(routerPortsToBind(v, 'h2').map((p) => p.portId)).toEqual(['rgw', 'rif-a-0123456789', 'rif-b']);
    // Two agents raced: h1 bound an interface, h2 the gateway. The gateway's host wins.
    v.apply(bound('rif-a-0123456789', 'h1'));
    v.apply(bound('rgw', 'h2'));
    expect(routerHostOf(v, 'r1')).toBe('h2');
    expect(routerPortsToBind(v, 'h1')).toEqual([]);
    expect(routerPortsToBind(v, 'h2').map((p) => p.portId)).toEqual(['rif-a-0123456789', 'rif-b']);
    // Until then h2 runs the router with the ports it has.
    expect(desiredRouters(v, 'h2')[0]!.interfaces).toEqual([]);
    expect(desiredRouters(v, 'h1')).toEqual([]);
  });
});

describe('floatingIpReports', () => {
  it('ACTIVE once served here, DOWN once an ACTIVE one is no longer served', () => {
    const v = world();
    bindAll(v, 'h1');
    expect(floatingIpReports(v, 'h1', desiredRouters(v, 'h1'))).toEqual([{ floatingIpId: 'fip1', version: expect.any(Number), status: 'ACTIVE', portId: 'vm-a' }]);
    v.apply(ev('floating_ip', 'fip1', 'FloatingIpStatusChanged', { status: 'ACTIVE' }));
    expect(floatingIpReports(v, 'h1', desiredRouters(v, 'h1'))).toEqual([]);
    expect(floatingIpReports(v, 'h2', desiredRouters(v, 'h2'))).toEqual([]); // not h2's router
    const f = v.floatingIps.get('fip1')!.floatingIp;
    v.apply(ev('floating_ip', 'fip1', 'FloatingIpUpdated', { floatingIp: { ...f, portId: '', fixedIpAddress: '', routerId: '' } }));
    expect(floatingIpReports(v, 'h1', desiredRouters(v, 'h1'))).toEqual([{ floatingIpId: 'fip1', version: expect.any(Number), status: 'DOWN', portId: '' }]);
  });
});

describe('natRules', () => {
  it('is the whole nat table, floating IPs before the gateway SNAT, only towards the gateway', () => {
    const v = world();
    bindAll(v, 'h1');
    expect(natRules(desiredRouters(v, 'h1')[0]!)).toEqual([
      '*nat',
      ':PREROUTING ACCEPT',
      ':INPUT ACCEPT',
      ':OUTPUT ACCEPT',
      ':POSTROUTING ACCEPT',
      ':strata-dnat -',
      ':strata-snat -',
      '-A PREROUTING -j strata-dnat',
      '-A OUTPUT -j strata-dnat',
      '-A POSTROUTING -j strata-snat',
      '-A strata-dnat -d 203.0.113.20/32 -j DNAT --to-destination 10.1.0.5',
      '-A strata-snat -s 10.1.0.5/32 -o qg-rgw -j SNAT --to-source 203.0.113.20',
      '-A strata-snat -s 10.1.0.0/24 -o qg-rgw -j SNAT --to-source 203.0.113.2',
      '-A strata-snat -s 10.2.0.0/16 -o qg-rgw -j SNAT --to-source 203.0.113.2',
      'COMMIT',
    ]);
  });

  it('reads back the floating -> fixed translations (what conntrack entries to forget when they change)', () => {
    const v = world();
    bindAll(v, 'h1');
    expect([...dnatMappings(natRules(desiredRouters(v, 'h1')[0]!))]).toEqual([['203.0.113.20', '10.1.0.5']]);
  });

  it("compares with iptables-save's output without its comments and counters", () => {
    const saved = '# Generated by iptables-save v1.8.9\n*nat\n:PREROUTING ACCEPT [3:180]\n:strata-dnat - [0:0]\n-A PREROUTING -j strata-dnat\nCOMMIT\n# Completed\n';
    expect(normalizeNatSave(saved)).toEqual(['*nat', ':PREROUTING ACCEPT', ':strata-dnat -', '-A PREROUTING -j strata-dnat', 'COMMIT']);
  });
});
