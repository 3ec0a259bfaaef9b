// Tunnels by registration, with real packets: each host's network agent registers the address its
// VXLAN tunnels end at (RegisterNetworkAgent) and keeps a tunnel to every other registered agent,
// so a host joins the overlay by starting its agent and leaves it when an operator removes it. No
// static peer list: the simulated hosts here are not wired in advance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tunnelPortName } from '../../agents/network/network.agent.js';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { computePort, startNetworkRig, type NetworkRig } from '../support/network-rig.js';
import type { Guest } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const available = await ovsAvailable();

describe.skipIf(!available)('tunnels between registered network agents (embedded log, userspace OVS, real packets)', () => {
  let rig: NetworkRig;
  const guests = new Map<string, Guest>();
  const send: NetworkRig['send'] = (...args) => rig.send(...args);
  const host = (id: string) => rig.host(id);
  const startAgent = (hostId: string) => rig.startAgent(hostId);
  const agents = { get: (hostId: string) => rig.agents.get(hostId) };
  const tunnelPorts = async (hostId: string) => (await host(hostId).ovs.listPorts('bint')).filter((p) => p.type === 'vxlan').map((p) => p.name).sort();
  const status = (portId: string) => rig.agents.get('h1')?.feed.view.ports.get(portId)?.status;
  async function port(id: string, hostId: string, mac: string, ip: string) {
    await send('port', id, { type: 'CreatePort', port: computePort(id, 'net-t', 'project-t', mac, ip, { portSecurityEnabled: false }) });
    guests.set(id, await rig.sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }

  beforeAll(async () => {
    rig = await startNetworkRig(['h1', 'h2', 'h3']);
    await send('network', 'net-t', {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id: 'net-t', name: 'net-t', projectId: 'project-t', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 4001 },
    });
  }, 120_000);

  afterAll(() => rig?.close());

  it('joins two registered hosts with a tunnel each way, and their ports ping each other', async () => {
    await startAgent('h1');
    await startAgent('h2');
    await until(async () => (await tunnelPorts('h1')).length === 1 && (await tunnelPorts('h2')).length === 1, 'a tunnel on each host', 15_000);
    expect(await tunnelPorts('h1')).toEqual([tunnelPortName(host('h2').tunnelIp)]);
    expect(await tunnelPorts('h2')).toEqual([tunnelPortName(host('h1').tunnelIp)]);
    await port('p1', 'h1', '02:00:00:00:7a:01', '10.7.0.1');
    await port('p2', 'h2', '02:00:00:00:7a:02', '10.7.0.2');
    await until(() => status('p1') === 'ACTIVE' && status('p2') === 'ACTIVE', 'p1 and p2 ACTIVE', 30_000);
    await until(() => rig.sim.ping(guests.get('p1')!, '10.7.0.2'), 'p1 -> p2', 15_000);
    expect(await rig.sim.ping(guests.get('p2')!, '10.7.0.1', 2)).toBe(true);
  }, 90_000);

  it('brings a host that starts later into the overlay, and takes a removed one out', async () => {
    await startAgent('h3');
    await port('p3', 'h3', '02:00:00:00:7a:03', '10.7.0.3');
    await until(async () => (await tunnelPorts('h1')).length === 2 && (await tunnelPorts('h3')).length === 2, 'h3 tunnelled to both', 15_000);
    await until(() => status('p3') === 'ACTIVE', 'p3 ACTIVE', 30_000);
    await until(() => rig.sim.ping(guests.get('p3')!, '10.7.0.1'), 'p3 -> p1', 15_000);
    expect(await rig.sim.ping(guests.get('p2')!, '10.7.0.3', 2)).toBe(true);

    // An agent restarting with the same address writes no new registration.
    const before = agents.get('h1')!.feed.view.agents.get('h3');
    await rig.stopAgent('h3');
    await startAgent('h3');
    expect(agents.get('h1')!.feed.view.agents.get('h3')).toBe(before);

    await rig.stopAgent('h3');
    await send('network_agent', 'h3', { type: 'RemoveNetworkAgent' });
    await until(async () => (await tunnelPorts('h1')).length === 1 && (await tunnelPorts('h2')).length === 1, 'the tunnels to h3 gone', 15_000);
    expect(await rig.sim.ping(guests.get('p1')!, '10.7.0.3', 2)).toBe(false);
    expect(await rig.sim.ping(guests.get('p1')!, '10.7.0.2', 2)).toBe(true);
  }, 120_000);
});
