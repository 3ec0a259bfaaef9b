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
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { BACKENDS, type Backend } from '../support/backends.js';
import { computePort, startNetworkRig, type NetworkRig } from '../support/network-rig.js';
import type { Guest } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const available = await ovsAvailable();

describe.skipIf(!available).each(BACKENDS)('the network agent process (%s log, userspace OVS, real packets)', (backend: Backend) => {
  let rig: NetworkRig;
  let inProcess: NetworkAgent | undefined;
  const children: ChildProcess[] = [];
  const guests = new Map<string, Guest>();
  const send: NetworkRig['send'] = (...args) => rig.send(...args);
  const host = (id: string) => rig.host(id);
  const status = (portId: string) => inProcess?.feed.view.ports.get(portId)?.status;

  /** Starts agents/network/main.ts for h1 in a process of its own and waits for its "ready" line. */
  function startAgentProcess(): Promise<ChildProcess> {
    const h1 = host('h1');
    const env = {
      ...process.env,
      ...rig.t.env,
      STRATA_NETWORK_DOMAIN: rig.domain,
      STRATA_PARTITIONS: String(rig.t.topology.partitions),
      STRATA_REPLY_PARTITIONS: String(rig.t.topology.replyPartitions ?? rig.t.topology.partitions),
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
    await send('port', id, { type: 'CreatePort', port: computePort(id, 'net-p', 'project-p', mac, ip, { securityGroups: ['sg-p'] }) });
    guests.set(id, await rig.sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }

  beforeAll(async () => {
    rig = await startNetworkRig(['h1', 'h2'], { backend });
    await send('network', 'net-p', {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id: 'net-p', name: 'net-p', projectId: 'project-p', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 5001 },
    });
    // The default group's way: members reach each other.
    await send('security_group', 'sg-p', { type: 'CreateSecurityGroup', securityGroup: { id: 'sg-p', projectId: 'project-p', name: 'default', description: '', stateful: true, isDefault: true } });
    inProcess = await rig.startAgent('h2');
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rig?.close();
  });

  it('joins through the log, tunnels to the other host, and wires its port', async () => {
    await startAgentProcess();
    await port('p1', 'h1', '02:00:00:00:8b:01', '10.8.0.1');
    await port('p2', 'h2', '02:00:00:00:8b:02', '10.8.0.2');
    await until(() => status('p1') === 'ACTIVE' && status('p2') === 'ACTIVE', 'p1 and p2 ACTIVE', 60_000);
    await until(() => rig.sim.ping(guests.get('p1')!, '10.8.0.2'), 'p1 -> p2', 20_000);
    expect(await rig.sim.ping(guests.get('p2')!, '10.8.0.1', 2)).toBe(true);
  }, 120_000);

  it('SIGKILLed and started again: wires a port bound meanwhile, and the running port keeps its counters', async () => {
    const h1 = host('h1');
    const p1Flow = async () => (await h1.ovs.dumpFlows('bint', 'table=0')).find((f) => f.match.includes('dl_src=02:00:00:00:8b:01') && !f.match.includes('arp'));
    expect(await rig.sim.ping(guests.get('p1')!, '10.8.0.2', 3)).toBe(true);
    await until(async () => ((await p1Flow())?.packets ?? 0) > 0, 'counters of p1');
    const before = (await p1Flow())!;

    const agent = children[children.length - 1]!;
    const exited = new Promise((r) => agent.once('exit', r));
    agent.kill('SIGKILL');
    await exited;
    await port('p3', 'h1', '02:00:00:00:8b:03', '10.8.0.3');
    // Nothing wires it while the agent is down (the table is the one the agent left).
    expect(await rig.sim.ping(guests.get('p3')!, '10.8.0.2', 1)).toBe(false);
    // The running port's traffic goes on without its agent.
    expect(await rig.sim.ping(guests.get('p1')!, '10.8.0.2', 2)).toBe(true);

    await startAgentProcess();
    await until(() => status('p3') === 'ACTIVE', 'p3 ACTIVE after the restart', 60_000);
    await until(() => rig.sim.ping(guests.get('p3')!, '10.8.0.2'), 'p3 -> p2', 20_000);
    const after = (await p1Flow())!;
    expect(after.packets).toBeGreaterThan(before.packets);
    expect(after.durationSec).toBeGreaterThanOrEqual(before.durationSec);
  }, 180_000);
});
