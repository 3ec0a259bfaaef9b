// Security groups with real packets (issue 6 b): the network agents' conntrack firewall on two
// userspace-OVS hosts joined by VXLAN, driven through the log. A server port in its project's
// default group listens on TCP 22; a client in another group cannot reach it until a rule allows
// that group, and cannot again once the rule is removed. As with Neutron's openvswitch firewall:
// return traffic of an allowed connection passes without a rule (stateful), members of the
// default group reach each other, and an established connection that no rule allows any more is
// cut, both ways, when the rule goes.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { computePort, startNetworkRig, type NetworkRig } from '../support/network-rig.js';
import { inNs, type Guest } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const PROJECT = 'project-sg';
const available = await ovsAvailable();
// A TCP echo server, and a client that says whether an echo came back within a second.
// A client cut off or killed resets its connection: the server must outlive that (an unhandled
// socket error would end it, and every later probe with it).
const SERVER = `require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); }).listen(22, '0.0.0.0', () => console.log('listening'))`;
const PROBE = `const s = require('net').connect(22, process.argv[1]);
  const t = setTimeout(() => process.exit(1), 1500);
  s.on('connect', () => s.write('probe'));
  s.on('data', () => { clearTimeout(t); process.exit(0); });
  s.on('error', () => process.exit(2));`;
// A long-lived connection: writes a line every 100 ms and prints every echo it gets back.
const CHATTER = `const s = require('net').connect(22, process.argv[1]);
  let n = 0;
  s.on('connect', () => setInterval(() => s.write('tick ' + n++ + '\\n'), 100));
  s.on('data', (d) => process.stdout.write(d));
  s.on('error', () => process.exit(2));`;

