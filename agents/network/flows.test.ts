// The compiled integration-bridge tables (flows.ts): as text, deterministic whatever the input
// order; and with real packets on two simulated hosts joined by VXLAN (each host a namespace with
// its own userspace ovs-vswitchd, as in ovs.tunnel.test.ts): two tenants' networks with the same
// CIDR, each with a port on both hosts. Ports of one network reach each other both ways across
// the tunnel; a port never reaches the other tenant's address; a port sending with a forged MAC
// is dropped; applying the same table again (an agent restart) keeps the flows' counters.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureOvs, ovsAvailable, stopOvs } from '../../infra/ovs/launcher.js';
import { compileFlows, type HostDesiredState } from './flows.js';
import { Ovs } from './ovs.js';

const run = promisify(execFile);
const sh = (cmd: string, ...args: string[]) => run(cmd, args, { timeout: 30_000 });
const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);

async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const NETS = [
  { networkId: 'net-a', vni: 1001, tag: 1001 },
  { networkId: 'net-b', vni: 1002, tag: 1002 },
];
// Both tenants use 10.0.0.0/24: a1 and b1 even share 10.0.0.1.
const GUESTS = [
  { key: 'a1', host: 'h1', networkId: 'net-a', ip: '10.0.0.1', mac: '02:00:00:00:0a:01', ofport: 1 },
  { key: 'b1', host: 'h1', networkId: 'net-b', ip: '10.0.0.1', mac: '02:00:00:00:0b:01', ofport: 2 },
  { key: 'a2', host: 'h2', networkId: 'net-a', ip: '10.0.0.2', mac: '02:00:00:00:0a:02', ofport: 1 },
  { key: 'b3', host: 'h2', networkId: 'net-b', ip: '10.0.0.3', mac: '02:00:00:00:0b:03', ofport: 2 },
];
const TUNNEL_OFPORT = 100;

function desired(hostId: string): HostDesiredState {
  return {
    networks: NETS,
    ports: GUESTS.filter((g) => g.host === hostId).map((g) => ({ portId: `port-${g.key}`, ofport: g.ofport, mac: g.mac, ips: [g.ip], networkId: g.networkId, portSecurity: true })),
    remotePorts: GUESTS.filter((g) => g.host !== hostId).map((g) => ({ mac: g.mac, networkId: g.networkId, hostId: g.host })),
    tunnels: [{ hostId: hostId === 'h1' ? 'h2' : 'h1', ofport: TUNNEL_OFPORT }],
  };
}

describe('compiled integration-bridge tables', () => {
  it('are the same text whatever order the desired state comes in', () => {
    const s = desired('h1');
    const shuffled: HostDesiredState = { networks: [...s.networks].reverse(), ports: [...s.ports].reverse(), remotePorts: [...s.remotePorts].reverse(), tunnels: s.tunnels };
    expect(compileFlows(shuffled)).toEqual(compileFlows(s));
  });

  it('send a network only to its own ports and tunnels, and drop what they do not know', () => {
    const flows = compileFlows(desired('h1'));
    expect(flows).toContain('table=10,priority=100,reg6=1001,dl_dst=02:00:00:00:0a:02,actions=set_field:1001->tun_id,output:100');
    expect(flows.filter((f) => f.startsWith('table=10') && f.includes('reg6=1001') && f.includes('0b:'))).toEqual([]);
    expect(flows).toContain('table=0,priority=0,actions=drop');
    expect(flows).toContain('table=10,priority=0,actions=drop');
  });
});

const available = await ovsAvailable();

