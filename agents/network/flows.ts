// The OpenFlow table a host's integration bridge runs, compiled from what the log says this host
// should carry: its bound ports, the networks they are on, and where each network's other ports
// live (the hosts reached through VXLAN tunnels). Pure and deterministic: the same desired state
// always gives the same text, in the same order, so that `ovs-ofctl --bundle replace-flows`
// after an agent restart changes nothing and the counters of unchanged ports keep running.
//
// Tables (a register stands for Neutron's local VLAN: reg6 = the network's tag on this host):
//   0  classify: a local port's frames (source MAC checked when port security is on, and ARP
//      senders limited to its addresses) get their network's tag; frames from a tunnel with a
//      known VNI get theirs; everything else is dropped.
//   10 from a local port: to a local port of the same network by destination MAC, to the tunnel
//      of the host of a remote port (l2population: no flooding of unknown unicast), broadcast
//      and multicast to the network's other local ports and tunnels.
//   20 from a tunnel: to the local port by destination MAC, broadcast to the local ports.

export interface LocalPort {
  portId: string;
  ofport: number;
  mac: string;
  /** Fixed IPs and allowed address pairs' IPs: the addresses it may send ARP for. */
  ips: string[];
  networkId: string;
  /** Off: no anti-spoofing (Neutron's port_security_enabled=false). */
  portSecurity: boolean;
}

export interface RemotePort {
  mac: string;
  networkId: string;
  /** The host the port is bound to. */
  hostId: string;
}

export interface HostNetwork {
  networkId: string;
  /** The VXLAN VNI (the network's segmentation id). */
  vni: number;
  /** The network's tag on this host (reg6), stable for as long as the network has ports here. */
  tag: number;
}

export interface HostDesiredState {
  networks: HostNetwork[];
  ports: LocalPort[];
  remotePorts: RemotePort[];
  /** The tunnel port to each other host: its ofport on this bridge. */
  tunnels: { hostId: string; ofport: number }[];
}

const BROADCAST = 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00';

const byString = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** The bridge's flows, one per line in ovs-ofctl's syntax, in a stable order. */
export function compileFlows(state: HostDesiredState): string[] {
  const networks = new Map(state.networks.map((n) => [n.networkId, n]));
  const tunnelOf = new Map(state.tunnels.map((t) => [t.hostId, t.ofport]));
  const ports = [...state.ports].filter((p) => networks.has(p.networkId)).sort(byString((p) => p.portId));
  const remote = [...state.remotePorts].filter((p) => networks.has(p.networkId) && tunnelOf.has(p.hostId)).sort(byString((p) => `${p.networkId}/${p.mac}`));
  const flows: string[] = [];

  for (const p of ports) {
    const tag = networks.get(p.networkId)!.tag;
    const toNetwork = `set_field:${tag}->reg6,goto_table:10`;
    if (!p.portSecurity) {
      flows.push(`table=0,priority=100,in_port=${p.ofport},actions=${toNetwork}`);
      continue;
    }
    for (const ip of [...p.ips].filter((a) => !a.includes(':')).sort()) {
      flows.push(`table=0,priority=110,arp,in_port=${p.ofport},dl_src=${p.mac},arp_sha=${p.mac},arp_spa=${ip},actions=${toNetwork}`);
    }
    flows.push(`table=0,priority=105,arp,in_port=${p.ofport},actions=drop`);
    flows.push(`table=0,priority=100,in_port=${p.ofport},dl_src=${p.mac},actions=${toNetwork}`);
  }
  const tunnels = [...state.tunnels].sort(byString((t) => t.hostId));
  for (const n of [...networks.values()].sort(byString((x) => x.networkId))) {
    for (const t of tunnels) flows.push(`table=0,priority=100,in_port=${t.ofport},tun_id=${n.vni},actions=set_field:${n.tag}->reg6,goto_table:20`);
  }
  flows.push('table=0,priority=0,actions=drop');

  for (const n of [...networks.values()].sort(byString((x) => x.networkId))) {
    const local = ports.filter((p) => p.networkId === n.networkId);
    const remoteHere = remote.filter((p) => p.networkId === n.networkId);
    for (const p of local) {
      flows.push(`table=10,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=output:${p.ofport}`);
      flows.push(`table=20,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=output:${p.ofport}`);
    }
    for (const p of remoteHere) {
      flows.push(`table=10,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=set_field:${n.vni}->tun_id,output:${tunnelOf.get(p.hostId)}`);
    }
    // Floods go to this network's local ports (OpenFlow never sends a frame back out of its
    // in_port) and to the hosts that have ports on it.
    const localOut = local.map((p) => `output:${p.ofport}`);
    const hosts = [...new Set(remoteHere.map((p) => p.hostId))].sort();
    const tunnelOut = hosts.length > 0 ? [`set_field:${n.vni}->tun_id`, ...hosts.map((h) => `output:${tunnelOf.get(h)}`)] : [];
    const flood = [...localOut, ...tunnelOut];
    flows.push(`table=10,priority=50,reg6=${n.tag},${BROADCAST},actions=${flood.length > 0 ? flood.join(',') : 'drop'}`);
    flows.push(`table=20,priority=50,reg6=${n.tag},${BROADCAST},actions=${localOut.length > 0 ? localOut.join(',') : 'drop'}`);
  }
  flows.push('table=10,priority=0,actions=drop');
  flows.push('table=20,priority=0,actions=drop');
  return flows;
}
