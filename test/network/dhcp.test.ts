// Issue 6 acceptance (d): an endpoint gets its fixed IP by DHCP (busybox udhcpc). End to end on the
// embedded log with real packets, like network-agent.test.ts: the network deciders run here; two
// simulated hosts (userspace OVS in namespaces, joined by VXLAN) each run a network agent serving
// DHCP to its own ports (dhcp.ts: a dnsmasq per network in a qdhcp namespace). Guests are plugged
// without an address and run udhcpc with a script that applies the lease and writes down what the
// server sent. Checked: the address is the port's fixed IP, the router the gateway, the MTU, DNS
// and host routes the network's and subnet's, and the guest then pings a port on the other host;
// the request is answered on its own host only; a MAC that is no port's and a subnet without DHCP
// get no offer; a new port is served after a reload of the same dnsmasq; a restarted agent adopts
// its dnsmasq; a port gone restarts it once; the server goes with the last local port and with
// enable_dhcp=false.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Subnet } from '../../domains/network/network.types.js';
import { ovsAvailable } from '../../infra/ovs/launcher.js';
import { computePort, startNetworkRig, type NetworkRig } from '../support/network-rig.js';
import { inNs, type Guest } from '../support/ovs-hosts.js';
import { until } from '../support/wait.js';

const PROJECT = 'project-dhcp';
const SECURITY_GROUP = 'sg-dhcp-default';

