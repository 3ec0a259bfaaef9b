// Issue 6 acceptance g: a QEMU guest booted by the compute agent gets its port on OVS and reaches
// another port on its network. One host, all real: a private userspace-datapath Open vSwitch in
// the root namespace with one integration bridge, the host's network agent (no tunnels), and its
// compute agent with the qemu driver (TCG) plugging the guests' taps into that bridge; the cloud
// (identity, compute and network APIs, deciders, the conductor) on the embedded log. The other
// port is a network namespace with a veth into the same bridge, plugged as a VIF is plugged.
//
// Through the gRPC API: CreateServer on the network -> the port the server made is ACTIVE, bound to
// the host, device_id the server and device_owner compute:<zone>; its tap (tap + 11 characters of
// the port id) is on the bridge with the port as iface-id; the guest configures the port's address
// (dracut's ip= on its kernel command line) and pings the other port, and the other port pings the
// guest; a TCP connection from the guest carries data to the other port (checksums complete
// through the userspace datapath). AttachInterface on the running guest (a network, then a port the
// user made) -> hot-plugged NICs the guest sees (/sys/class/net on its console) and ports ACTIVE. A
// restarted compute agent adopts the guest with its taps. DetachInterface -> the NIC gone from the
// guest and the bridge, the port the server made deleted. Stop -> the taps gone and the ports DOWN;
// start -> plugged again, ACTIVE, the guest reaching the other port again. Delete the server -> the
// port it made at boot deleted, the user's port kept, unbound, with its device cleared. Attach on a
// suspended server (a fake host beside) is FAILED_PRECONDITION naming the state.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeAgents, type HostConfig } from '../../agents/compute/compute.agent.js';
import { FakeDriver } from '../../agents/compute/fake.driver.js';
import { QemuDriver, tapName, testImageBoot } from '../../agents/compute/qemu.driver.js';
import { NetworkAgent } from '../../agents/network/network.agent.js';
import { Ovs } from '../../agents/network/ovs.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import type { Message } from '../../domains/kernel/decider.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import { ensureOvs, ovsAvailable, stopOvs } from '../../infra/ovs/launcher.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { codeOf, errorOf, startTestCloud, type TestCloud } from '../identity/cloud.js';
import { TOPOLOGY } from '../compute/compute-cloud.js';
import { until } from '../support/wait.js';

const run = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;
const hasQemu = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const available = hasQemu && (await ovsAvailable());

const inventory = (vcpus: number, ramMb: number): HostConfig['inventory'] => ({
  vcpus: { total: vcpus, allocationRatio: 1 }, ramMb: { total: ramMb, allocationRatio: 1 }, diskGb: { total: 20, allocationRatio: 1 },
});