describe.skipIf(!available)('compiled tables on two hosts joined by VXLAN (real packets, userspace OVS)', () => {
  const id = `${process.pid % 1000}${Math.random().toString(36).slice(2, 5)}`;
  const subnet = 10 + (process.pid % 200);
  const hosts = ['h1', 'h2'].map((hostId, i) => ({ hostId, ns: `sf-${hostId}-${id}`, dir: `/tmp/sfovs-${id}-${i}`, underlay: `fu${i}${id}`, tep: `172.30.${subnet}.${i + 1}`, ovs: undefined as Ovs | undefined }));
  const guestNs = (key: string) => `sf-${key}-${id}`;
  const outer = (key: string) => `fv${key}${id}`;

  async function ping(from: string, ip: string, count = 1): Promise<boolean> {
    try {
      await inNs(guestNs(from), 'ping', '-n', '-q', '-c', String(count), '-i', '0.1', '-W', '1', ip);
      return true;
    } catch {
      return false;
    }
  }

  beforeAll(async () => {
    for (const ns of [...hosts.map((h) => h.ns), ...GUESTS.map((g) => guestNs(g.key))]) await sh('ip', 'netns', 'add', ns);
    await sh('ip', 'link', 'add', hosts[0]!.underlay, 'netns', hosts[0]!.ns, 'type', 'veth', 'peer', 'name', hosts[1]!.underlay, 'netns', hosts[1]!.ns);
    for (const h of hosts) {
      await inNs(h.ns, 'ip', 'link', 'set', 'lo', 'up');
      const ovs = (h.ovs = new Ovs(await ensureOvs({ dir: h.dir, netns: h.ns })));
      await inNs(h.ns, 'ip', 'link', 'set', h.underlay, 'up');
      await inNs(h.ns, 'ethtool', '-K', h.underlay, 'tx', 'off');
      await ovs.createBridge('bphy');
      await ovs.addPort('bphy', h.underlay, { ofport: 1 });
      await ovs.replaceFlows('bphy', ['priority=0,actions=NORMAL']);
      await inNs(h.ns, 'ip', 'addr', 'add', `${h.tep}/24`, 'dev', 'bphy');
      await inNs(h.ns, 'ip', 'link', 'set', 'bphy', 'up');
      await ovs.createBridge('bint');
      const other = hosts.find((x) => x !== h)!;
      await ovs.addPort('bint', 'vxlan0', { type: 'vxlan', ofport: TUNNEL_OFPORT, options: { remote_ip: other.tep, key: 'flow' } });
      for (const g of GUESTS.filter((x) => x.host === h.hostId)) {
        await sh('ip', 'link', 'add', outer(g.key), 'netns', h.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', guestNs(g.key));
        await inNs(guestNs(g.key), 'ip', 'link', 'set', 'eth0', 'address', g.mac, 'mtu', '1450');
        await inNs(guestNs(g.key), 'ip', 'addr', 'add', `${g.ip}/24`, 'dev', 'eth0');
        await inNs(guestNs(g.key), 'ip', 'link', 'set', 'eth0', 'up');
        await inNs(guestNs(g.key), 'ethtool', '-K', 'eth0', 'tx', 'off');
        await inNs(h.ns, 'ip', 'link', 'set', outer(g.key), 'up');
        await inNs(h.ns, 'ethtool', '-K', outer(g.key), 'tx', 'off');
        await ovs.addPort('bint', outer(g.key), { ofport: g.ofport, externalIds: { 'iface-id': `port-${g.key}` } });
      }
      await ovs.replaceFlows('bint', compileFlows(desired(h.hostId)));
    }
  }, 60_000);

  afterAll(async () => {
    for (const h of hosts) await stopOvs({ dir: h.dir }).catch((e) => console.error(e));
    for (const ns of [...GUESTS.map((g) => guestNs(g.key)), ...hosts.map((h) => h.ns)]) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* not created */
      }
    }
  });

  it('ports of one network ping each other both ways across the hosts', async () => {
    await waitFor('a1 -> a2 through the tunnel', () => ping('a1', '10.0.0.2'));
    expect(await ping('a2', '10.0.0.1', 3)).toBe(true);
    await waitFor('b1 -> b3 through the tunnel', () => ping('b1', '10.0.0.3'));
    expect(await ping('b3', '10.0.0.1', 3)).toBe(true);
  });

  it("a port never reaches the other tenant's addresses, though the CIDRs are the same", async () => {
    expect(await ping('a1', '10.0.0.3', 2)).toBe(false); // b3 is on net-b
    expect(await ping('b1', '10.0.0.2', 2)).toBe(false); // a2 is on net-a
    expect(await ping('a1', '10.0.0.2')).toBe(true);
  });

  it('drops a port that sends with a forged MAC, and lets it through with its own again', async () => {
    const forged = '02:00:00:00:0a:99';
    await inNs(guestNs('a1'), 'ip', 'neigh', 'flush', 'all');
    await inNs(guestNs('a1'), 'ip', 'link', 'set', 'eth0', 'address', forged);
    expect(await ping('a1', '10.0.0.2', 2)).toBe(false);
    await inNs(guestNs('a1'), 'ip', 'link', 'set', 'eth0', 'address', GUESTS[0]!.mac);
    await waitFor('a1 -> a2 with its own MAC', () => ping('a1', '10.0.0.2'));
  });

  it('the same table applied again (an agent restart) keeps the counters of unchanged flows', async () => {
    const h1 = hosts[0]!.ovs!;
    const a1Flow = async () => (await h1.dumpFlows('bint', 'table=0')).find((f) => f.match.includes('in_port=1') && f.match.includes('dl_src=02:00:00:00:0a:01') && !f.match.includes('arp'));
    expect(await ping('a1', '10.0.0.2', 3)).toBe(true);
    await waitFor('counters of a1', async () => ((await a1Flow())?.packets ?? 0) > 0);
    const before = (await a1Flow())!;
    await h1.replaceFlows('bint', compileFlows(desired('h1')));
    const after = (await a1Flow())!;
    expect(after.packets).toBeGreaterThanOrEqual(before.packets);
    expect(after.durationSec).toBeGreaterThanOrEqual(before.durationSec);
  });
});
