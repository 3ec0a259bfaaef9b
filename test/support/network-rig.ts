// The network packet tests' common ground: a test log with the network deciders running on it, a
// command bus that sends as an admin, simulated hosts (userspace OVS in namespaces, see
// ovs-hosts.ts) and network agents started on them, all closed in the right order.
import { NetworkAgent, type NetworkAgentOptions } from '../../agents/network/network.agent.js';
import type { Message } from '../../domains/kernel/decider.js';
import type { Port } from '../../domains/network/network.types.js';
import { networkCodecFor, networkDefinitions } from '../../infra/codecs/network.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { openTestLog, type Backend, type TestLog } from './backends.js';
import { startSimHosts, type SimHost, type SimNetwork } from './ovs-hosts.js';

const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };

export interface NetworkRig {
  t: TestLog;
  /** The network domain's name on this log (unique per rig). */
  domain: string;
  bus: CommandBus;
  sim: SimNetwork;
  /** Running agents by host id. */
  agents: Map<string, NetworkAgent>;
  host(hostId: string): SimHost;
  /** Sends a network command as an admin; throws with the refusal's message when refused. */
  send(aggregateType: string, id: string, command: Message & Record<string, unknown>): Promise<Reply>;
  /** Starts a host's agent on its `bint`, registering the host's tunnel address. */
  startAgent(hostId: string, options?: Partial<NetworkAgentOptions>): Promise<NetworkAgent>;
  stopAgent(hostId: string): Promise<void>;
  close(): Promise<void>;
}

export async function startNetworkRig(hostIds: string[], options: { backend?: Backend } = {}): Promise<NetworkRig> {
  const t = await openTestLog(options.backend ?? 'embedded', 4);
  const domain = `network-${t.domain}`;
  const worker = new DeciderWorker({ log: t.log, domain, aggregates: networkDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
  await worker.start();
  const bus = await CommandBus.connect({ log: t.log, timeoutMs: 30_000 });
  const sim = await startSimHosts(hostIds);
  const agents = new Map<string, NetworkAgent>();
  const host = (hostId: string) => {
    const h = sim.hosts.find((x) => x.hostId === hostId);
    if (!h) throw new Error(`no simulated host ${hostId}`);
    return h;
  };
  return {
    t,
    domain,
    bus,
    sim,
    agents,
    host,
    async send(aggregateType, id, command) {
      const reply = await bus.send({ domain, aggregateType, aggregateId: id, type: command.type, payload: networkCodecFor(aggregateType).encodeCommand(command), actor: ADMIN });
      if (reply.kind !== 'accepted') throw new Error(`${command.type} ${id}: ${reply.rejection.message}`);
      return reply;
    },
    async startAgent(hostId, over = {}) {
      const h = host(hostId);
      const agent = await NetworkAgent.start({ log: t.log, topology: t.topology, domain, hostId, ovs: h.ovs, bridge: 'bint', tunnelIp: h.tunnelIp, resyncMs: 500, ...over });
      agents.set(hostId, agent);
      return agent;
    },
    async stopAgent(hostId) {
      await agents.get(hostId)?.close();
      agents.delete(hostId);
    },
    async close() {
      for (const a of agents.values()) await a.close().catch(() => undefined);
      await sim.close();
      await bus.close();
      await worker.stop();
      await t.close();
    },
  };
}

/** A tenant's compute port on a network, with its one fixed IP on `<network>-v4`; `over` changes any field. */
export function computePort(id: string, networkId: string, projectId: string, mac: string, ip: string, over: Partial<Port> = {}): Port {
  return {
    id, networkId, projectId, name: id, macAddress: mac, fixedIps: [{ subnetId: `${networkId}-v4`, ipAddress: ip }],
    deviceOwner: 'compute:nova', deviceId: `vm-${id}`, securityGroups: [], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true, ...over,
  };
}
