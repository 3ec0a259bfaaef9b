// Simulated network hosts for packet tests: each host is a network namespace with its own
// userspace ovs-vswitchd (ensureOvs with netns: userspace tunnelling routes and ARPs in the
// vswitchd's namespace, so two tunnel endpoints cannot share one), an underlay bridge `bphy`
// holding the tunnel endpoint address (`tunnelIp`: the network agents register it and make the
// VXLAN ports between the hosts themselves), and an integration bridge `bint`. Guests are namespaces with a veth into their host's `bint`,
// plugged as Neutron's VIF plugging does it (external_ids:iface-id = the port's id). Offloads are
// off (the userspace datapath leaves partial checksums) and guest MTU is 1450 (VXLAN's 50 bytes).
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { ensureOvs, stopOvs } from '../../infra/ovs/launcher.js';
import { Ovs } from '../../agents/network/ovs.js';

const run = promisify(execFile);
export const sh = (cmd: string, ...args: string[]) => run(cmd, args, { timeout: 30_000 });
export const inNs = (ns: string, ...args: string[]) => sh('ip', 'netns', 'exec', ns, ...args);

export interface SimHost {
  hostId: string;
  ns: string;
  ovs: Ovs;
  /** The host's underlay address, where its VXLAN tunnels end. */
  tunnelIp: string;
}

export interface Guest {
  ns: string;
  ip: string;
  mac: string;
}

export interface SimNetwork {
  hosts: SimHost[];
  /** Plugs a guest namespace into a host's integration bridge as the port `portId` (no `ip`: no address, for DHCP). */
  addGuest(hostId: string, portId: string, g: { mac: string; ip?: string; prefix?: number }): Promise<Guest>;
  /** Whether `from` gets an answer from `ip`. */
  ping(from: Guest, ip: string, count?: number): Promise<boolean>;
  close(): Promise<void>;
}

export async function startSimHosts(hostIds: string[]): Promise<SimNetwork> {
  const id = `${process.pid % 1000}${Math.random().toString(36).slice(2, 5)}`;
  const subnet = 10 + (process.pid % 200);
  const namespaces: string[] = [];
  const dirs: string[] = [];
  const addNs = async (ns: string) => {
    await sh('ip', 'netns', 'add', ns);
    namespaces.push(ns);
  };
  const close = async () => {
    for (const dir of dirs) await stopOvs({ dir }).catch((e) => console.error(e));
    for (const ns of namespaces.reverse()) {
      try {
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        /* gone */
      }
    }
  };
  try {
    // The underlay: one namespace as a switch, a veth from each host into it.
    const fabric = `sn-fab-${id}`;
    await addNs(fabric);
    await sh('ip', 'netns', 'exec', fabric, 'ip', 'link', 'add', 'br0', 'type', 'bridge');
    await sh('ip', 'netns', 'exec', fabric, 'ip', 'link', 'set', 'br0', 'up');
    const hosts: SimHost[] = [];
    for (const [i, hostId] of hostIds.entries()) {
      const ns = `sn-h${i}-${id}`;
      await addNs(ns);
      const dir = `/tmp/snovs-${id}-${i}`;
      dirs.push(dir);
      await inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
      const ovs = new Ovs(await ensureOvs({ dir, netns: ns }));
      const up = `su${i}${id}`;
      await sh('ip', 'link', 'add', up, 'netns', ns, 'type', 'veth', 'peer', 'name', `sf${i}${id}`, 'netns', fabric);
      await inNs(fabric, 'ip', 'link', 'set', `sf${i}${id}`, 'master', 'br0', 'up');
      await inNs(ns, 'ip', 'link', 'set', up, 'up');
      await inNs(ns, 'ethtool', '-K', up, 'tx', 'off');
      await ovs.createBridge('bphy');
      await ovs.addPort('bphy', up, { ofport: 1 });
      await ovs.replaceFlows('bphy', ['priority=0,actions=NORMAL']);
      await inNs(ns, 'ip', 'addr', 'add', `172.29.${subnet}.${i + 1}/24`, 'dev', 'bphy');
      await inNs(ns, 'ip', 'link', 'set', 'bphy', 'up');
      await ovs.createBridge('bint');
      hosts.push({ hostId, ns, ovs, tunnelIp: `172.29.${subnet}.${i + 1}` });
    }
    let guests = 0;
    return {
      hosts,
      async addGuest(hostId, portId, g) {
        const h = hosts.find((x) => x.hostId === hostId)!;
        const n = guests++;
        const ns = `sn-g${n}-${id}`;
        await addNs(ns);
        const outer = `sg${n}${id}`;
        await sh('ip', 'link', 'add', outer, 'netns', h.ns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
        await inNs(ns, 'ip', 'link', 'set', 'eth0', 'address', g.mac, 'mtu', '1450');
        if (g.ip) await inNs(ns, 'ip', 'addr', 'add', `${g.ip}/${g.prefix ?? 24}`, 'dev', 'eth0');
        await inNs(ns, 'ip', 'link', 'set', 'eth0', 'up');
        await inNs(ns, 'ethtool', '-K', 'eth0', 'tx', 'off');
        await inNs(h.ns, 'ip', 'link', 'set', outer, 'up');
        await inNs(h.ns, 'ethtool', '-K', outer, 'tx', 'off');
        await h.ovs.addPort('bint', outer, { externalIds: { 'iface-id': portId } });
        return { ns, ip: g.ip ?? '', mac: g.mac };
      },
      async ping(from, ip, count = 1) {
        try {
          await inNs(from.ns, 'ping', '-n', '-q', '-c', String(count), '-i', '0.1', '-W', '1', ip);
          return true;
        } catch {
          return false;
        }
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}
