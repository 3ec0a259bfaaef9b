// The network agent end to end on the embedded log, with real packets: the network deciders run
// here; two simulated hosts (userspace OVS in namespaces, joined by VXLAN) each run a network
// agent. Ports are created and bound through the log; the guests' veths are plugged into their
// host's integration bridge; each agent compiles and applies its table and reports the ports
// ACTIVE. Ports of one network ping each other across the hosts both ways; two tenants' networks
// with the same CIDR stay apart; a port bound while its agent was stopped is wired by the agent
// started again, and the counters of the unchanged ports keep running across that restart; a
// port sending with a forged MAC is dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { computePort, startNetworkRig, type NetworkRig } from '../support/network-rig.js';
import { inNs, type Guest } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const available = await ovsAvailable();

describe.skipIf(!available)('the network agent on two hosts (embedded log, userspace OVS, real packets)', () => {
  let rig: NetworkRig;
  const guests = new Map<string, Guest>();
  const send: NetworkRig['send'] = (...args) => rig.send(...args);
  const startAgent = (hostId: string) => rig.startAgent(hostId);
  const status = (portId: string) => [...rig.agents.values()][0]?.feed.view.ports.get(portId)?.status;

  async function network(id: string, vni: number) {
    await send('network', id, {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id, name: id, projectId: `project-of-${id}`, adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: vni },
    });
  }
  async function port(id: string, networkId: string, hostId: string, mac: string, ip: string) {
    await send('port', id, { type: 'CreatePort', port: computePort(id, networkId, `project-of-${networkId}`, mac, ip, { securityGroups: ['sg-open'] }) });
    guests.set(id, await rig.sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }

  beforeAll(async () => {
    rig = await startNetworkRig(['h1', 'h2']);
    // Ports with port security and no group get no IP traffic (Neutron's rule): these are open to all.
    await send('security_group', 'sg-open', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg-open', projectId: 'project-sg', name: 'open', description: '', stateful: true, isDefault: false } });
    await send('security_group', 'sg-open', {
      type: 'AddSecurityGroupRule',
      rule: { id: 'sg-open-in', direction: 'ingress', ethertype: 'IPv4', protocol: '', portRangeMin: null, portRangeMax: null, remoteIpPrefix: '', remoteGroupId: '', description: '' },
    });
    await startAgent('h1');
    await startAgent('h2');
  }, 120_000);

  afterAll(() => rig?.close());

  it('wires bound ports: ACTIVE, and ports of one network ping each other across hosts both ways', async () => {
    await network('net-a', 2001);
    await port('pa1', 'net-a', 'h1', '02:00:00:00:0a:01', '10.0.0.1');
    await port('pa2', 'net-a', 'h2', '02:00:00:00:0a:02', '10.0.0.2');
    await until(() => status('pa1') === 'ACTIVE' && status('pa2') === 'ACTIVE', 'both ports ACTIVE', 30_000);
    await until(() => rig.sim.ping(guests.get('pa1')!, '10.0.0.2'), 'pa1 -> pa2', 15_000);
    expect(await rig.sim.ping(guests.get('pa2')!, '10.0.0.1', 3)).toBe(true);
  }, 60_000);

  it("keeps two tenants' networks with the same CIDR apart", async () => {
    await network('net-b', 2002);
    await port('pb1', 'net-b', 'h1', '02:00:00:00:0b:01', '10.0.0.1');
    await port('pb3', 'net-b', 'h2', '02:00:00:00:0b:03', '10.0.0.3');
    await until(() => status('pb1') === 'ACTIVE' && status('pb3') === 'ACTIVE', 'net-b ports ACTIVE', 30_000);
    await until(() => rig.sim.ping(guests.get('pb1')!, '10.0.0.3'), 'pb1 -> pb3', 15_000);
    expect(await rig.sim.ping(guests.get('pa1')!, '10.0.0.3', 2)).toBe(false); // pb3 is the other tenant's
    expect(await rig.sim.ping(guests.get('pb1')!, '10.0.0.2', 2)).toBe(false); // pa2 is the other tenant's
    expect(await rig.sim.ping(guests.get('pa1')!, '10.0.0.2')).toBe(true);
  }, 60_000);

  it('drops a port that sends with a forged MAC, and lets it through with its own again', async () => {
    const g = guests.get('pa1')!;
    await inNs(g.ns, 'ip', 'neigh', 'flush', 'all');
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:0a:99');
    expect(await rig.sim.ping(g, '10.0.0.2', 2)).toBe(false);
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', g.mac);
    await until(() => rig.sim.ping(g, '10.0.0.2'), 'pa1 -> pa2 with its own MAC', 15_000);
  }, 60_000);

  it('a restarted agent applies what changed while it was down, and unchanged ports keep their counters', async () => {
    const h1 = rig.host('h1');
    const pa1Flow = async () => (await h1.ovs.dumpFlows('bint', 'table=0')).find((f) => f.match.includes('dl_src=02:00:00:00:0a:01') && !f.match.includes('arp'));
    expect(await rig.sim.ping(guests.get('pa1')!, '10.0.0.2', 3)).toBe(true);
    await until(async () => ((await pa1Flow())?.packets ?? 0) > 0, 'counters of pa1');
    const before = (await pa1Flow())!;

    await rig.stopAgent('h1');
    // While h1's agent is down: a new port of net-a is bound to h1.
    await port('pa3', 'net-a', 'h1', '02:00:00:00:0a:03', '10.0.0.4');
    expect(await rig.sim.ping(guests.get('pa3')!, '10.0.0.2', 1)).toBe(false);
    await startAgent('h1');
    await until(() => status('pa3') === 'ACTIVE', 'pa3 ACTIVE after the restart', 30_000);
    await until(() => rig.sim.ping(guests.get('pa3')!, '10.0.0.2'), 'pa3 -> pa2', 15_000);
    const after = (await pa1Flow())!;
    expect(after.packets).toBeGreaterThanOrEqual(before.packets);
    expect(after.durationSec).toBeGreaterThanOrEqual(before.durationSec);
  }, 90_000);
});
