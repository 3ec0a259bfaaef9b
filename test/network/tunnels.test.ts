// Tunnels by registration, with real packets: each host's network agent registers the address its
// VXLAN tunnels end at (RegisterNetworkAgent) and keeps a tunnel to every other registered agent,
// so a host joins the overlay by starting its agent and leaves it when an operator removes it. No
// static peer list: the simulated hosts here are not wired in advance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkAgent, tunnelPortName } from '../../agents/network/network.agent.js';
import type { Message } from '../../domains/kernel/decider.js';
import { networkCodecFor, networkDefinitions } from '../../infra/codecs/network.codec.js';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { openTestLog, type TestLog } from '../support/backends.js';
import { startSimHosts, type Guest, type SimNetwork } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };
type M = Message & Record<string, unknown>;
const available = await ovsAvailable();

describe.skipIf(!available)('tunnels between registered network agents (embedded log, userspace OVS, real packets)', () => {
  let t: TestLog;
  let domain: string;
  let worker: DeciderWorker;
  let bus: CommandBus;
  let sim: SimNetwork;
  const agents = new Map<string, NetworkAgent>();
  const guests = new Map<string, Guest>();

  const send = async (aggregateType: string, id: string, command: M): Promise<Reply> => {
    const reply = await bus.send({ domain, aggregateType, aggregateId: id, type: command.type, payload: networkCodecFor(aggregateType).encodeCommand(command), actor: ADMIN });
    if (reply.kind !== 'accepted') throw new Error(`${command.type} ${id}: ${reply.rejection.message}`);
    return reply;
  };
  const host = (id: string) => sim.hosts.find((h) => h.hostId === id)!;
  const startAgent = async (hostId: string) => {
    const h = host(hostId);
    agents.set(hostId, await NetworkAgent.start({ log: t.log, topology: t.topology, domain, hostId, ovs: h.ovs, bridge: 'bint', tunnelIp: h.tunnelIp, resyncMs: 500 }));
  };
  const tunnelPorts = async (hostId: string) => (await host(hostId).ovs.listPorts('bint')).filter((p) => p.type === 'vxlan').map((p) => p.name).sort();
  const status = (portId: string) => agents.get('h1')?.feed.view.ports.get(portId)?.status;
  async function port(id: string, hostId: string, mac: string, ip: string) {
    await send('port', id, {
      type: 'CreatePort',
      port: {
        id, networkId: 'net-t', projectId: 'project-t', name: id, macAddress: mac, fixedIps: [{ subnetId: 'net-t-v4', ipAddress: ip }],
        deviceOwner: 'compute:nova', deviceId: `vm-${id}`, securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [], adminStateUp: true,
      },
    });
    guests.set(id, await sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }

  beforeAll(async () => {
    t = await openTestLog('embedded', 4);
    domain = `network-${t.domain}`;
    worker = new DeciderWorker({ log: t.log, domain, aggregates: networkDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
    await worker.start();
    bus = await CommandBus.connect({ log: t.log, timeoutMs: 30_000 });
    sim = await startSimHosts(['h1', 'h2', 'h3'], { agentTunnels: true });
    await send('network', 'net-t', {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id: 'net-t', name: 'net-t', projectId: 'project-t', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 4001 },
    });
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.values()) await a.close().catch(() => undefined);
    await sim?.close();
    await bus?.close();
    await worker?.stop();
    await t?.close();
  });

  it('joins two registered hosts with a tunnel each way, and their ports ping each other', async () => {
    await startAgent('h1');
    await startAgent('h2');
    await until(async () => (await tunnelPorts('h1')).length === 1 && (await tunnelPorts('h2')).length === 1, 'a tunnel on each host', 15_000);
    expect(await tunnelPorts('h1')).toEqual([tunnelPortName(host('h2').tunnelIp)]);
    expect(await tunnelPorts('h2')).toEqual([tunnelPortName(host('h1').tunnelIp)]);
    await port('p1', 'h1', '02:00:00:00:7a:01', '10.7.0.1');
    await port('p2', 'h2', '02:00:00:00:7a:02', '10.7.0.2');
    await until(() => status('p1') === 'ACTIVE' && status('p2') === 'ACTIVE', 'p1 and p2 ACTIVE', 30_000);
    await until(() => sim.ping(guests.get('p1')!, '10.7.0.2'), 'p1 -> p2', 15_000);
    expect(await sim.ping(guests.get('p2')!, '10.7.0.1', 2)).toBe(true);
  }, 90_000);

  it('brings a host that starts later into the overlay, and takes a removed one out', async () => {
    await startAgent('h3');
    await port('p3', 'h3', '02:00:00:00:7a:03', '10.7.0.3');
    await until(async () => (await tunnelPorts('h1')).length === 2 && (await tunnelPorts('h3')).length === 2, 'h3 tunnelled to both', 15_000);
    await until(() => status('p3') === 'ACTIVE', 'p3 ACTIVE', 30_000);
    await until(() => sim.ping(guests.get('p3')!, '10.7.0.1'), 'p3 -> p1', 15_000);
    expect(await sim.ping(guests.get('p2')!, '10.7.0.3', 2)).toBe(true);

    // An agent restarting with the same address writes no new registration.
    const before = agents.get('h1')!.feed.view.agents.get('h3');
    await agents.get('h3')!.close();
    agents.delete('h3');
    await startAgent('h3');
    expect(agents.get('h1')!.feed.view.agents.get('h3')).toBe(before);

    await agents.get('h3')!.close();
    agents.delete('h3');
    await send('network_agent', 'h3', { type: 'RemoveNetworkAgent' });
    await until(async () => (await tunnelPorts('h1')).length === 1 && (await tunnelPorts('h2')).length === 1, 'the tunnels to h3 gone', 15_000);
    expect(await sim.ping(guests.get('p1')!, '10.7.0.3', 2)).toBe(false);
    expect(await sim.ping(guests.get('p1')!, '10.7.0.2', 2)).toBe(true);
  }, 120_000);
});
