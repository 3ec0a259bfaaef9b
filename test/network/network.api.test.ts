// Issue 6, the network API: NetworkService over a real TLS gRPC server on loopback, the network
// deciders hosted by the cloud's runtime. A network with a /28 subnet takes ports until its pool is
// spent: fixed IPs distinct and in the pool, and the port past the pool's size is RESOURCE_EXHAUSTED
// naming the subnet, with what its saga took given back (acceptance e through the API, 25 creates
// at once). Provider attributes are the admins' (PERMISSION_DENIED naming the field); another
// project cannot see or use a network (NOT_FOUND); a network with ports stays (FAILED_PRECONDITION).
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataClient } from '../../cli/client.js';
import { codeOf, errorOf } from '../identity/cloud.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';

const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const RESOURCE_EXHAUSTED = 8;

const uniq = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const lastOctet = (ip: string) => Number(ip.split('.')[3]);

describe('NetworkService', () => {
  let t: ComputeTestCloud;
  let admin: StrataClient;
  let alice: Member; // member of project A
  let bob: Member; // member of project B

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 0 });
    admin = t.admin;
    alice = await t.member();
    bob = await t.member();
  }, 120_000);
  afterAll(async () => t?.close());

  async function networkWithSubnet(m: Member, cidr: string) {
    const network = (await m.client.call('CreateNetwork', { network: { name: uniq('net') } })).network;
    const subnet = (await m.client.call('CreateSubnet', { subnet: { networkId: network.id, cidr, name: uniq('sub') } })).subnet;
    return { network, subnet };
  }

  it('makes a tenant network on the next free VXLAN id, shown to admins only, and a /28 subnet with Neutron defaults', async () => {
    const { network, subnet } = await networkWithSubnet(alice, '10.20.0.0/28');
    expect(network).toMatchObject({ projectId: alice.project.id, status: 'ACTIVE', adminStateUp: true, mtu: 1450, networkType: '', segmentationId: 0 });
    const seen = (await admin.call('GetNetwork', { id: network.id })).network;
    expect(seen.networkType).toBe('vxlan');
    expect(seen.segmentationId).toBeGreaterThan(0);
    const other = (await admin.call('GetNetwork', { id: (await networkWithSubnet(alice, '10.21.0.0/24')).network.id })).network;
    expect(other.segmentationId).not.toBe(seen.segmentationId);
    expect(subnet).toMatchObject({ networkId: network.id, cidr: '10.20.0.0/28', gatewayIp: '10.20.0.1', allocationPools: [{ start: '10.20.0.2', end: '10.20.0.14' }], enableDhcp: true });
    expect((await alice.client.call('GetNetwork', { id: network.id })).network.subnets).toEqual([subnet.id]);
    expect(await errorOf(alice.client.call('CreateSubnet', { subnet: { networkId: network.id, cidr: '10.20.0.8/29' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'subnet.cidr' });
    expect(await errorOf(alice.client.call('CreateSubnet', { subnet: { networkId: network.id, cidr: '10.30.0.1/24' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'subnet.cidr' });
  });

  it('gives 25 concurrent ports on a /28 13 distinct addresses of the pool; the others, and the 14th after, RESOURCE_EXHAUSTED naming the subnet', { timeout: 120_000 }, async () => {
    const { network, subnet } = await networkWithSubnet(alice, '10.40.0.0/28');
    const results = await Promise.allSettled(Array.from({ length: 25 }, (_, i) => alice.client.call('CreatePort', { port: { networkId: network.id, name: `p${i}` } })));
    const made = results.filter((r): r is PromiseFulfilledResult<any> => r.status === 'fulfilled').map((r) => r.value.port);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(made).toHaveLength(13);
    const ips = made.map((p) => p.fixedIps[0].ipAddress as string);
    expect(new Set(ips).size).toBe(13);
    expect(ips.map(lastOctet).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    expect(new Set(made.map((p) => p.macAddress)).size).toBe(13);
    for (const p of made) {
      expect(p.macAddress).toMatch(/^fa:16:3e(:[0-9a-f]{2}){3}$/);
      expect(p).toMatchObject({ status: 'DOWN', projectId: alice.project.id, fixedIps: [{ subnetId: subnet.id }] });
      expect(p.securityGroups).toHaveLength(1);
    }
    expect(failed).toHaveLength(12);
    for (const e of failed) expect(e).toMatchObject({ code: RESOURCE_EXHAUSTED, details: `No more IP addresses available on subnet ${subnet.id} (network ${network.id})` });
    const fourteenth = await errorOf(alice.client.call('CreatePort', { port: { networkId: network.id } }));
    expect(fourteenth).toMatchObject({ code: RESOURCE_EXHAUSTED, details: expect.stringContaining(subnet.id) });
    expect((await alice.client.call('ListPorts', { networkId: network.id })).ports).toHaveLength(13);
    expect((await alice.client.call('GetSubnet', { id: subnet.id })).subnet.usedIps).toBe(13);

    // A deleted port gives its address back: the next port gets it.
    const gone = made.find((p) => p.fixedIps[0].ipAddress === '10.40.0.7');
    await alice.client.call('DeletePort', { id: gone.id });
    expect(await codeOf(alice.client.call('GetPort', { id: gone.id }))).toBe(NOT_FOUND);
    const again = (await alice.client.call('CreatePort', { port: { networkId: network.id } })).port;
    expect(again.fixedIps[0].ipAddress).toBe('10.40.0.7');

    // A network with ports stays; without them it goes, subnets and all.
    const inUse = await errorOf(alice.client.call('DeleteNetwork', { id: network.id }));
    expect(inUse).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use', details: expect.stringContaining('13 port(s) still in use') });
    expect(await errorOf(alice.client.call('DeleteSubnet', { id: subnet.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use' });
    const ports = (await alice.client.call('ListPorts', { networkId: network.id })).ports;
    await Promise.all(ports.map((p: { id: string }) => alice.client.call('DeletePort', { id: p.id })));
    await alice.client.call('DeleteNetwork', { id: network.id });
    expect(await codeOf(alice.client.call('GetNetwork', { id: network.id }))).toBe(NOT_FOUND);
    expect(await codeOf(alice.client.call('GetSubnet', { id: subnet.id }))).toBe(NOT_FOUND);
  });

  it('takes an asked address, refuses a taken one (ALREADY_EXISTS) or one off the subnet (INVALID_ARGUMENT naming the field), and gives back what it took', async () => {
    const { network, subnet } = await networkWithSubnet(alice, '10.50.0.0/24');
    const p = (await alice.client.call('CreatePort', { port: { networkId: network.id, fixedIps: [{ subnetId: subnet.id, ipAddress: '10.50.0.100' }] } })).port;
    expect(p.fixedIps).toEqual([{ subnetId: subnet.id, ipAddress: '10.50.0.100' }]);
    const taken = await errorOf(alice.client.call('CreatePort', { port: { networkId: network.id, fixedIps: [{ subnetId: subnet.id, ipAddress: '10.50.0.100' }] } }));
    expect(taken).toMatchObject({ code: ALREADY_EXISTS, field: 'port.fixed_ips[0].ip_address' });
    const off = await errorOf(alice.client.call('CreatePort', { port: { networkId: network.id, fixedIps: [{ subnetId: subnet.id, ipAddress: '10.51.0.5' }] } }));
    expect(off).toMatchObject({ code: INVALID_ARGUMENT, field: 'port.fixed_ips[0].ip_address' });
    const mac = await errorOf(alice.client.call('CreatePort', { port: { networkId: network.id, macAddress: p.macAddress } }));
    expect(mac).toMatchObject({ code: ALREADY_EXISTS, field: 'mac_address' });
    // The refused ones left nothing: one port on the network, one address held.
    expect((await alice.client.call('ListPorts', { networkId: network.id })).ports).toHaveLength(1);
    expect((await alice.client.call('GetSubnet', { id: subnet.id })).subnet.usedIps).toBe(1);
    const updated = (await alice.client.call('UpdatePort', { port: { id: p.id, name: 'renamed', adminStateUp: false }, updateMask: { paths: ['name', 'admin_state_up'] } })).port;
    expect(updated).toMatchObject({ name: 'renamed', adminStateUp: false, macAddress: p.macAddress });
    expect(await errorOf(alice.client.call('UpdatePort', { port: { id: p.id, macAddress: 'fa:16:3e:00:00:01' }, updateMask: { paths: ['mac_address'] } }))).toMatchObject({
      code: INVALID_ARGUMENT,
      field: 'port.mac_address',
    });
  });

  it("changes a port's fixed IPs (Neutron's port update): new ones allocated, dropped ones given back, a taken one refused with nothing changed", async () => {
    const { network, subnet } = await networkWithSubnet(alice, '10.52.0.0/24');
    const ask = (ips: string[]) => ({ networkId: network.id, fixedIps: ips.map((ipAddress) => ({ subnetId: subnet.id, ipAddress })) });
    const p = (await alice.client.call('CreatePort', { port: ask(['10.52.0.10']) })).port;
    const other = (await alice.client.call('CreatePort', { port: ask(['10.52.0.20']) })).port;
    const update = (ips: Record<string, string>[]) => alice.client.call('UpdatePort', { port: { id: p.id, fixedIps: ips }, updateMask: { paths: ['fixed_ips'] } });

    // Keep .10, add .11 and one the subnet picks.
    const two = (await update([{ ipAddress: '10.52.0.10' }, { ipAddress: '10.52.0.11' }, { subnetId: subnet.id }])).port;
    expect(two.fixedIps.map((f: { ipAddress: string }) => f.ipAddress)).toEqual(['10.52.0.10', '10.52.0.11', '10.52.0.2']);
    expect((await alice.client.call('GetSubnet', { id: subnet.id })).subnet.usedIps).toBe(4);

    // A taken address refuses the whole update, naming the entry; what it took comes back.
    expect(await errorOf(update([{ ipAddress: '10.52.0.12' }, { ipAddress: '10.52.0.20' }]))).toMatchObject({ code: ALREADY_EXISTS, field: 'port.fixed_ips[1].ip_address' });
    expect((await alice.client.call('GetPort', { id: p.id })).port.fixedIps).toEqual(two.fixedIps);
    expect((await alice.client.call('GetSubnet', { id: subnet.id })).subnet.usedIps).toBe(4);
    expect(await errorOf(update([{ ipAddress: '10.99.0.1' }]))).toMatchObject({ code: INVALID_ARGUMENT, field: 'port.fixed_ips[0].ip_address' });

    // Down to one new address: the dropped ones go back, and another port can take them.
    const one = (await update([{ ipAddress: '10.52.0.30' }])).port;
    expect(one.fixedIps).toEqual([{ subnetId: subnet.id, ipAddress: '10.52.0.30' }]);
    expect((await alice.client.call('GetSubnet', { id: subnet.id })).subnet.usedIps).toBe(2);
    const again = (await alice.client.call('CreatePort', { port: ask(['10.52.0.10']) })).port;
    expect(again.fixedIps[0].ipAddress).toBe('10.52.0.10');
    expect(other.fixedIps[0].ipAddress).toBe('10.52.0.20');
  });

  it('sets network quotas for admins only (Neutron\'s quotas API), shows a project its own, and refuses an unknown name', async () => {
    const erin = await t.member();
    const shown = (await erin.client.call('GetNetworkQuota', {})).quota;
    expect(shown).toMatchObject({ projectId: erin.project.id, limits: { network: 100, port: 500, router: 10, floatingip: 50 } });
    expect(await errorOf(erin.client.call('SetNetworkQuota', { projectId: erin.project.id, limits: { port: 1000 } }))).toMatchObject({ code: PERMISSION_DENIED });
    expect(await errorOf(bob.client.call('GetNetworkQuota', { projectId: erin.project.id }))).toMatchObject({ code: NOT_FOUND, field: 'project_id' });
    expect(await errorOf(admin.call('SetNetworkQuota', { projectId: erin.project.id, limits: { volumes: 3 } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'limits' });
    expect(await errorOf(admin.call('SetNetworkQuota', { projectId: erin.project.id, limits: { port: -2 } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'limits.port' });
    const set = (await admin.call('SetNetworkQuota', { projectId: erin.project.id, limits: { port: 7, router: -1 } })).quota;
    expect(set.limits).toMatchObject({ port: 7, router: -1, network: 100 });
    expect((await admin.call('GetNetworkQuota', { projectId: erin.project.id })).quota.limits).toMatchObject({ port: 7, router: -1 });
  });

  it('refuses a port past the port quota naming it, and a failed create gives back its quota and MAC', async () => {
    const dave = await t.member();
    const { network, subnet } = await networkWithSubnet(dave, '10.80.0.0/29');
    await admin.call('SetNetworkQuota', { projectId: dave.project.id, limits: { port: 2 } });
    const first = (await dave.client.call('CreatePort', { port: { networkId: network.id, macAddress: 'fa:16:3e:aa:bb:cc', fixedIps: [{ subnetId: subnet.id, ipAddress: '10.80.0.3' }] } })).port;
    // Taken address: refused after the quota and a MAC were taken, so both must come back.
    const taken = await errorOf(dave.client.call('CreatePort', { port: { networkId: network.id, macAddress: 'fa:16:3e:aa:bb:cd', fixedIps: [{ subnetId: subnet.id, ipAddress: '10.80.0.3' }] } }));
    expect(taken).toMatchObject({ code: ALREADY_EXISTS, field: 'port.fixed_ips[0].ip_address' });
    const second = (await dave.client.call('CreatePort', { port: { networkId: network.id, macAddress: 'fa:16:3e:aa:bb:cd' } })).port;
    expect(second).toMatchObject({ macAddress: 'fa:16:3e:aa:bb:cd', fixedIps: [{ subnetId: subnet.id, ipAddress: '10.80.0.2' }] });
    const over = await errorOf(dave.client.call('CreatePort', { port: { networkId: network.id } }));
    expect(over).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'port', details: 'Quota exceeded for resources: port. Requested 1, but already used 2 of 2 port' });
    // What the quota shows in use: the two ports, the network (the failed creates gave theirs back).
    const quota = (await dave.client.call('GetNetworkQuota', {})).quota;
    expect(quota).toMatchObject({ limits: { port: 2 }, inUse: { port: 2, network: 1, subnet: 1 } });
    await dave.client.call('DeletePort', { id: first.id });
    const third = (await dave.client.call('CreatePort', { port: { networkId: network.id, macAddress: 'fa:16:3e:aa:bb:cc' } })).port;
    expect(third.fixedIps[0].ipAddress).toBe('10.80.0.3');
  });

  it('leaves provider attributes, shared and external to admins (PERMISSION_DENIED naming the field)', async () => {
    const provider = await errorOf(alice.client.call('CreateNetwork', { network: { name: uniq('x'), networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 } }));
    expect(provider).toMatchObject({ code: PERMISSION_DENIED, field: 'provider:network_type' });
    expect(await errorOf(alice.client.call('CreateNetwork', { network: { name: uniq('x'), shared: true } }))).toMatchObject({ code: PERMISSION_DENIED, field: 'shared' });
    const mine = (await alice.client.call('CreateNetwork', { network: { name: uniq('x') } })).network;
    expect(await errorOf(alice.client.call('UpdateNetwork', { network: { id: mine.id, external: true }, updateMask: { paths: ['external'] } }))).toMatchObject({
      code: PERMISSION_DENIED,
      field: 'router:external',
    });
    const renamed = (await alice.client.call('UpdateNetwork', { network: { id: mine.id, name: 'renamed' }, updateMask: { paths: ['name'] } })).network;
    expect(renamed.name).toBe('renamed');

    const vlan = (await admin.call('CreateNetwork', { network: { name: uniq('prov'), networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 } })).network;
    expect(vlan).toMatchObject({ networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100, mtu: 1500 });
    const twice = await errorOf(admin.call('CreateNetwork', { network: { name: uniq('prov'), networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 } }));
    expect(twice).toMatchObject({ code: ALREADY_EXISTS, field: 'segmentation_id' });
    await admin.call('DeleteNetwork', { id: vlan.id });
    // Its segment went back with it.
    const again = (await admin.call('CreateNetwork', { network: { name: uniq('prov'), networkType: 'vlan', physicalNetwork: 'physnet1', segmentationId: 100 } })).network;
    expect(again.segmentationId).toBe(100);
  });

  it('keeps a project\'s network from another: NOT_FOUND to see or use; a shared one is seen and used by all', async () => {
    const { network, subnet } = await networkWithSubnet(alice, '10.60.0.0/24');
    const port = (await alice.client.call('CreatePort', { port: { networkId: network.id } })).port;
    expect(await errorOf(bob.client.call('GetNetwork', { id: network.id }))).toMatchObject({ code: NOT_FOUND });
    expect(await errorOf(bob.client.call('CreatePort', { port: { networkId: network.id } }))).toMatchObject({ code: NOT_FOUND, field: 'port.network_id' });
    expect(await codeOf(bob.client.call('CreateSubnet', { subnet: { networkId: network.id, cidr: '10.61.0.0/24' } }))).toBe(NOT_FOUND);
    expect(await codeOf(bob.client.call('GetSubnet', { id: subnet.id }))).toBe(NOT_FOUND);
    expect(await codeOf(bob.client.call('GetPort', { id: port.id }))).toBe(NOT_FOUND);
    expect(await codeOf(bob.client.call('DeleteNetwork', { id: network.id }))).toBe(NOT_FOUND);
    expect((await bob.client.call('ListNetworks', {})).networks.map((n: { id: string }) => n.id)).not.toContain(network.id);
    expect((await bob.client.call('ListPorts', {})).ports.map((p: { id: string }) => p.id)).not.toContain(port.id);

    const shared = (await admin.call('CreateNetwork', { network: { name: uniq('public'), shared: true } })).network;
    const sharedSubnet = (await admin.call('CreateSubnet', { subnet: { networkId: shared.id, cidr: '192.0.2.0/24' } })).subnet;
    expect((await bob.client.call('ListNetworks', {})).networks.map((n: { id: string }) => n.id)).toContain(shared.id);
    const bobs = (await bob.client.call('CreatePort', { port: { networkId: shared.id } })).port;
    expect(bobs).toMatchObject({ projectId: bob.project.id, fixedIps: [{ subnetId: sharedSubnet.id, ipAddress: '192.0.2.2' }] });
    expect(await errorOf(bob.client.call('CreateSubnet', { subnet: { networkId: shared.id, cidr: '198.51.100.0/24' } }))).toMatchObject({ code: PERMISSION_DENIED });
    expect(await codeOf(alice.client.call('GetPort', { id: bobs.id }))).toBe(NOT_FOUND);
  });

  it('makes the default security group on first use, gives it to ports that name none, and keeps a group in use', async () => {
    const carol = await t.member();
    const groups = (await carol.client.call('ListSecurityGroups', {})).securityGroups;
    expect(groups).toHaveLength(1);
    const def = groups[0];
    expect(def).toMatchObject({ name: 'default', isDefault: true, projectId: carol.project.id });
    expect(def.rules.map((r: { direction: string; ethertype: string }) => `${r.direction}/${r.ethertype}`).sort()).toEqual(['egress/IPv4', 'egress/IPv6', 'ingress/IPv4', 'ingress/IPv6']);

    const web = (await carol.client.call('CreateSecurityGroup', { securityGroup: { name: 'web', description: 'http' } })).securityGroup;
    expect(web.rules).toHaveLength(2);
    const rule = (await carol.client.call('CreateSecurityGroupRule', { securityGroupId: web.id, rule: { direction: 'ingress', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, remoteIpPrefix: '0.0.0.0/0' } })).rule;
    expect(rule).toMatchObject({ securityGroupId: web.id, direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80 });
    expect(await codeOf(carol.client.call('CreateSecurityGroupRule', { securityGroupId: web.id, rule: { direction: 'ingress', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80 } }))).toBe(ALREADY_EXISTS);
    expect(await errorOf(carol.client.call('CreateSecurityGroupRule', { securityGroupId: web.id, rule: { direction: 'sideways' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'rule.direction' });
    expect((await carol.client.call('ListSecurityGroupRules', { securityGroupId: web.id })).rules).toHaveLength(3);
    expect(await codeOf(bob.client.call('GetSecurityGroup', { id: web.id }))).toBe(NOT_FOUND);

    const { network } = await networkWithSubnet(carol, '10.70.0.0/24');
    const plain = (await carol.client.call('CreatePort', { port: { networkId: network.id } })).port;
    expect(plain.securityGroups).toEqual([def.id]);
    const withWeb = (await carol.client.call('CreatePort', { port: { networkId: network.id, securityGroups: [web.id] } })).port;
    expect(withWeb.securityGroups).toEqual([web.id]);
    expect(await errorOf(carol.client.call('CreatePort', { port: { networkId: network.id, securityGroups: ['nope'] } }))).toMatchObject({ code: NOT_FOUND, field: 'port.security_groups[0]' });
    expect(await errorOf(carol.client.call('DeleteSecurityGroup', { id: web.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use' });
    await carol.client.call('DeletePort', { id: withWeb.id });
    await carol.client.call('DeleteSecurityGroupRule', { id: rule.id });
    expect(await codeOf(carol.client.call('GetSecurityGroupRule', { id: rule.id }))).toBe(NOT_FOUND);
    await carol.client.call('DeleteSecurityGroup', { id: web.id });
    expect(await codeOf(carol.client.call('GetSecurityGroup', { id: web.id }))).toBe(NOT_FOUND);
  });
});