const hasTools = (() => {
  try {
    execFileSync('which', ['dnsmasq', 'busybox'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const available = hasTools && (await ovsAvailable());

// busybox udhcpc runs this at each event: it applies the lease (address, MTU, default route) and
// writes what the server sent to $DHCP_RESULT.
const UDHCPC_SCRIPT = `#!/bin/sh
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "\${router%% *}" dev "$interface" onlink
    printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\nmtu=%s\\nserverid=%s\\nlease=%s\\nstaticroutes=%s\\n' \\
      "$ip" "$mask" "$router" "$dns" "$mtu" "$serverid" "$lease" "$staticroutes" > "$DHCP_RESULT"
    ;;
esac
exit 0
`;

describe.skipIf(!available)('DHCP on two hosts (embedded log, userspace OVS, dnsmasq, busybox udhcpc)', () => {
  let rig: NetworkRig;
  let work: string;
  const guests = new Map<string, Guest>();
  const subnets = new Map<string, Subnet>();

  const send: NetworkRig['send'] = (...args) => rig.send(...args);
  const hostOf = (hostId: string) => rig.host(hostId);
  const stateDir = (hostId: string) => join(work, `state-${hostId}`);
  const dhcpDir = (hostId: string) => join(stateDir(hostId), 'dhcp');
  const startAgent = async (hostId: string) => {
    const h = hostOf(hostId);
    await rig.startAgent(hostId, { dhcp: { stateDir: stateDir(hostId), hostNetns: h.ns, namespacePrefix: `${h.ns}-` } });
  };
  const agent = (hostId: string) => rig.agents.get(hostId)!;
  const status = (portId: string) => [...rig.agents.values()][0]?.feed.view.ports.get(portId)?.status;
  const qdhcp = (hostId: string, networkId: string) => `/run/netns/${hostOf(hostId).ns}-qdhcp-${networkId}`;
  const serverLog = (hostId: string, networkId: string) => readFile(join(dhcpDir(hostId), networkId, 'log'), 'utf8').catch(() => '');
  /** The live dnsmasq processes started for `networkId` from `hostId`'s state directory. */
  const dnsmasqsOf = async (hostId: string, networkId: string) => {
    const pidFile = `--pid-file=${join(dhcpDir(hostId), networkId, 'pid')}`;
    const pids: number[] = [];
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const argv = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
      if (argv.includes(pidFile)) pids.push(Number(entry));
    }
    return pids;
  };

  async function network(id: string, vni: number) {
    await send('network', id, {
      type: 'CreateNetwork', segmentAllocated: true,
      network: { id, name: id, projectId: PROJECT, adminStateUp: true, shared: false, external: false, mtu: 0, networkType: 'vxlan', physicalNetwork: '', segmentationId: vni },
    });
  }
  async function subnet(id: string, networkId: string, cidr: string, over: Partial<Subnet>) {
    const s: Subnet = { id, networkId, projectId: PROJECT, name: id, ipVersion: 4, cidr, gatewayIp: null, allocationPools: [], dnsNameservers: [], hostRoutes: [], enableDhcp: true, ...over };
    await send('subnet', id, { type: 'CreateSubnet', subnet: s, noGateway: s.gatewayIp === null });
    subnets.set(id, s);
  }
  /** A port with its fixed IP, bound to `hostId`, and a guest plugged as it with no address. */
  async function port(id: string, subnetId: string, hostId: string, mac: string, ip: string, portSecurity = true) {
    const networkId = subnets.get(subnetId)!.networkId;
    const fixedIps = [{ subnetId, ipAddress: ip }];
    await send('port', id, { type: 'CreatePort', port: computePort(id, networkId, PROJECT, mac, ip, { fixedIps, securityGroups: portSecurity ? [SECURITY_GROUP] : [], portSecurityEnabled: portSecurity }) });
    const g = await rig.sim.addGuest(hostId, id, { mac });
    // Not the network's MTU, so that the lease's MTU shows.
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'mtu', '1500');
    guests.set(id, g);
    await send('port', id, { type: 'BindPort', hostId });
  }
  /** Runs udhcpc in the guest: what the server sent, or null when no lease came. */
  async function dhcp(portId: string, tries = 3): Promise<Record<string, string> | null> {
    const g = guests.get(portId)!;
    const result = join(work, `lease-${portId}`);
    await rm(result, { force: true });
    try {
      await inNs(g.ns, 'env', `DHCP_RESULT=${result}`, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-t', String(tries), '-T', '1', '-s', join(work, 'udhcpc.sh'), '-O', 'mtu', '-O', 'staticroutes');
    } catch {
      return null; // udhcpc -n: no lease
    }
    const text = await readFile(result, 'utf8');
    return Object.fromEntries(text.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  }
  const addressesOf = async (portId: string) => {
    const { stdout } = await inNs(guests.get(portId)!.ns, 'ip', '-j', 'addr', 'show', 'dev', 'eth0');
    const [link] = JSON.parse(stdout) as { mtu: number; addr_info: { family: string; local: string; prefixlen: number }[] }[];
    return { mtu: link!.mtu, ipv4: link!.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`) };
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'strata-dhcp-'));
    // dnsmasq drops root for its own user, which reads the hosts and options files on each reload.
    await chmod(work, 0o755);
    await writeFile(join(work, 'udhcpc.sh'), UDHCPC_SCRIPT);
    await chmod(join(work, 'udhcpc.sh'), 0o755);
    rig = await startNetworkRig(['h1', 'h2']);
    await startAgent('h1');
    await startAgent('h2');
    await send('security_group', SECURITY_GROUP, {
      type: 'CreateSecurityGroup',
      securityGroup: { id: SECURITY_GROUP, projectId: PROJECT, name: 'default', description: '', stateful: true, isDefault: true },
    });
    await network('net-dhcp', 3101);
    await subnet('sub-dhcp', 'net-dhcp', '10.40.0.0/24', {
      gatewayIp: '10.40.0.1', dnsNameservers: ['192.0.2.53', '192.0.2.54'], hostRoutes: [{ destination: '192.168.50.0/24', nexthop: '10.40.0.254' }],
    });
  }, 120_000);

  afterAll(async () => {
    for (const a of rig?.agents.values() ?? []) {
      await a.close().catch(() => undefined);
      await a.dhcp?.removeAll().catch((e) => console.error(e));
    }
    // Whatever removeAll left: this run's dnsmasqs and qdhcp namespaces.
    for (const hostId of ['h1', 'h2']) {
      for (const networkId of ['net-dhcp', 'net-static']) {
        if (work) for (const pid of await dnsmasqsOf(hostId, networkId)) process.kill(pid, 'SIGKILL');
        if (rig && existsSync(qdhcp(hostId, networkId))) execFileSync('ip', ['netns', 'del', qdhcp(hostId, networkId).slice('/run/netns/'.length)]);
      }
    }
    await rig?.close();
    if (work) await rm(work, { recursive: true, force: true });
  }, 120_000);

  it('an endpoint gets its fixed IP by DHCP, with the gateway as router, and pings a port on the other host', async () => {
    await port('d1', 'sub-dhcp', 'h1', '02:00:00:00:d1:01', '10.40.0.11');
    await port('d2', 'sub-dhcp', 'h2', '02:00:00:00:d1:02', '10.40.0.12');
    await until(() => status('d1') === 'ACTIVE' && status('d2') === 'ACTIVE', 'd1 and d2 ACTIVE', 30_000);
    expect(await addressesOf('d1')).toMatchObject({ ipv4: [] });

    const lease = await dhcp('d1');
    expect(lease).toMatchObject({
      ip: '10.40.0.11', mask: '24', router: '10.40.0.1', dns: '192.0.2.53 192.0.2.54', mtu: '1450', serverid: '10.40.0.1', lease: '86400',
    });
    // Option 121 carries the host route and the default route (a client that takes it ignores option 3).
    expect(lease!.staticroutes).toBe('192.168.50.0/24 10.40.0.254 0.0.0.0/0 10.40.0.1');
    expect(await addressesOf('d1')).toEqual({ mtu: 1450, ipv4: ['10.40.0.11/24'] });

    expect(await dhcp('d2')).toMatchObject({ ip: '10.40.0.12', router: '10.40.0.1' });
    await until(() => rig.sim.ping(guests.get('d1')!, '10.40.0.12'), 'd1 -> d2 across the hosts', 30_000);
    expect(await rig.sim.ping(guests.get('d2')!, '10.40.0.11', 3)).toBe(true);

    // Each request was answered on its own host: h2's server never saw d1, h1's never saw d2.
    expect(await serverLog('h1', 'net-dhcp')).toMatch(/DHCPACK\(dhcp0\) 10\.40\.0\.11 02:00:00:00:d1:01/);
    expect(await serverLog('h1', 'net-dhcp')).not.toContain('02:00:00:00:d1:02');
    expect(await serverLog('h2', 'net-dhcp')).toMatch(/DHCPACK\(dhcp0\) 10\.40\.0\.12 02:00:00:00:d1:02/);
    expect(await serverLog('h2', 'net-dhcp')).not.toContain('02:00:00:00:d1:01');
  }, 120_000);

  it('gives a MAC that is no port\'s no offer (static hosts only), and the port\'s own MAC its address', async () => {
    // No port security: the stranger's frames reach the server, which has no address for it.
    await port('d3', 'sub-dhcp', 'h1', '02:00:00:00:d1:03', '10.40.0.13', false);
    await until(() => status('d3') === 'ACTIVE', 'd3 ACTIVE', 30_000);
    const g = guests.get('d3')!;
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', '02:00:00:00:d1:99');
    expect(await dhcp('d3', 2)).toBeNull();
    expect(await serverLog('h1', 'net-dhcp')).toMatch(/DHCPDISCOVER\(dhcp0\) 02:00:00:00:d1:99 no address available/);
    await inNs(g.ns, 'ip', 'link', 'set', 'eth0', 'address', g.mac);
    expect(await dhcp('d3')).toMatchObject({ ip: '10.40.0.13' });
  }, 120_000);

  it('gives a port on a subnet with DHCP disabled no offer, and runs no server for its network', async () => {
    await network('net-static', 3102);
    await subnet('sub-static', 'net-static', '10.41.0.0/24', { gatewayIp: '10.41.0.1', enableDhcp: false });
    await port('s1', 'sub-static', 'h1', '02:00:00:00:d2:01', '10.41.0.11');
    await until(() => status('s1') === 'ACTIVE', 's1 ACTIVE', 30_000);
    expect(await dhcp('s1', 2)).toBeNull();
    expect(existsSync(qdhcp('h1', 'net-static'))).toBe(false);
    expect(await dnsmasqsOf('h1', 'net-static')).toEqual([]);
  }, 120_000);

  it('serves a new port after a reload of the same dnsmasq', async () => {
    const before = await agent('h1').dhcp!.pidOf('net-dhcp');
    const reloads = agent('h1').dhcp!.stats.reloaded;
    expect(before).toBeGreaterThan(0);
    await port('d4', 'sub-dhcp', 'h1', '02:00:00:00:d1:04', '10.40.0.14');
    await until(() => status('d4') === 'ACTIVE', 'd4 ACTIVE', 30_000);
    expect(await dhcp('d4')).toMatchObject({ ip: '10.40.0.14', router: '10.40.0.1' });
    expect(await agent('h1').dhcp!.pidOf('net-dhcp')).toBe(before);
    expect(agent('h1').dhcp!.stats.reloaded).toBeGreaterThan(reloads);
    expect(await dnsmasqsOf('h1', 'net-dhcp')).toEqual([before]);
  }, 120_000);

  it('a restarted agent adopts its dnsmasq: still one per network, and leases renew', async () => {
    const before = await agent('h1').dhcp!.pidOf('net-dhcp');
    await rig.stopAgent('h1');
    await startAgent('h1');
    expect(agent('h1').dhcp!.stats).toMatchObject({ adopted: 1, started: 0, restarted: 0 });
    expect(await agent('h1').dhcp!.pidOf('net-dhcp')).toBe(before);
    expect(await dnsmasqsOf('h1', 'net-dhcp')).toEqual([before]);
    expect(await dhcp('d1')).toMatchObject({ ip: '10.40.0.11' });
  }, 120_000);

  it('restarts the dnsmasq once when a served address goes (its lease would still hold the address)', async () => {
    const before = await agent('h1').dhcp!.pidOf('net-dhcp');
    const restarts = agent('h1').dhcp!.stats.restarted;
    await send('port', 'd4', { type: 'DeletePort' });
    await until(() => agent('h1').dhcp!.stats.restarted > restarts, "h1's dnsmasq restarted", 30_000);
    expect(await readFile(join(dhcpDir('h1'), 'net-dhcp', 'host'), 'utf8')).not.toContain('10.40.0.14');
    // d4's lease went with it; d1's stays.
    const leases = await readFile(join(dhcpDir('h1'), 'net-dhcp', 'leases'), 'utf8');
    expect(leases).not.toContain('02:00:00:00:d1:04');
    expect(leases).toContain('02:00:00:00:d1:01 10.40.0.11');
    await new Promise((r) => setTimeout(r, 1500)); // a few more passes of the agent: no more restarts
    expect(agent('h1').dhcp!.stats.restarted).toBe(restarts + 1);
    const after = await agent('h1').dhcp!.pidOf('net-dhcp');
    expect(after).toBeGreaterThan(0);
    expect(after).not.toBe(before);
    expect(await dnsmasqsOf('h1', 'net-dhcp')).toEqual([after]);
    expect(await dhcp('d1')).toMatchObject({ ip: '10.40.0.11' });
  }, 120_000);

  it('takes a host\'s server down with its last port of the network, and every server with enable_dhcp=false', async () => {
    const h2Server = (await dnsmasqsOf('h2', 'net-dhcp'))[0]!;
    expect(h2Server).toBeGreaterThan(0);
    await send('port', 'd2', { type: 'DeletePort' });
    await until(() => !existsSync(qdhcp('h2', 'net-dhcp')), "h2's qdhcp namespace gone", 30_000);
    await until(async () => (await dnsmasqsOf('h2', 'net-dhcp')).length === 0, "h2's dnsmasq gone", 30_000);
    expect((await hostOf('h2').ovs.listPorts('bint')).filter((p) => p.externalIds['strata-dhcp-network'])).toEqual([]);

    const s = subnets.get('sub-dhcp')!;
    await send('subnet', 'sub-dhcp', { type: 'UpdateSubnet', subnet: { ...s, enableDhcp: false }, updateMask: ['enableDhcp'] });
    await until(() => !existsSync(qdhcp('h1', 'net-dhcp')), "h1's qdhcp namespace gone", 30_000);
    await until(async () => (await dnsmasqsOf('h1', 'net-dhcp')).length === 0, "h1's dnsmasq gone", 30_000);
    await until(async () => (await hostOf('h1').ovs.dumpFlows('bint')).every((f) => !f.actions.includes('->eth_dst')), "h1's DHCP flows gone", 30_000);
    expect(await dhcp('d1', 2)).toBeNull();
    // The ports themselves stay wired.
    expect(status('d1')).toBe('ACTIVE');
  }, 120_000);
});
