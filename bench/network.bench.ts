// Network (issue 6 h): the network agent's cost on one host, with a real userspace OVS.
//  1. Rules programmed per second for 1,000 ports on one host (10 networks, as many remote ports
//     on 9 other hosts, every port in its project's default group: conntrack firewall flows and a
//     remote-group conjunction over all 1,000 members): compiling the table (flows.ts), and applying it whole to a real bridge
//     (`ovs-ofctl --bundle replace-flows`), first into an empty bridge, then again unchanged (an
//     agent restart), then with one port added. Baseline in the same process: replace-flows of a
//     one-flow table, OVS's fixed cost per bundle.
//  2. Port create -> ACTIVE through the log (embedded): CreatePort, an OVS interface plugged with
//     its iface-id (as Nova's VIF plugging does; internal ports, no namespaces), BindPort, until
//     the agent has applied its table and the port is ACTIVE in the view; ports one after the
//     other on a host that already has some, all in the default group.
//
//   npm run bench:network                    (needs root and Open vSwitch: scripts/test-env.sh)
//   STRATA_BENCH_PORTS=1000 STRATA_BENCH_ACTIVE_PORTS=100 npm run bench:network
import { performance } from 'node:perf_hooks';
import { NetworkAgent } from '../agents/network/network.agent.js';
import { compileFlows, type HostDesiredState } from '../agents/network/flows.js';
import type { FirewallRule, PortFirewall } from '../agents/network/security-groups.js';
import { Ovs } from '../agents/network/ovs.js';
import type { Message } from '../domains/kernel/decider.js';
import { networkCodecFor, networkDefinitions } from '../infra/codecs/network.codec.js';
import type { Actor } from '../infra/envelope/envelope.js';
import { ensureOvs, ovsAvailable } from '../infra/ovs/launcher.js';
import { CommandBus } from '../infra/runtime/command-bus.js';
import { DeciderWorker } from '../infra/runtime/decider-worker.js';
import { openTestLog } from '../test/support/backends.js';

const PORTS = Number(process.env.STRATA_BENCH_PORTS ?? 1000);
const ACTIVE_PORTS = Number(process.env.STRATA_BENCH_ACTIVE_PORTS ?? 100);
const figures: string[] = [];
const figure = (name: string, value: number, unit: string) => figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(3)} ${unit}`);
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
const mac = (i: number) => `fa:16:3e:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;

if (!(await ovsAvailable())) {
  console.error('bench:network needs root and Open vSwitch (bash scripts/test-env.sh installs it)');
  process.exit(1);
}
const ovs = new Ovs(await ensureOvs());
const bridge = `bb${process.pid % 100000}`;
await ovs.createBridge(bridge);

