// Issue 6, routers and floating IPs through NetworkService over a real TLS gRPC server, the network
// deciders hosted by the cloud's runtime. A router's gateway is a port on an external network
// holding an address of its subnet; an interface is a port holding the subnet's gateway IP, or a
// port given; Neutron's refusals (not external, no gateway IP, a subnet twice, overlapping CIDRs,
// RouterInUse, a router's port deleted behind its back, a subnet in use) change nothing. A floating
// IP takes an address through a port on the external network, finds its router from the port's
// subnet (none: "not reachable"), goes ACTIVE when the L3 agent says so, DOWN when disassociated,
// is disassociated when its port is deleted and gives its address back when deleted.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataClient } from '../../cli/client.js';
import { errorOf } from '../identity/cloud.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';

const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const RESOURCE_EXHAUSTED = 8;

const uniq = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const L3_AGENT = { userId: 'l3-agent', projectId: '', roles: ['admin'] };

describe('NetworkService routers and floating IPs', () => {
  let t: ComputeTestCloud;
  let admin: StrataClient;
  let alice: Member;
  let bob: Member;
  let ext: { id: string };
  let extSubnet: { id: string; cidr: string };

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 0 });
    admin = t.admin;
    alice = await t.member();
    bob = await t.member();
    ext = (await admin.call('CreateNetwork', { network: { name: 'public', external: true } })).network;
    extSubnet = (await admin.call('CreateSubnet', { subnet: { networkId: ext.id, cidr: '203.0.113.0/24', name: 'public-v4' } })).subnet;
  }, 120_000);
  afterAll(async () => t?.close());

  async function networkWithSubnet(m: Member, cidr: string, extra: Record<string, unknown> = {}) {
    const network = (await m.client.call('CreateNetwork', { network: { name: uniq('net') } })).network;
    const subnet = (await m.client.call('CreateSubnet', { subnet: { networkId: network.id, cidr, name: uniq('sub') }, ...extra })).subnet;
    return { network, subnet };
  }
  const portsOf = async (deviceId: string) => (await admin.call('ListPorts', { deviceId })).ports as any[];

  it('makes a router with a gateway port on the external network, and refuses a network that is not external or SNAT set by a member', async () => {
    const router = (await alice.client.call('CreateRouter', { router: { name: 'edge', externalGatewayInfo: { networkId: ext.id } } })).router;
    expect(router).toMatchObject({ name: 'edge', projectId: alice.project.id, adminStateUp: true, status: 'ACTIVE', interfacesInfo: [] });
    expect(router.externalGatewayInfo).toMatchObject({ networkId: ext.id, enableSnat: true, externalFixedIps: [{ subnetId: extSubnet.id }] });
    const [gw] = await portsOf(router.id);
    expect(gw).toMatchObject({ networkId: ext.id, deviceOwner: 'network:router_gateway', deviceId: router.id, portSecurityEnabled: false, securityGroups: [] });
    expect(gw.fixedIps).toEqual(router.externalGatewayInfo.externalFixedIps);
    expect((await alice.client.call('ListRouters', {})).routers.map((r: any) => r.id)).toContain(router.id);
    expect((await bob.client.call('ListRouters', {})).routers).toEqual([]);
    expect(await errorOf(bob.client.call('GetRouter', { id: router.id }))).toMatchObject({ code: NOT_FOUND });

    // External networks are everyone's to see (Neutron), not to put ports on.
    expect((await bob.client.call('ListNetworks', {})).networks.map((n: any) => n.id)).toEqual([ext.id]);
    expect((await bob.client.call('GetNetwork', { id: ext.id })).network).toMatchObject({ external: true, subnets: [extSubnet.id] });
    expect(await errorOf(bob.client.call('CreatePort', { port: { networkId: ext.id } }))).toMatchObject({ code: NOT_FOUND });

    const { network } = await networkWithSubnet(alice, '10.60.0.0/24');
    const before = (await alice.client.call('ListRouters', {})).routers.length;
    expect(await errorOf(alice.client.call('CreateRouter', { router: { externalGatewayInfo: { networkId: network.id } } }))).toMatchObject({
      code: INVALID_ARGUMENT, field: 'router.external_gateway_info.network_id', details: `Bad router request: Network ${network.id} is not an external network`,
    });
    expect(await errorOf(alice.client.call('CreateRouter', { router: { externalGatewayInfo: { networkId: ext.id, enableSnat: false } } }))).toMatchObject({
      code: PERMISSION_DENIED, field: 'router.external_gateway_info.enable_snat',
    });
    expect((await alice.client.call('ListRouters', {})).routers).toHaveLength(before);

    // The admin turns SNAT off: the same port; clearing the gateway deletes it.
    const snatOff = (await admin.call('UpdateRouter', { router: { id: router.id, externalGatewayInfo: { networkId: ext.id, enableSnat: false } }, updateMask: { paths: ['external_gateway_info'] } })).router;
    expect(snatOff.externalGatewayInfo).toMatchObject({ enableSnat: false, externalFixedIps: gw.fixedIps });
    expect((await portsOf(router.id)).map((p) => p.id)).toEqual([gw.id]);
    // Another external network: a new gateway port there, the old one deleted.
    const ext2 = (await admin.call('CreateNetwork', { network: { name: 'public-2', external: true } })).network;
    const ext2Subnet = (await admin.call('CreateSubnet', { subnet: { networkId: ext2.id, cidr: '198.18.0.0/24' } })).subnet;
    const moved = (await alice.client.call('UpdateRouter', { router: { id: router.id, externalGatewayInfo: { networkId: ext2.id } }, updateMask: { paths: ['external_gateway_info'] } })).router;
    expect(moved.externalGatewayInfo).toMatchObject({ networkId: ext2.id, enableSnat: true, externalFixedIps: [{ subnetId: ext2Subnet.id, ipAddress: '198.18.0.2' }] });
    const [gw2] = await portsOf(router.id);
    expect(gw2).toMatchObject({ networkId: ext2.id, deviceOwner: 'network:router_gateway' });
    expect(await errorOf(admin.call('GetPort', { id: gw.id }))).toMatchObject({ code: NOT_FOUND });
    const cleared = (await alice.client.call('UpdateRouter', { router: { id: router.id, name: 'inner' }, updateMask: { paths: ['name', 'external_gateway_info'] } })).router;
    expect(cleared).toMatchObject({ name: 'inner' });
    expect(cleared.externalGatewayInfo ?? null).toBeNull();
    expect(await portsOf(router.id)).toEqual([]);
    await alice.client.call('DeleteRouter', { id: router.id });
    expect(await errorOf(alice.client.call('GetRouter', { id: router.id }))).toMatchObject({ code: NOT_FOUND, details: `Router ${router.id} could not be found` });
  });

  it('attaches subnets and ports as interfaces with Neutron\'s refusals, and is not deleted while it has them', { timeout: 60_000 }, async () => {
    const router = (await alice.client.call('CreateRouter', { router: { name: uniq('r'), externalGatewayInfo: { networkId: ext.id } } })).router;
    const a = await networkWithSubnet(alice, '10.70.0.0/24');
    const added = await alice.client.call('AddRouterInterface', { routerId: router.id, subnetId: a.subnet.id });
    expect(added).toMatchObject({ routerId: router.id, subnetId: a.subnet.id, subnetIds: [a.subnet.id], networkId: a.network.id, projectId: alice.project.id });
    const ifPort = (await alice.client.call('GetPort', { id: added.portId })).port;
    expect(ifPort).toMatchObject({ deviceOwner: 'network:router_interface', deviceId: router.id, portSecurityEnabled: false, fixedIps: [{ subnetId: a.subnet.id, ipAddress: '10.70.0.1' }] });
    expect((await alice.client.call('GetRouter', { id: router.id })).router.interfacesInfo).toEqual([{ portId: added.portId, subnetId: a.subnet.id, ipAddress: '10.70.0.1' }]);

    const portCount = async () => (await alice.client.call('ListPorts', {})).ports.length;
    const held = await portCount();
    const overlapping = await networkWithSubnet(alice, '10.70.0.128/25');
    const noGateway = await networkWithSubnet(alice, '10.71.0.0/24', { noGateway: true });
    expect(await errorOf(alice.client.call('AddRouterInterface', { routerId: router.id, subnetId: a.subnet.id }))).toMatchObject({
      code: INVALID_ARGUMENT, field: 'subnet_id', details: `Bad router request: Router already has a port on subnet ${a.subnet.id}.`,
    });
    expect(await errorOf(alice.client.call('AddRouterInterface', { routerId: router.id, subnetId: overlapping.subnet.id }))).toMatchObject({
      code: INVALID_ARGUMENT, field: 'subnet_id', details: `Bad router request: Cidr 10.70.0.128/25 of subnet ${overlapping.subnet.id} overlaps with cidr 10.70.0.0/24 of subnet ${a.subnet.id}.`,
    });
    expect(await errorOf(alice.client.call('AddRouterInterface', { routerId: router.id, subnetId: noGateway.subnet.id }))).toMatchObject({
      code: INVALID_ARGUMENT, field: 'subnet_id', details: 'Bad router request: Subnet for router interface must have a gateway IP',
    });
    expect(await errorOf(alice.client.call('DeleteRouter', { id: router.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use', details: `Router ${router.id} still has ports` });
    expect(await errorOf(alice.client.call('DeletePort', { id: added.portId }))).toMatchObject({
      code: FAILED_PRECONDITION, state: 'in use', details: `Port ${added.portId} cannot be deleted directly via the port API: has device owner network:router_interface.`,
    });
    expect(await errorOf(alice.client.call('DeleteSubnet', { id: a.subnet.id }))).toMatchObject({
      code: FAILED_PRECONDITION, state: 'in use', details: `Unable to complete operation on subnet ${a.subnet.id}: One or more ports have an IP allocation from this subnet.`,
    });
    expect(await errorOf(bob.client.call('AddRouterInterface', { routerId: router.id, subnetId: a.subnet.id }))).toMatchObject({ code: NOT_FOUND, field: 'router_id' });
    expect(await portCount()).toBe(held);
    expect((await alice.client.call('GetRouter', { id: router.id })).router.interfacesInfo).toHaveLength(1);

    // An existing port: it becomes the router's; a port with a device is PortInUse.
    const b = await networkWithSubnet(alice, '10.72.0.0/24');
    const own = (await alice.client.call('CreatePort', { port: { networkId: b.network.id, fixedIps: [{ subnetId: b.subnet.id, ipAddress: '10.72.0.5' }] }, portSecurityEnabled: false })).port;
    const byPort = await alice.client.call('AddRouterInterface', { routerId: router.id, portId: own.id });
    expect(byPort).toMatchObject({ portId: own.id, subnetId: b.subnet.id, networkId: b.network.id });
    expect((await alice.client.call('GetPort', { id: own.id })).port).toMatchObject({ deviceOwner: 'network:router_interface', deviceId: router.id });
    const vm = (await alice.client.call('CreatePort', { port: { networkId: b.network.id, deviceOwner: 'compute:nova', deviceId: 'vm-1' } })).port;
    expect(await errorOf(alice.client.call('AddRouterInterface', { routerId: router.id, portId: vm.id }))).toMatchObject({
      code: FAILED_PRECONDITION, state: 'in use', details: `Unable to complete operation on port ${vm.id} for network ${b.network.id}. Port already has an attached device vm-1.`,
    });

    // Removed by subnet and by port: their ports go; a third time, NOT_FOUND.
    expect(await alice.client.call('RemoveRouterInterface', { routerId: router.id, subnetId: a.subnet.id })).toMatchObject({ portId: added.portId, subnetIds: [a.subnet.id] });
    expect(await errorOf(alice.client.call('GetPort', { id: added.portId }))).toMatchObject({ code: NOT_FOUND });
    await alice.client.call('RemoveRouterInterface', { routerId: router.id, portId: own.id });
    expect(await errorOf(alice.client.call('GetPort', { id: own.id }))).toMatchObject({ code: NOT_FOUND });
    expect(await errorOf(alice.client.call('RemoveRouterInterface', { routerId: router.id, subnetId: a.subnet.id }))).toMatchObject({
      code: NOT_FOUND, field: 'subnet_id', details: `Router ${router.id} has no interface on subnet ${a.subnet.id}`,
    });
    await alice.client.call('DeleteSubnet', { id: a.subnet.id });
    await alice.client.call('DeleteRouter', { id: router.id });
    expect(await portsOf(router.id)).toEqual([]);
  });

  it('allocates floating IPs from the external subnet, associates them through the router, and follows the L3 agent\'s reports', { timeout: 60_000 }, async () => {
    const router = (await alice.client.call('CreateRouter', { router: { name: uniq('r'), externalGatewayInfo: { networkId: ext.id } } })).router;
    const inner = await networkWithSubnet(alice, '10.80.0.0/24');
    await alice.client.call('AddRouterInterface', { routerId: router.id, subnetId: inner.subnet.id });
    const vm = (await alice.client.call('CreatePort', { port: { networkId: inner.network.id, deviceOwner: 'compute:nova', deviceId: 'vm-2' } })).port;

    const fip = (await alice.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id } })).floatingIp;
    expect(fip).toMatchObject({ projectId: alice.project.id, floatingNetworkId: ext.id, portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' });
    expect(fip.floatingIpAddress).toMatch(/^203\.0\.113\.\d+$/);
    const [holder] = await portsOf(fip.id);
    expect(holder).toMatchObject({ networkId: ext.id, deviceOwner: 'network:floatingip', fixedIps: [{ subnetId: extSubnet.id, ipAddress: fip.floatingIpAddress }] });

    const mask = { paths: ['port_id'] };
    const associated = (await alice.client.call('UpdateFloatingIp', { floatingIp: { id: fip.id, portId: vm.id }, updateMask: mask })).floatingIp;
    expect(associated).toMatchObject({ portId: vm.id, fixedIpAddress: vm.fixedIps[0].ipAddress, routerId: router.id, status: 'DOWN' });
    await t.cloud.network.writer.send('floating_ip', fip.id, { type: 'ReportFloatingIpStatus', status: 'ACTIVE', portId: vm.id }, L3_AGENT);
    expect((await alice.client.call('GetFloatingIp', { id: fip.id })).floatingIp.status).toBe('ACTIVE');
    expect((await alice.client.call('ListFloatingIps', { portId: vm.id })).floatingIps.map((f: any) => f.id)).toEqual([fip.id]);
    expect((await alice.client.call('ListFloatingIps', { status: 'ACTIVE', routerId: router.id })).floatingIps).toHaveLength(1);

    // Refusals: a second one for the same fixed IP, a port no router reaches, a router's port or
    // interface the floating IP needs, another project's.
    const second = (await alice.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id } })).floatingIp;
    expect(await errorOf(alice.client.call('UpdateFloatingIp', { floatingIp: { id: second.id, portId: vm.id }, updateMask: mask }))).toMatchObject({
      code: ALREADY_EXISTS, field: 'floating_ip.port_id',
      details: `Cannot associate floating IP ${second.floatingIpAddress} (${second.id}) with port ${vm.id} using fixed IP ${vm.fixedIps[0].ipAddress}, as that fixed IP already has a floating IP on external network ${ext.id}.`,
    });
    const lonely = await networkWithSubnet(alice, '10.81.0.0/24');
    const far = (await alice.client.call('CreatePort', { port: { networkId: lonely.network.id } })).port;
    expect(await errorOf(alice.client.call('UpdateFloatingIp', { floatingIp: { id: second.id, portId: far.id }, updateMask: mask }))).toMatchObject({
      code: NOT_FOUND, field: 'floating_ip.port_id',
      details: `External network ${ext.id} is not reachable from subnet ${lonely.subnet.id}.  Therefore, cannot associate Port ${far.id} with a Floating IP.`,
    });
    expect(await errorOf(alice.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: inner.network.id } }))).toMatchObject({
      code: INVALID_ARGUMENT, field: 'floating_ip.floating_network_id', details: `Bad floatingip request: Network ${inner.network.id} is not a valid external network`,
    });
    expect(await errorOf(alice.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id, floatingIpAddress: '203.0.113.200' } }))).toMatchObject({ code: PERMISSION_DENIED, field: 'floating_ip.floating_ip_address' });
    expect(await errorOf(alice.client.call('RemoveRouterInterface', { routerId: router.id, subnetId: inner.subnet.id }))).toMatchObject({
      code: FAILED_PRECONDITION, state: 'in use', details: `Router interface for subnet ${inner.subnet.id} on router ${router.id} cannot be deleted, as it is required by one or more floating IPs.`,
    });
    expect(await errorOf(alice.client.call('UpdateRouter', { router: { id: router.id }, updateMask: { paths: ['external_gateway_info'] } }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use' });
    expect(await errorOf(alice.client.call('DeletePort', { id: holder.id }))).toMatchObject({ code: FAILED_PRECONDITION, details: expect.stringContaining('network:floatingip') });
    expect(await errorOf(bob.client.call('GetFloatingIp', { id: fip.id }))).toMatchObject({ code: NOT_FOUND });
    expect((await alice.client.call('GetFloatingIp', { id: second.id })).floatingIp.portId).toBe('');
    // The agent may not report a floating IP ACTIVE that is not associated.
    await expect(t.cloud.network.writer.send('floating_ip', second.id, { type: 'ReportFloatingIpStatus', status: 'ACTIVE' }, L3_AGENT)).rejects.toMatchObject({ rejection: { code: 'FAILED_PRECONDITION' } });

    // Disassociated: DOWN. Its port deleted while associated: disassociated.
    const off = (await alice.client.call('UpdateFloatingIp', { floatingIp: { id: fip.id, portId: '' }, updateMask: mask })).floatingIp;
    expect(off).toMatchObject({ portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' });
    await alice.client.call('UpdateFloatingIp', { floatingIp: { id: second.id, portId: vm.id }, updateMask: mask });
    await alice.client.call('DeletePort', { id: vm.id });
    expect((await alice.client.call('GetFloatingIp', { id: second.id })).floatingIp).toMatchObject({ portId: '', routerId: '', status: 'DOWN' });

    // Deleted: the address and its port are given back.
    await alice.client.call('DeleteFloatingIp', { id: fip.id });
    expect(await errorOf(alice.client.call('GetFloatingIp', { id: fip.id }))).toMatchObject({ code: NOT_FOUND, details: `Floating IP ${fip.id} could not be found` });
    expect(await portsOf(fip.id)).toEqual([]);
    const again = (await admin.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id, floatingIpAddress: fip.floatingIpAddress } })).floatingIp;
    expect(again.floatingIpAddress).toBe(fip.floatingIpAddress);
  });

  it('counts routers and floating IPs against the project\'s network quotas', { timeout: 60_000 }, async () => {
    const carol = await t.member();
    await t.cloud.network.writer.send('network_quota', carol.project.id, { type: 'SetNetworkQuotaLimits', limits: { router: 1, floatingip: 1 } }, L3_AGENT);
    await carol.client.call('CreateRouter', { router: { name: 'one' } });
    expect(await errorOf(carol.client.call('CreateRouter', { router: { name: 'two' } }))).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'router' });
    const f = (await carol.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id } })).floatingIp;
    expect(await errorOf(carol.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id } }))).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'floatingip' });
    await carol.client.call('DeleteFloatingIp', { id: f.id });
    await carol.client.call('CreateFloatingIp', { floatingIp: { floatingNetworkId: ext.id } });
  });
});
