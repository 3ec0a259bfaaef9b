// The network agent end to end on the embedded log, with real packets: the network deciders run
// here; two simulated hosts (userspace OVS in namespaces, joined by VXLAN) each run a network
// agent. Ports are created and bound through the log; the guests' veths are plugged into their
// host's integration bridge; each agent compiles and applies its table and reports the ports
// ACTIVE. Ports of one network ping each other across the hosts both ways; two tenants' networks
// with the same CIDR stay apart; a port bound while its agent was stopped is wired by the agent
// started again, and the counters of the unchanged ports keep running across that restart; a
// port sending with a forged MAC is dropped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkAgent } from '../../agents/network/network.agent.js';
import type { Message } from '../../domains/kernel/decider.js';
import { networkCodecFor, networkDefinitions } from '../../infra/codecs/network.codec.js';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { openTestLog, type TestLog } from '../support/backends.js';
import { inNs, startSimHosts, type Guest, type SimNetwork } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };
type M = Message & Record<string, unknown>;
const available = await ovsAvailable();

describe.skipIf(!available)('the network agent on two hosts (embedded log, userspace OVS, real packets)', () => {
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
  const startAgent = async (hostId: string) => {
    const h = sim.hosts.find((x) => x.hostId === hostId)!;
    agents.set(hostId, await NetworkAgent.start({ log: t.log, topology: t.topology, domain, hostId, ovs: h.ovs, bridge: 'bint', tunnelIp: h.tunnelIp, resyncMs: 500 }));
  };
  const status = (portId: string) => [...agents.values()][0]?.feed.view.ports.get(portId)?.status;

  async function network(id: string, vni: number) {
    await send('network', id, {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id, name: id, projectId: `project-of-${id}`, adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: vni },
    });
  }
  async function port(id: string, networkId: string, hostId: string, mac: string, ip: string) {
    await send('port', id, {
      type: 'CreatePort',
      port: {
        id, networkId, projectId: `project-of-${networkId}`, name: id, macAddress: mac, fixedIps: [{ subnetId: `${networkId}-v4`, ipAddress: ip }],
        deviceOwner: 'compute:nova', deviceId: `vm-${id}`, securityGroups: ['sg-open'], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
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
    sim = await startSimHosts(['h1', 'h2'], { agentTunnels: true });
    // Ports with port security and no group get no IP traffic (Neutron's rule): these are open to all.
    await send('security_group', 'sg-open', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg-open', projectId: 'project-sg', name: 'open', description: '', stateful: true, isDefault: false } });
    await send('security_group', 'sg-open', {
      type: 'AddSecurityGroupRule',
      rule: { id: 'sg-open-in', direction: 'ingress', ethertype: 'IPv4', protocol: '', portRangeMin: null, portRangeMax: null, remoteIpPrefix: '', remoteGroupId: '', description: '' },
    });
    await startAgent('h1');
    await startAgent('h2');
  }, 120_000);

  afterAll(async () => {
    for (const a of agents.values()) await a.close().catch(() => undefined);
    await sim?.close();
    await bus?.close();
    await worker?.stop();
    await t?.close();
  });

  it('wires bound ports: ACTIVE, and ports of one network ping each other across hosts both ways', async () => {
    await network('net-a', 2001);
    await port('pa1', 'net-a', 'h1', '02:00:00:00:0a:01', '10.0.0.1');
    await port('pa2', 'net-a', 'h2', '02:00:00:00:0a:02', '10.0.0.2');
    await until(() => status('pa1') === 'ACTIVE' && status('pa2') === 'ACTIVE', 'both ports ACTIVE', 30_000);
    await until(() => sim.ping(guests.get('pa1')!, '10.0.0.2'), 'pa1 -> pa2', 15_000);
    expect(await sim.ping(guests.get('pa2')!, '10.0.0.1', 3)).toBe(true);
  }, 60_000);

  it("keeps two tenants' networks with the same CIDR apart", async () => {
    await network('net-b', 2002);
    await port('pb1', 'net-b', 'h1', '02:00:00:00:0b:01', '10.0.0.1');
    await port('pb3', 'net-b', 'h2', '02:00:00:00:0b:03', '10.0.0.3');
    await until(() => status('pb1') === 'ACTIVE' && status('pb3') === 'ACTIVE', 'net-b ports ACTIVE', 30_000);
    await until(() => sim.ping(guests.get('pb1')!, '10.0.0.3'), 'pb1 -> pb3', 15_000);
    expect(await sim.ping(guests.get('pa1')!, '10.0.0.3', 2)).toBe(false); // pb3 is the other tenant's
    expect(await sim.ping(guests.get('pb1')!, '10.0.0.2', 2)).toBe(false); // pa2 is the other tenant's
    expect(await sim.ping(guests.get('pa1')!, '10.0.0.2')).toBe(true);
  }, 60_000);

  it('drops a port that sends with a forged MAC, and lets it through with its own again', async () => {
    const g = guests.get('pa1')!;
    await inNs(g.ns, 'ip', 'neigh', 'flush', 'all');
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:0a:99');
    expect(await sim.ping(g, '10.0.0.2', 2)).toBe(false);
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', g.mac);
    await until(() => sim.ping(g, '10.0.0.2'), 'pa1 -> pa2 with its own MAC', 15_000);
  }, 60_000);

  it('a restarted agent applies what changed while it was down, and unchanged ports keep their counters', async () => {
    const h1 = sim.hosts.find((x) => x.hostId === 'h1')!;
    const pa1Flow = async () => (await h1.ovs.dumpFlows('bint', 'table=0')).find((f) => f.match.includes('dl_src=02:00:00:00:0a:01') && !f.match.includes('arp'));
    expect(await sim.ping(guests.get('pa1')!, '10.0.0.2', 3)).toBe(true);
    await until(async () => ((await pa1Flow())?.packets ?? 0) > 0, 'counters of pa1');
    const before = (await pa1Flow())!;

    await agents.get('h1')!.close();
    agents.delete('h1');
    // While h1's agent is down: a new port of net-a is bound to h1.
    await port('pa3', 'net-a', 'h1', '02:00:00:00:0a:03', '10.0.0.4');
    expect(await sim.ping(guests.get('pa3')!, '10.0.0.2', 1)).toBe(false);
    await startAgent('h1');
    await until(() => status('pa3') === 'ACTIVE', 'pa3 ACTIVE after the restart', 30_000);
    await until(() => sim.ping(guests.get('pa3')!, '10.0.0.2'), 'pa3 -> pa2', 15_000);
    const after = (await pa1Flow())!;
    expect(after.packets).toBeGreaterThanOrEqual(before.packets);
    expect(after.durationSec).toBeGreaterThanOrEqual(before.durationSec);
  }, 90_000);
});
