// The network agent as its own process (`npm run agent:network`, agents/network/main.ts) on both
// logs, with real packets: it joins through the log alone, registers its tunnel address, and its
// host's port pings a port on a host whose agent runs in this process. SIGKILLed and started again
// (issue 6 f): a port bound while it was down is wired, and the flow counters of the port that was
// already there keep running (the table it recomputes is the same, so nothing is replaced).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkAgent } from '../../agents/network/network.agent.js';
import type { Message } from '../../domains/kernel/decider.js';
import { networkCodecFor, networkDefinitions } from '../../infra/codecs/network.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { BACKENDS, openTestLog, type Backend, type TestLog } from '../support/backends.js';
import { startSimHosts, type Guest, type SimNetwork } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };
type M = Message & Record<string, unknown>;
const available = await ovsAvailable();

describe.skipIf(!available).each(BACKENDS)('the network agent process (%s log, userspace OVS, real packets)', (backend: Backend) => {
  let t: TestLog;
  let domain: string;
  let worker: DeciderWorker;
  let bus: CommandBus;
  let sim: SimNetwork;
  let inProcess: NetworkAgent | undefined;
  const children: ChildProcess[] = [];
  const guests = new Map<string, Guest>();

  const send = async (aggregateType: string, id: string, command: M): Promise<Reply> => {
    const reply = await bus.send({ domain, aggregateType, aggregateId: id, type: command.type, payload: networkCodecFor(aggregateType).encodeCommand(command), actor: ADMIN });
    if (reply.kind !== 'accepted') throw new Error(`${command.type} ${id}: ${reply.rejection.message}`);
    return reply;
  };
  const host = (id: string) => sim.hosts.find((h) => h.hostId === id)!;
  const status = (portId: string) => inProcess?.feed.view.ports.get(portId)?.status;

  /** Starts agents/network/main.ts for h1 in a process of its own and waits for its "ready" line. */
  function startAgentProcess(): Promise<ChildProcess> {
    const h1 = host('h1');
    const env = {
      ...process.env,
      ...t.env,
      STRATA_NETWORK_DOMAIN: domain,
      STRATA_PARTITIONS: String(t.topology.partitions),
      STRATA_REPLY_PARTITIONS: String(t.topology.replyPartitions ?? t.topology.partitions),
      STRATA_AGENT_HOST_ID: 'h1',
      STRATA_OVS_DIR: h1.ovs.endpoint.rundir,
      STRATA_NETWORK_BRIDGE: 'bint',
      STRATA_NETWORK_TUNNEL_IP: h1.tunnelIp,
      STRATA_NETWORK_DHCP: '0',
      STRATA_NETWORK_RESYNC_S: '0.5',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'agents/network/main.ts')], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return new Promise((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('ready')) resolve(child);
      });
      child.once('exit', (code, signal) => reject(new Error(`the network agent exited (${code ?? signal}) before it was ready`)));
    });
  }

  async function port(id: string, hostId: string, mac: string, ip: string) {
    await send('port', id, {
      type: 'CreatePort',
      port: {
        id, networkId: 'net-p', projectId: 'project-p', name: id, macAddress: mac, fixedIps: [{ subnetId: 'net-p-v4', ipAddress: ip }],
        deviceOwner: 'compute:nova', deviceId: `vm-${id}`, securityGroups: ['sg-p'], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true,
      },
    });
    guests.set(id, await sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }

  beforeAll(async () => {
    t = await openTestLog(backend, 4);
    domain = `network-${t.domain}`;
    worker = new DeciderWorker({ log: t.log, domain, aggregates: networkDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
    await worker.start();
    bus = await CommandBus.connect({ log: t.log, timeoutMs: 30_000 });
    sim = await startSimHosts(['h1', 'h2'], { agentTunnels: true });
    await send('network', 'net-p', {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id: 'net-p', name: 'net-p', projectId: 'project-p', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 5001 },
    });
    // The default group's way: members reach each other.
    await send('security_group', 'sg-p', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg-p', projectId: 'project-p', name: 'default', description: '', stateful: true, isDefault: true } });
    const h2 = host('h2');
    inProcess = await NetworkAgent.start({ log: t.log, topology: t.topology, domain, hostId: 'h2', ovs: h2.ovs, bridge: 'bint', tunnelIp: h2.tunnelIp, resyncMs: 500 });
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await inProcess?.close().catch(() => undefined);
    await sim?.close();
    await bus?.close();
    await worker?.stop();
    await t?.close();
  });

  it('joins through the log, tunnels to the other host, and wires its port', async () => {
    await startAgentProcess();
    await port('p1', 'h1', '02:00:00:00:8b:01', '10.8.0.1');
    await port('p2', 'h2', '02:00:00:00:8b:02', '10.8.0.2');
    await until(() => status('p1') === 'ACTIVE' && status('p2') === 'ACTIVE', 'p1 and p2 ACTIVE', 60_000);
    await until(() => sim.ping(guests.get('p1')!, '10.8.0.2'), 'p1 -> p2', 20_000);
    expect(await sim.ping(guests.get('p2')!, '10.8.0.1', 2)).toBe(true);
  }, 120_000);

  it('SIGKILLed and started again: wires a port bound meanwhile, and the running port keeps its counters', async () => {
    const h1 = host('h1');
    const p1Flow = async () => (await h1.ovs.dumpFlows('bint', 'table=0')).find((f) => f.match.includes('dl_src=02:00:00:00:8b:01') && !f.match.includes('arp'));
    expect(await sim.ping(guests.get('p1')!, '10.8.0.2', 3)).toBe(true);
    await until(async () => ((await p1Flow())?.packets ?? 0) > 0, 'counters of p1');
    const before = (await p1Flow())!;

    const agent = children[children.length - 1]!;
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGKILL');
    await exited;
    await port('p3', 'h1', '02:00:00:00:8b:03', '10.8.0.3');
    // Nothing wires it while the agent is down (the table is the one the agent left).
    expect(await sim.ping(guests.get('p3')!, '10.8.0.2', 1)).toBe(false);
    // The running port's traffic goes on without its agent.
    expect(await sim.ping(guests.get('p1')!, '10.8.0.2', 2)).toBe(true);

    await startAgentProcess();
    await until(() => status('p3') === 'ACTIVE', 'p3 ACTIVE after the restart', 60_000);
    await until(() => sim.ping(guests.get('p3')!, '10.8.0.2'), 'p3 -> p2', 20_000);
    const after = (await p1Flow())!;
    expect(after.packets).toBeGreaterThan(before.packets);
    expect(after.durationSec).toBeGreaterThanOrEqual(before.durationSec);
  }, 180_000);
});