try {
  // 1. Rules per second. Every port is in its project's default group, as Neutron makes it: all
  // egress, ingress from the group's members (all the ports here: the worst case for remote groups).
  const ipOf = (i: number) => `10.${i % 10}.${Math.floor(i / 250)}.${(i % 250) + 2}`;
  const defaultGroup = (ports: number): PortFirewall => {
    const members = Array.from({ length: ports }, (_, i) => ipOf(i));
    const rule = (direction: 'ingress' | 'egress', ethertype: 'IPv4' | 'IPv6', group: boolean): FirewallRule => ({
      direction, ethertype, protocol: null, portRangeMin: null, portRangeMax: null, remotePrefix: null,
      remoteGroup: group ? { id: 'default', members: ethertype === 'IPv4' ? members : [] } : null,
    });
    return { stateful: true, rules: [rule('egress', 'IPv4', false), rule('egress', 'IPv6', false), rule('ingress', 'IPv4', true), rule('ingress', 'IPv6', true)] };
  };
  const state = (ports: number): HostDesiredState => ({
    networks: Array.from({ length: 10 }, (_, n) => ({ networkId: `net-${n}`, vni: 5000 + n, tag: 5000 + n })),
    ports: Array.from({ length: ports }, (_, i) => ({ portId: `p-${String(i).padStart(5, '0')}`, ofport: i + 1, mac: mac(i), ips: [ipOf(i)], networkId: `net-${i % 10}`, portSecurity: true, firewall: defaultGroup(ports) })),
    remotePorts: Array.from({ length: ports }, (_, i) => ({ mac: mac(100_000 + i), networkId: `net-${i % 10}`, hostId: `host-${i % 9}` })),
    tunnels: Array.from({ length: 9 }, (_, h) => ({ hostId: `host-${h}`, ofport: 60_000 + h })),
  });
  const t0 = performance.now();
  const flows = compileFlows(state(PORTS));
  const compileMs = performance.now() - t0;
  const timed = async (table: string[]) => {
    const t = performance.now();
    await ovs.replaceFlows(bridge, table);
    return performance.now() - t;
  };
  const baselineMs = await timed(['table=0,priority=0,actions=drop']);
  await timed(['table=0,priority=0,actions=drop']);
  const fullMs = await timed(flows);
  const unchangedMs = await timed(flows);
  const onePlusMs = await timed(compileFlows(state(PORTS + 1)));
  const rate = flows.length / ((compileMs + fullMs) / 1000);
  console.log(
    `${PORTS} ports on one host: ${flows.length} flows; compile ${compileMs.toFixed(1)} ms, replace-flows into the bridge ${fullMs.toFixed(0)} ms ` +
      `(${rate.toFixed(0)} rules/s with the compile), again unchanged ${unchangedMs.toFixed(0)} ms, with one port more ${onePlusMs.toFixed(0)} ms; one-flow bundle ${baselineMs.toFixed(0)} ms`,
  );
  figure('network.flows.ports', PORTS, 'ports');
  figure('network.flows.rules', flows.length, 'rules');
  figure('network.flows.compile', compileMs, 'ms');
  figure('network.flows.apply_full', fullMs, 'ms');
  figure('network.flows.rules_per_second', rate, 'rules/s');
  figure('network.flows.apply_unchanged', unchangedMs, 'ms');
  figure('network.flows.apply_one_more_port', onePlusMs, 'ms');
  figure('network.flows.apply_one_flow_baseline', baselineMs, 'ms');
  figure('network.flows.apply_full_vs_baseline', fullMs / baselineMs, 'x');
  await ovs.replaceFlows(bridge, ['table=0,priority=0,actions=drop']);

  // 2. Port create -> ACTIVE through the log.
  const t = await openTestLog('embedded', 4);
  const domain = `network-${t.domain}`;
  const worker = new DeciderWorker({ log: t.log, domain, aggregates: networkDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
  await worker.start();
  const bus = await CommandBus.connect({ log: t.log, timeoutMs: 30_000 });
  const admin: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };
  const send = async (aggregateType: string, id: string, command: Message & Record<string, unknown>) => {
    const r = await bus.send({ domain, aggregateType, aggregateId: id, type: command.type, payload: networkCodecFor(aggregateType).encodeCommand(command), actor: admin });
    if (r.kind !== 'accepted') throw new Error(`${command.type} ${id}: ${r.rejection.message}`);
  };
  await send('network', 'bench-net', {
    type: 'CreateNetwork', segmentAllocated: true,
    network: { id: 'bench-net', name: 'bench', projectId: 'p', adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 4242 },
  });
  // Every port in the project's default group (all egress, ingress from the group), as Neutron gives them.
  await send('security_group', 'bench-sg', { type: 'CreateSecurityGroup', securityGroup: { id: 'bench-sg', projectId: 'p', name: 'default', description: '', stateful: true, isDefault: true } });
  const agent = await NetworkAgent.start({ log: t.log, topology: t.topology, domain, hostId: 'bench-host', ovs, bridge, resyncMs: 60_000 });
  const latencies: number[] = [];
  for (let i = 0; i < ACTIVE_PORTS; i++) {
    const id = `bp-${i}`;
    const started = performance.now();
    await send('port', id, {
      type: 'CreatePort',
      port: { id, networkId: 'bench-net', projectId: 'p', name: id, macAddress: mac(200_000 + i), fixedIps: [{ subnetId: 's', ipAddress: `10.99.${Math.floor(i / 250)}.${(i % 250) + 2}` }], deviceOwner: 'compute:nova', deviceId: id, securityGroups: ['bench-sg'], portSecurityEnabled: true, allowedAddressPairs: [], adminStateUp: true },
    });
    await ovs.addPort(bridge, `bq${i}`, { type: 'internal', externalIds: { 'iface-id': id } });
    await send('port', id, { type: 'BindPort', hostId: 'bench-host' });
    while (agent.feed.view.ports.get(id)?.status !== 'ACTIVE') await new Promise((r) => setTimeout(r, 1));
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);
  console.log(`port create -> ACTIVE (embedded log, one agent, ${ACTIVE_PORTS} ports one after the other): p50 ${pct(latencies, 50).toFixed(1)} ms, p99 ${pct(latencies, 99).toFixed(1)} ms; tables applied ${agent.stats.tablesApplied}`);
  figure('network.port.create_to_active.p50', pct(latencies, 50), 'ms');
  figure('network.port.create_to_active.p99', pct(latencies, 99), 'ms');
  await agent.close();
  await bus.close();
  await worker.stop();
  await t.close();
} finally {
  await ovs.deleteBridge(bridge).catch((e) => console.error(`deleting ${bridge}: ${(e as Error).message}`));
}
for (const f of figures) console.log(f);