describe.skipIf(!available)('security groups on two hosts (embedded log, userspace OVS conntrack, real packets)', () => {
  let rig: NetworkRig;
  const guests = new Map<string, Guest>();
  const children: ChildProcess[] = [];
  const send: NetworkRig['send'] = (...args) => rig.send(...args);
  const status = (portId: string) => rig.agents.get('h1')?.feed.view.ports.get(portId)?.status;
  const rulesOf = (groupId: string) => [...rig.agents.values()].map((a) => a.feed.view.securityGroups.get(groupId)?.rules.length ?? -1);

  async function group(id: string, isDefault: boolean) {
    await send('security_group', id, { type: 'CreateSecurityGroup', securityGroup: { id, projectId: PROJECT, name: isDefault ? 'default' : id, description: '', stateful: true, isDefault } });
  }
  async function port(id: string, hostId: string, mac: string, ip: string, securityGroups: string[]) {
    await send('port', id, { type: 'CreatePort', port: computePort(id, 'net-sg', PROJECT, mac, ip, { securityGroups }) });
    guests.set(id, await rig.sim.addGuest(hostId, id, { mac, ip }));
    await send('port', id, { type: 'BindPort', hostId });
  }
  const run = (g: Guest, script: string, ...args: string[]) => {
    const child = spawn('ip', ['netns', 'exec', g.ns, process.execPath, '-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    return child;
  };
  /** Whether a TCP connection from `g` to port 22 of `ip` gets an echo. */
  const reaches = async (g: Guest, ip: string) => {
    try {
      await inNs(g.ns, process.execPath, '-e', PROBE, ip);
      return true;
    } catch {
      return false;
    }
  };
  const SSH_FROM_CLIENTS = { id: 'rule-ssh', direction: 'ingress', ethertype: 'IPv4', protocol: 'tcp', portRangeMin: 22, portRangeMax: 22, remoteIpPrefix: '', remoteGroupId: 'sg-clients', description: 'ssh from the clients' };

  beforeAll(async () => {
    rig = await startNetworkRig(['h1', 'h2']);
    await rig.startAgent('h1');
    await rig.startAgent('h2');

    await send('network', 'net-sg', {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id: 'net-sg', name: 'net-sg', projectId: PROJECT, adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: 3001 },
    });
    await group('sg-default', true);
    await group('sg-clients', false);
    // The server and a fellow member of the default group on h1 and h2; clients on both hosts.
    await port('server', 'h1', '02:00:00:00:5e:01', '10.1.0.1', ['sg-default']);
    await port('member', 'h2', '02:00:00:00:5e:02', '10.1.0.2', ['sg-default']);
    await port('client-far', 'h2', '02:00:00:00:5e:03', '10.1.0.3', ['sg-clients']);
    await port('client-near', 'h1', '02:00:00:00:5e:04', '10.1.0.4', ['sg-clients']);
    await until(() => ['server', 'member', 'client-far', 'client-near'].every((p) => status(p) === 'ACTIVE'), 'all ports ACTIVE', 30_000);
    const server = run(guests.get('server')!, SERVER);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
  }, 180_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await rig?.close();
  });

  it('lets the default group in from its members only, and a group without ingress rules nothing', async () => {
    const server = guests.get('server')!;
    await until(() => reaches(guests.get('member')!, server.ip), 'member -> server:22', 15_000);
    expect(await rig.sim.ping(guests.get('member')!, server.ip, 2)).toBe(true);
    // The clients' group has egress rules only: nothing gets in, not even the server's pings.
    expect(await rig.sim.ping(server, '10.1.0.3', 2)).toBe(false);
    expect(await rig.sim.ping(guests.get('client-far')!, server.ip, 2)).toBe(false);
    expect(await reaches(guests.get('client-far')!, server.ip)).toBe(false);
    expect(await reaches(guests.get('client-near')!, server.ip)).toBe(false);
  }, 60_000);

  it('opens TCP 22 from another group when a rule allows it, and closes it when the rule is removed', async () => {
    const server = guests.get('server')!;
    await send('security_group', 'sg-default', { type: 'AddSecurityGroupRule', rule: SSH_FROM_CLIENTS });
    // The echo gets back to the client, whose group lets nothing in: return traffic is tracked (stateful).
    await until(() => reaches(guests.get('client-far')!, server.ip), 'client-far -> server:22 (across hosts)', 15_000);
    expect(await reaches(guests.get('client-near')!, server.ip)).toBe(true); // on the server's own host
    expect(await rig.sim.ping(guests.get('client-far')!, server.ip, 2)).toBe(false); // only TCP 22 was opened

    await send('security_group', 'sg-default', { type: 'RemoveSecurityGroupRule', ruleId: SSH_FROM_CLIENTS.id });
    await until(() => rulesOf('sg-default').every((n) => n === 4), 'the agents know the rule is gone');
    await until(async () => !(await reaches(guests.get('client-far')!, server.ip)), 'client-far shut out again', 15_000);
    expect(await reaches(guests.get('client-near')!, server.ip)).toBe(false);
    expect(await reaches(guests.get('member')!, server.ip)).toBe(true);
  }, 90_000);

  it("keeps an established connection while its rule stands, and cuts it when the rule goes (Neutron's openvswitch firewall)", async () => {
    const server = guests.get('server')!;
    await send('security_group', 'sg-default', { type: 'AddSecurityGroupRule', rule: { ...SSH_FROM_CLIENTS, id: 'rule-ssh-2' } });
    await until(() => reaches(guests.get('client-far')!, server.ip), 'client-far -> server:22', 15_000);
    const chatter = run(guests.get('client-far')!, CHATTER, server.ip);
    let echoes = 0;
    chatter.stdout!.on('data', (d: Buffer) => (echoes += d.toString().split('\n').filter((l) => l.startsWith('tick')).length));
    await until(() => echoes >= 10, 'echoes over the established connection', 10_000);
    // Unrelated changes (another port, another rule) leave it running.
    await send('security_group', 'sg-default', { type: 'AddSecurityGroupRule', rule: { ...SSH_FROM_CLIENTS, id: 'rule-icmp', protocol: 'icmp', portRangeMin: null, portRangeMax: null } });
    await until(() => rig.sim.ping(guests.get('client-far')!, server.ip), 'icmp from the clients', 15_000);
    const before = echoes;
    await until(() => echoes >= before + 10, 'echoes still coming after an unrelated rule', 10_000);

    await send('security_group', 'sg-default', { type: 'RemoveSecurityGroupRule', ruleId: 'rule-ssh-2' });
    await until(() => rulesOf('sg-default').every((n) => n === 5), 'the agents know the rule is gone');
    // Give the agents a pass to apply the table, then the echoes stop.
    await new Promise((r) => setTimeout(r, 1500));
    const cut = echoes;
    await new Promise((r) => setTimeout(r, 2000));
    expect(echoes).toBe(cut);
    expect(await reaches(guests.get('client-far')!, server.ip)).toBe(false);
    // The ICMP rule still stands.
    expect(await rig.sim.ping(guests.get('client-far')!, server.ip, 2)).toBe(true);
  }, 120_000);
});
