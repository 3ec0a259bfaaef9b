// The network read models fed by the real network deciders: commands decided and folded as the
// runtime does, their events encoded by the network codec, appended to an embedded log and
// projected by a ProjectionRunner into SQLite and PostgreSQL. Networks (a project's and the shared
// ones), subnets with the addresses ports hold, ports with status and binding, security groups
// with their rules (built-in ones included), and deletes that clear their rows. Rebuilt from
// offset 0 into a fresh store, the rows are the same.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { networkAggregate } from '../../domains/network/network.deciders.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { NETWORK_TABLES, networkProjection } from './network.projection.js';
import { NetworkQueries } from './network.queries.js';

const PARTITIONS = 4;
const EVENTS = domainTopics(NETWORK_DOMAIN).events;
const stores = testStores('network');
const dump = (store: Store) => dumpTables(store, NETWORK_TABLES);

const network = (id: string, projectId: string, extra: Record<string, unknown> = {}) => ({
  id, name: id, projectId, adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 0, ...extra,
});
const subnet = (id: string, networkId: string, projectId: string, cidr: string) => ({
  id, networkId, projectId, name: id, ipVersion: 4, cidr, gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true,
});
const port = (id: string, networkId: string, projectId: string, mac: string, fixedIps: { subnetId: string; ipAddress: string }[], securityGroups: string[]) => ({
  id, networkId, projectId, name: id, macAddress: mac, fixedIps, deviceOwner: '', deviceId: '', securityGroups, portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`network read models on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let cloud: DecidedLog;
    let q: NetworkQueries;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-network-log-')), 'log.db') });
      await log.ensureTopics([{ name: EVENTS, partitions: PARTITIONS }]);
      store = open();
      runner = new ProjectionRunner(log, store, networkProjection);
      await runner.start();
      cloud = new DecidedLog({ log, runner: () => runner, eventsTopic: EVENTS, partitions: PARTITIONS, aggregate: (t) => ({ decider: networkAggregate(t).decider, codec: networkCodecFor(t) }) });
      q = new NetworkQueries(store);

      cloud.send('network', 'n1', { type: 'CreateNetwork', network: network('n1', 'p1', { segmentationId: 5 }), segmentAllocated: true });
      cloud.send('network', 'n2', { type: 'CreateNetwork', network: network('n2', 'p2', { shared: true, segmentationId: 6 }), segmentAllocated: false });
      cloud.send('network', 'n3', { type: 'CreateNetwork', network: network('n3', 'p2'), segmentAllocated: false });
      cloud.send('network', 'n1', { type: 'UpdateNetwork', network: { ...network('n1', 'p1'), name: 'one', adminStateUp: false }, updateMask: ['name', 'adminStateUp'] });
      cloud.send('subnet', 's1', { type: 'CreateSubnet', subnet: subnet('s1', 'n1', 'p1', '10.0.0.0/28'), noGateway: false });
      cloud.send('subnet', 's2', { type: 'CreateSubnet', subnet: subnet('s2', 'n3', 'p2', '10.1.0.0/24'), noGateway: false });
      cloud.send('subnet', 's2', { type: 'DeleteSubnet' });
      cloud.send('network', 'n3', { type: 'DeleteNetwork' });
      cloud.send('security_group', 'sg1', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg1', projectId: 'p1', name: 'default', description: '', stateful: true, isDefault: true } });
      cloud.send('security_group', 'sg2', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg2', projectId: 'p1', name: 'web', description: 'http', stateful: true, isDefault: false } });
      const http = { id: 'r-http', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, remoteIpPrefix: '0.0.0.0/0', remoteGroupId: '', description: '' };
      cloud.send('security_group', 'sg2', { type: 'AddSecurityGroupRule', rule: http });
      cloud.send('security_group', 'sg2', { type: 'AddSecurityGroupRule', rule: { ...http, id: 'r-ssh', portRangeMin: 22, portRangeMax: 22 } });
      cloud.send('security_group', 'sg2', { type: 'RemoveSecurityGroupRule', ruleId: 'r-ssh' });
      for (const [i, id] of ['pa', 'pb', 'pc'].entries()) {
        const [ip] = cloud.send('subnet', 's1', { type: 'AllocateIp', portId: id, ipAddress: '', deviceOwner: '' });
        cloud.send('network', 'n1', { type: 'AddNetworkPort', portId: id, macAddress: `fa:16:3e:00:00:0${i}` });
        cloud.send('port', id, { type: 'CreatePort', port: port(id, 'n1', 'p1', `fa:16:3e:00:00:0${i}`, [{ subnetId: 's1', ipAddress: ip.ipAddress as string }], i === 0 ? ['sg2'] : ['sg1']) });
      }
      cloud.send('port', 'pa', { type: 'BindPort', hostId: 'h1' });
      cloud.send('port', 'pa', { type: 'ReportPortUp', hostId: 'h1' });
      cloud.send('port', 'pc', { type: 'DeletePort' });
      cloud.send('subnet', 's1', { type: 'ReleaseIp', portId: 'pc', ipAddress: '' });
      // A router between s1 and the external network, and a floating IP NATed to pa through it.
      cloud.send('router', 'r1', { type: 'CreateRouter', router: { id: 'r1', projectId: 'p1', name: 'edge', adminStateUp: true, externalGatewayInfo: null } });
      cloud.send('router', 'r2', { type: 'CreateRouter', router: { id: 'r2', projectId: 'p2', name: 'other', adminStateUp: true, externalGatewayInfo: null } });
      const gateway = { networkId: 'ext', enableSnat: true, externalFixedIps: [{ subnetId: 'ext-s', ipAddress: '203.0.113.2' }] };
      cloud.send('router', 'r1', { type: 'SetRouterGateway', externalGatewayInfo: gateway, portId: 'gw1' });
      // (The aggregates are independent: the interface port's network and address need not exist for its row.)
      cloud.send('port', 'pi', { type: 'CreatePort', port: { ...port('pi', 'n9', 'p1', 'fa:16:3e:00:00:09', [{ subnetId: 's1', ipAddress: '10.0.0.1' }], []), deviceOwner: 'network:router_interface', deviceId: 'r1', portSecurityEnabled: false } });
      cloud.send('router', 'r1', { type: 'AddRouterInterface', portId: 'pi', subnets: [{ subnetId: 's1', cidr: '10.0.0.0/28' }] });
      cloud.send('router', 'r2', { type: 'AddRouterInterface', portId: 'px', subnets: [{ subnetId: 's9', cidr: '10.9.0.0/24' }] });
      cloud.send('router', 'r2', { type: 'RemoveRouterInterface', portId: 'px' });
      cloud.send('router', 'r2', { type: 'DeleteRouter' });
      const fip = { id: 'f1', projectId: 'p1', floatingNetworkId: 'ext', floatingIpAddress: '203.0.113.3', portId: '', fixedIpAddress: '', routerId: '', status: 'DOWN' };
      cloud.send('floating_ip', 'f1', { type: 'CreateFloatingIp', floatingIp: fip });
      cloud.send('floating_ip', 'f1', { type: 'UpdateFloatingIp', floatingIp: { portId: 'pa', fixedIpAddress: '10.0.0.2', routerId: 'r1' } });
      cloud.send('floating_ip', 'f1', { type: 'ReportFloatingIpStatus', status: 'ACTIVE' });
      cloud.send('floating_ip', 'f2', { type: 'CreateFloatingIp', floatingIp: { ...fip, id: 'f2', floatingIpAddress: '203.0.113.4' } });
      cloud.send('floating_ip', 'f3', { type: 'CreateFloatingIp', floatingIp: { ...fip, id: 'f3', floatingIpAddress: '203.0.113.5' } });
      cloud.send('floating_ip', 'f3', { type: 'DeleteFloatingIp' });
      await cloud.flush();
    });
    afterAll(async () => {
      await runner?.stop();
      for (const s of opened) await discardStore(s);
      await log?.close();
    });

    it('shows a project its networks and the shared ones, with status, subnets and provider attributes', async () => {
      expect((await q.listNetworks({ projectId: 'p1' })).map((n) => n.id)).toEqual(['n1', 'n2']);
      expect((await q.listNetworks({ projectId: 'p3' })).map((n) => n.id)).toEqual(['n2']);
      expect((await q.listNetworks()).map((n) => n.id)).toEqual(['n1', 'n2']);
      expect(await q.getNetwork('n1')).toMatchObject({ name: 'one', status: 'DOWN', adminStateUp: false, mtu: 1450, networkType: 'vxlan', segmentationId: 5, subnets: ['s1'] });
      expect(await q.getNetwork('n3')).toBeUndefined();
      expect((await q.listNetworks({ limit: 1, marker: 'n1' })).map((n) => n.id)).toEqual(['n2']);
    });

    it('shows subnets with Neutron defaults and the addresses ports hold', async () => {
      expect(await q.getSubnet('s1')).toMatchObject({ cidr: '10.0.0.0/28', gatewayIp: '10.0.0.1', allocationPools: [{ start: '10.0.0.2', end: '10.0.0.14' }], usedIps: 2 });
      expect(await q.getSubnet('s2')).toBeUndefined();
      expect((await q.subnetsOf('n1')).map((s) => s.id)).toEqual(['s1']);
    });

    it('shows ports with their addresses, status and binding, and which use a group', async () => {
      expect(await q.getPort('pa')).toMatchObject({ status: 'ACTIVE', hostId: 'h1', macAddress: 'fa:16:3e:00:00:00', fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.2' }], securityGroups: ['sg2'] });
      expect(await q.getPort('pc')).toBeUndefined();
      expect((await q.listPorts({ networkId: 'n1' })).map((p) => p.id)).toEqual(['pa', 'pb']);
      expect(await q.portsUsingGroup('sg2')).toEqual(['pa']);
      expect(await q.portsUsingGroup('sg1')).toEqual(['pb']);
    });

    it('shows security groups with their rules, built-in ones first', async () => {
      const web = await q.getSecurityGroup('sg2');
      expect(web?.rules.map((r) => r.id)).toEqual(['sg2-egress-ipv4', 'sg2-egress-ipv6', 'r-http']);
      expect(web?.rules[2]).toMatchObject({ protocol: 'tcp', portRangeMin: 80, portRangeMax: 80, projectId: 'p1', securityGroupId: 'sg2' });
      expect(web?.rules[0]).toMatchObject({ portRangeMin: null, portRangeMax: null });
      expect((await q.getSecurityGroup('sg1'))?.rules).toHaveLength(4);
      expect(await q.getRule('r-ssh')).toBeUndefined();
      expect((await q.listSecurityGroups({ projectId: 'p1' })).map((g) => g.name)).toEqual(['default', 'web']);
      expect(await q.listRules({ projectId: 'p2' })).toEqual([]);
    });

    it('shows routers with their gateway and interfaces, and floating IPs with their association and status', async () => {
      expect(await q.getRouter('r1')).toEqual({
        id: 'r1', projectId: 'p1', name: 'edge', adminStateUp: true, status: 'ACTIVE', gatewayPortId: 'gw1',
        externalGatewayInfo: { networkId: 'ext', enableSnat: true, externalFixedIps: [{ subnetId: 'ext-s', ipAddress: '203.0.113.2' }] },
        interfaces: [{ portId: 'pi', subnetId: 's1', cidr: '10.0.0.0/28', ipAddress: '10.0.0.1' }],
      });
      expect(await q.getRouter('r2')).toBeUndefined();
      expect((await q.listRouters({ projectId: 'p1' })).map((r) => r.id)).toEqual(['r1']);
      expect(await q.listRouters({ externalNetworkId: 'other' })).toEqual([]);
      expect(await q.routersBetween('s1', 'ext')).toEqual(['r1']);
      expect(await q.routersBetween('s1', 'n1')).toEqual([]);
      expect(await q.getFloatingIp('f1')).toEqual({
        id: 'f1', projectId: 'p1', floatingNetworkId: 'ext', floatingIpAddress: '203.0.113.3', portId: 'pa', fixedIpAddress: '10.0.0.2', routerId: 'r1', status: 'ACTIVE',
      });
      expect((await q.listFloatingIps({ projectId: 'p1' })).map((f) => f.id)).toEqual(['f1', 'f2']);
      expect((await q.listFloatingIps({ portId: 'pa' })).map((f) => f.id)).toEqual(['f1']);
      expect((await q.listFloatingIps({ status: 'DOWN' })).map((f) => f.id)).toEqual(['f2']);
      expect((await q.listFloatingIps({ floatingIpAddress: '203.0.113.4', limit: 1 })).map((f) => f.id)).toEqual(['f2']);
    });

    it('rebuilt from offset 0 into a fresh store gives the same rows', async () => {
      const live = await dump(store);
      expect(live.network_ports.length).toBe(3);
      const fresh = open();
      const reached = await ProjectionRunner.rebuild(log, fresh, networkProjection);
      expect([...reached.values()].reduce((a, b) => a + b, 0)).toBe(cloud.all.length);
      expect(await dump(fresh)).toEqual(live);
      expect(await new NetworkQueries(fresh).listNetworks()).toEqual(await q.listNetworks());
    });
  });
}