describe.skipIf(!available)('a qemu guest on its port (acceptance g: userspace OVS, the network agent, the qemu driver, the gRPC API)', () => {
  const id = randomUUID().slice(0, 6);
  const bridge = 'br-int';
  const hostId = `qp-${id}`;
  const zone = `az-${id}`;
  const fakeHost = `qpf-${id}`;
  const fakeZone = `azf-${id}`;
  const ns = `sqp-${id}`;
  const veth = `vqp${id}`;
  const ovsDir = `/tmp/sqp-${id}`;
  let t: TestCloud;
  let ovs: Ovs;
  let netAgent: NetworkAgent;
  let agents: ComputeAgents;
  let qemu: QemuDriver;
  let imageDir: string;
  let listener: ChildProcess | undefined;
  let received = '';
  let stateDir: string;
  let admin: StrataClient;
  let member: StrataClient;
  let bus: CommandBus;
  let flavorId: string;
  let networkId: string;
  /** The other port of the network: the namespace's veth. */
  let peer: { id: string; ip: string; mac: string };
  const errors: Error[] = [];

  beforeAll(async () => {
    imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    ovs = new Ovs(await ensureOvs({ dir: ovsDir }));
    await ovs.createBridge(bridge);
    t = await startTestCloud({}, { conductor: { tickMs: 200 } });
    bus = await CommandBus.connect({ log: t.log, timeoutMs: 30_000 });
    netAgent = await NetworkAgent.start({ log: t.log, topology: TOPOLOGY, hostId, ovs, bridge, resyncMs: 500, onError: (e) => errors.push(e) });
    // The test image with an os_command_line that has the guest ping the other port (set below).
    // Short: QMP socket paths are limited to about 107 bytes.
    stateDir = mkdtempSync('/tmp/sqq-');
    await startComputeAgent();
    admin = t.client(await t.adminToken());
    const project = (await admin.call('CreateProject', { project: { name: `qp-${id}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `qp-${id}`, domainId: 'default' }, password: 'qemu-port-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    member = t.client(await t.login(user.name, 'qemu-port-pw', { projectId: project.id }));
    flavorId = (await admin.call('CreateFlavor', { flavor: { name: `tiny-${id}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;

    networkId = (await member.call('CreateNetwork', { network: { name: 'web' } })).network.id;
    await member.call('CreateSubnet', { subnet: { networkId, cidr: '10.77.0.0/24', name: 'web-v4' } });
    // The other port: made through the API, bound to this host, a namespace's veth plugged as a VIF is.
    const p = (await member.call('CreatePort', { port: { networkId, name: 'peer', fixedIps: [{ ipAddress: '10.77.0.50' }] } })).port;
    peer = { id: p.id, ip: '10.77.0.50', mac: p.macAddress };
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    const inNs = (...args: string[]) => run('ip', ['netns', 'exec', ns, ...args]);
    await inNs('ip', 'link', 'set', 'eth0', 'address', peer.mac, 'mtu', '1450');
    await inNs('ip', 'addr', 'add', `${peer.ip}/24`, 'dev', 'eth0');
    await inNs('ip', 'link', 'set', 'eth0', 'up');
    await inNs('ethtool', '-K', 'eth0', 'tx', 'off');
    await run('ip', ['link', 'set', veth, 'up']);
    await run('ethtool', ['-K', veth, 'tx', 'off']);
    await ovs.addPort(bridge, veth, { externalIds: { 'iface-id': peer.id, 'attached-mac': peer.mac } });
    const bind = await bus.send({
      domain: 'network', aggregateType: 'port', aggregateId: peer.id, type: 'BindPort', payload: networkCodecFor('port').encodeCommand({ type: 'BindPort', hostId } as Message),
      actor: { userId: 'admin', projectId: '', roles: ['admin'] },
    });
    if (bind.kind !== 'accepted') throw new Error(bind.rejection.message);
    await until(async () => (await member.call('GetPort', { id: peer.id })).port.status === 'ACTIVE', 'the other port ACTIVE', 30_000);
    await until(async () => (await admin.call('GetHost', { id: hostId })).host.up, 'the qemu host up', 30_000);
  }, 240_000);

  afterAll(async () => {
    listener?.kill();
    await agents?.close();
    await netAgent?.close();
    await bus?.close();
    await t?.close();
    for (const g of (await qemu?.list()) ?? []) await qemu.destroy(g).catch(() => undefined);
    qemu?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    await run('ip', ['link', 'del', veth]).catch(() => undefined);
    await stopOvs({ dir: ovsDir }).catch(() => undefined);
  }, 60_000);

  /** The compute agent of both hosts: the qemu host and a fake one (another zone). */
  async function startComputeAgent() {
    // The test image with an os_command_line that has the guest ping the other port and send it a line over TCP.
    qemu = new QemuDriver({
      stateDir,
      accelerator: 'tcg',
      resolveImage: () => {
        const boot = testImageBoot(imageDir);
        return { ...boot, append: `${boot.append} strata.ping=${peer.ip} strata.tcp=${peer.ip}:5555` };
      },
      network: { ovs, bridge },
    });
    agents = await ComputeAgents.start({
      log: t.log,
      topology: TOPOLOGY,
      hosts: [
        { hostId, availabilityZone: zone, inventory: inventory(4, 4096), driver: qemu },
        { hostId: fakeHost, availabilityZone: fakeZone, inventory: inventory(4, 4096), driver: new FakeDriver(fakeHost) },
      ],
      listen: '127.0.0.1:0',
      heartbeatMs: 1000,
      onError: (e) => errors.push(e),
    });
  }

  const consoleOf = async (server: string): Promise<string> => (await member.call('GetServerConsoleOutput', { id: server })).output;
  const onConsole = (server: string, what: RegExp, label: string, timeoutMs = 120_000) => until(async () => what.test(await consoleOf(server)), label, timeoutMs);
  /** The last STRATA-NET line: the guest's interfaces now. */
  const guestNics = async (server: string) => ([...(await consoleOf(server)).matchAll(/STRATA-NET ([^\n]*)/g)].pop()?.[1] ?? '').trim().split(/\s+/);
  const wait = async (server: string, res: Record<string, any>) => {
    const op = res.operation.done ? res.operation : (await member.call('WaitOperation', { name: res.operation.name, serverId: server, timeout: { seconds: 120 } })).operation;
    expect(op, JSON.stringify(op)).toMatchObject({ done: true, result: 'success' });
    return op;
  };
  const portOf = async (portId: string) => (await member.call('GetPort', { id: portId })).port;
  const bridgePorts = async () => new Map((await ovs.listPorts(bridge)).map((p) => [p.name, p]));
  const pingGuest = async (ip: string) =>
    run('ip', ['netns', 'exec', ns, 'ping', '-n', '-q', '-c', '1', '-W', '1', ip]).then(
      () => true,
      () => false,
    );

  let server: string;
  let bootPort: { id: string; macAddress: string; fixedIps: { ipAddress: string }[] };

  it('boots a guest on the network: its port ACTIVE on this host, its tap on the bridge, and it reaches the other port both ways', async () => {
    // The other port listens for the guest's TCP line: every connection (a one-shot nc could be
    // used up by an attempt the guest then retries), each kept apart from a reset.
    const lineServer = `require('net').createServer((s) => { s.on('error', () => {}); s.on('data', (d) => process.stdout.write(d)); }).listen(5555, '0.0.0.0')`;
    listener = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', lineServer], { stdio: ['ignore', 'pipe', 'ignore'] });
    listener.stdout!.on('data', (d: Buffer) => (received += d.toString()));
    const created = await member.call('CreateServer', { name: 'web-1', flavorId, imageId: 'strata-test', availabilityZone: zone, networks: [{ uuid: networkId }] });
    server = created.servers[0].id;
    expect(created.servers[0].interfaces).toMatchObject([{ networkId, state: 'requested', preserveOnDelete: false }]);
    await wait(server, { operation: created.operations[0] });

    const ports = (await member.call('ListPorts', { deviceId: server })).ports;
    expect(ports).toHaveLength(1);
    bootPort = ports[0];
    expect(bootPort).toMatchObject({ networkId, deviceId: server, deviceOwner: `compute:${zone}` });
    expect(bootPort.fixedIps[0].ipAddress).toMatch(/^10\.77\.0\.\d+$/);
    await until(async () => (await portOf(bootPort.id)).status === 'ACTIVE', 'the boot port ACTIVE', 30_000);
    expect((await portOf(bootPort.id)).hostId).toBe(hostId);
    const shown = (await member.call('GetServer', { id: server })).server;
    expect(shown.interfaces).toMatchObject([{ portId: bootPort.id, networkId, macAddress: bootPort.macAddress, state: 'attached', mtu: 1450, fixedIps: [{ ipAddress: bootPort.fixedIps[0].ipAddress, cidr: '10.77.0.0/24', gatewayIp: '10.77.0.1' }] }]);

    // The tap, named as Nova names it, on the bridge as the port.
    const tap = (await bridgePorts()).get(tapName(bootPort.id));
    expect(tap, `${tapName(bootPort.id)} on ${bridge}`).toBeDefined();
    expect(tap!.externalIds).toMatchObject({ 'iface-id': bootPort.id, 'attached-mac': bootPort.macAddress, 'vm-uuid': server });
    expect(tap!.ofport).toBeGreaterThan(0);

    // The guest configured the port's address on the NIC with the port's MAC, and pinged the other port.
    const ip = bootPort.fixedIps[0].ipAddress;
    await onConsole(server, new RegExp(`STRATA-IP eth0 ${bootPort.macAddress} ${ip.replace(/\./g, '\\.')}/24`), 'the guest configuring its address');
    await onConsole(server, new RegExp(`STRATA-PING ${peer.ip.replace(/\./g, '\\.')} (ok|failed)`), 'the guest pinging the other port');
    expect(await consoleOf(server)).toContain(`STRATA-PING ${peer.ip} ok`);
    // And the other port reaches the guest.
    await until(() => pingGuest(ip), 'the other port pinging the guest', 30_000);
    // TCP with data from the guest: the NIC's checksum offload is off, so the userspace datapath carries whole segments.
    await onConsole(server, /STRATA-TCP \S+ (ok|failed)/, "the guest's TCP line");
    expect(await consoleOf(server)).toContain(`STRATA-TCP ${peer.ip}:5555 ok`);
    await until(() => received.includes(`STRATA-TCP-HELLO from ${ip}/24`), 'the line at the other port', 30_000);
    expect(errors).toEqual([]);
  }, 300_000);

  let attached: string;
  let userPort: string;

  it('attaches interfaces to the running guest (a network, then a port the user made): hot-plugged NICs it sees, ports ACTIVE', async () => {
    const res = await member.call('AttachInterface', { id: server, networkId });
    attached = res.interface.portId;
    expect(res.interface).toMatchObject({ networkId, state: 'requested', preserveOnDelete: false });
    await wait(server, res);
    await until(async () => (await portOf(attached)).status === 'ACTIVE', 'the attached port ACTIVE', 30_000);
    expect(await portOf(attached)).toMatchObject({ deviceId: server, deviceOwner: `compute:${zone}`, hostId });
    await until(async () => (await guestNics(server)).includes('eth1'), 'eth1 in the guest', 60_000);
    expect((await bridgePorts()).get(tapName(attached))?.externalIds['iface-id']).toBe(attached);

    userPort = (await member.call('CreatePort', { port: { networkId, name: 'mine' } })).port.id;
    const mine = await member.call('AttachInterface', { id: server, portId: userPort });
    await wait(server, mine);
    await until(async () => (await portOf(userPort)).status === 'ACTIVE', "the user's port ACTIVE", 30_000);
    expect(await portOf(userPort)).toMatchObject({ deviceId: server, deviceOwner: `compute:${zone}`, hostId });
    await until(async () => (await guestNics(server)).includes('eth2'), 'eth2 in the guest', 60_000);
    const listed = (await member.call('ListServerInterfaces', { id: server })).interfaces;
    expect(listed.map((i: { portId: string; state: string; preserveOnDelete: boolean }) => [i.portId, i.state, i.preserveOnDelete])).toEqual([
      [bootPort.id, 'attached', false], [attached, 'attached', false], [userPort, 'attached', true],
    ]);
    // A port in use cannot be attached again.
    expect(await errorOf(member.call('AttachInterface', { id: server, portId: userPort }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'in use' });
    expect(errors).toEqual([]);
  }, 300_000);

  it('a restarted compute agent adopts the running guest with its taps', async () => {
    const pid = await qemu.pid(server);
    await agents.close();
    qemu.close();
    await startComputeAgent();
    await until(async () => (await admin.call('GetHost', { id: hostId })).host.up, 'the host up again', 30_000);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await qemu.pid(server)).toBe(pid);
    const onBridge = await bridgePorts();
    for (const p of [bootPort.id, attached, userPort]) expect(onBridge.get(tapName(p))?.externalIds['iface-id'], p).toBe(p);
    for (const p of [bootPort.id, attached, userPort]) expect((await portOf(p)).status, p).toBe('ACTIVE');
    expect(await pingGuest(bootPort.fixedIps[0].ipAddress)).toBe(true);
  }, 120_000);

  it('detaches an interface: the NIC leaves the guest and the bridge, and the port the server made is deleted', async () => {
    const res = await member.call('DetachInterface', { id: server, portId: attached });
    await wait(server, res);
    expect(await codeOf(member.call('GetPort', { id: attached }))).toBe(NOT_FOUND);
    expect((await bridgePorts()).has(tapName(attached))).toBe(false);
    expect(existsSync(`/sys/class/net/${tapName(attached)}`)).toBe(false);
    await until(async () => !(await guestNics(server)).includes('eth1'), 'eth1 gone from the guest', 60_000);
    expect(await guestNics(server)).toEqual(expect.arrayContaining(['eth0', 'eth2']));
    expect((await member.call('ListServerInterfaces', { id: server })).interfaces.map((i: { portId: string }) => i.portId)).toEqual([bootPort.id, userPort]);
    expect(await errorOf(member.call('DetachInterface', { id: server, portId: attached }))).toMatchObject({ code: NOT_FOUND, field: 'port_id' });
    // The guest still reaches the other port on its first NIC.
    expect(await pingGuest(bootPort.fixedIps[0].ipAddress)).toBe(true);
  }, 180_000);

  it('stop unplugs the taps (ports DOWN), start plugs them again (ACTIVE) and the guest reaches the other port', async () => {
    await wait(server, await member.call('StopServer', { id: server }));
    const off = await bridgePorts();
    expect(off.has(tapName(bootPort.id)) || off.has(tapName(userPort))).toBe(false);
    expect(existsSync(`/sys/class/net/${tapName(bootPort.id)}`)).toBe(false);
    await until(async () => (await portOf(bootPort.id)).status === 'DOWN' && (await portOf(userPort)).status === 'DOWN', 'the ports DOWN', 30_000);
    expect((await portOf(bootPort.id)).hostId).toBe(hostId);

    await wait(server, await member.call('StartServer', { id: server }));
    await until(async () => (await portOf(bootPort.id)).status === 'ACTIVE' && (await portOf(userPort)).status === 'ACTIVE', 'the ports ACTIVE again', 30_000);
    // A fresh boot: both NICs from the start, each configured from the kernel command line.
    await onConsole(server, /STRATA-GUEST-READY[\s\S]*STRATA-GUEST-READY[\s\S]*STRATA-PING \S+ (ok|failed)/, 'the second boot pinging the other port');
    const second = (await consoleOf(server)).split('STRATA-GUEST-READY').pop()!;
    expect(second).toContain(`STRATA-PING ${peer.ip} ok`);
    // The guest lists its NICs as they come up, which may be after its first ping.
    await onConsole(server, /STRATA-GUEST-READY[\s\S]*STRATA-GUEST-READY[\s\S]*STRATA-NET eth0 eth1 lo/, 'both NICs in the second boot');
    await until(() => pingGuest(bootPort.fixedIps[0].ipAddress), 'the other port pinging the guest again', 30_000);
  }, 180_000);

  it("refuses an attach in a state Nova refuses it, naming the state", async () => {
    const created = await member.call('CreateServer', { name: 'sleepy', flavorId, imageId: 'strata-test', availabilityZone: fakeZone, networkAllocation: 'none' });
    const sleepy = created.servers[0].id;
    await wait(sleepy, { operation: created.operations[0] });
    await wait(sleepy, await member.call('SuspendServer', { id: sleepy }));
    const err = await errorOf(member.call('AttachInterface', { id: sleepy, networkId }));
    expect(err).toMatchObject({ code: FAILED_PRECONDITION, state: 'suspended' });
    expect(err.details).toContain("Cannot 'attach_interface' instance");
    await member.call('DeleteServer', { id: sleepy });
  }, 60_000);

  it("deletes the server: the port it made is deleted, the user's port kept, unbound and freed; the taps are gone", async () => {
    const res = await member.call('DeleteServer', { id: server });
    if (!res.operation.done) await member.call('WaitOperation', { name: res.operation.name, serverId: server, timeout: { seconds: 120 } });
    await until(async () => (await codeOf(member.call('GetServer', { id: server }))) === NOT_FOUND, 'the server gone', 60_000);
    await until(async () => (await codeOf(member.call('GetPort', { id: bootPort.id }))) === NOT_FOUND, 'the boot port deleted', 30_000);
    await until(async () => (await portOf(userPort)).deviceId === '' && (await portOf(userPort)).hostId === '', "the user's port freed", 30_000);
    expect(await portOf(userPort)).toMatchObject({ deviceId: '', deviceOwner: '', hostId: '', status: 'DOWN' });
    const left = await bridgePorts();
    expect(left.has(tapName(bootPort.id)) || left.has(tapName(userPort))).toBe(false);
    expect(existsSync(`/sys/class/net/${tapName(bootPort.id)}`)).toBe(false);
    expect(errors).toEqual([]);
  }, 120_000);
});
