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
//   30/31 egress firewall of a port with security groups (reg5 = its ofport): source address
//      check, conntrack in the port's own zone, then its egress rules (Neutron's tables 71/72).
//   40/41 ingress firewall of a port (reg7 = its ofport), the same on the way in (tables 81/82).
// Firewall, as Neutron's openvswitch driver: replies of tracked connections pass; a new connection
// needs a rule and is committed; an established one is checked against the rules at every packet,
// and one that no rule allows any more is marked (ct_mark=1) and dropped from then on, both ways,
// so removing a rule cuts the connections it allowed. Each port tracks in its own zone (its
// ofport), so ports of different networks with the same addresses never share an entry.

import type { FirewallRule, PortFirewall } from './security-groups.js';

export interface LocalPort {
  portId: string;
  ofport: number;
  mac: string;
  /** Fixed IPs and allowed address pairs' IPs: the addresses it may send ARP for. */
  ips: string[];
  networkId: string;
  /** Off: no anti-spoofing (Neutron's port_security_enabled=false). */
  portSecurity: boolean;
  /** Its security groups; null: nothing filtered (port security off, or a trusted network:* port). */
  firewall: PortFirewall | null;
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
    const next = p.firewall ? `set_field:${tag}->reg6,set_field:${p.ofport}->reg5,goto_table:30` : toNetwork;
    flows.push(`table=0,priority=100,in_port=${p.ofport},dl_src=${p.mac},actions=${next}`);
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
      flows.push(`table=10,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=${deliver(p)}`);
      flows.push(`table=20,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=${deliver(p)}`);
    }
    for (const p of remoteHere) {
      flows.push(`table=10,priority=100,reg6=${n.tag},dl_dst=${p.mac},actions=set_field:${n.vni}->tun_id,output:${tunnelOf.get(p.hostId)}`);
    }
    // Floods go to this network's local ports (OpenFlow never sends a frame back out of its
    // in_port) and to the hosts that have ports on it.
    // A filtered port gets broadcasts through its ingress table (which lets only ARP and DHCP replies in).
    const localOut = local.map((p) => (p.firewall ? `set_field:${p.ofport}->reg7,resubmit(,40)` : `output:${p.ofport}`));
    const hosts = [...new Set(remoteHere.map((p) => p.hostId))].sort();
    const tunnelOut = hosts.length > 0 ? [`set_field:${n.vni}->tun_id`, ...hosts.map((h) => `output:${tunnelOf.get(h)}`)] : [];
    const flood = [...localOut, ...tunnelOut];
    flows.push(`table=10,priority=50,reg6=${n.tag},${BROADCAST},actions=${flood.length > 0 ? flood.join(',') : 'drop'}`);
    flows.push(`table=20,priority=50,reg6=${n.tag},${BROADCAST},actions=${localOut.length > 0 ? localOut.join(',') : 'drop'}`);
  }
  flows.push('table=10,priority=0,actions=drop');
  flows.push('table=20,priority=0,actions=drop');
  flows.push(...firewallTables(ports));
  for (const table of [30, 31, 40, 41]) flows.push(`table=${table},priority=0,actions=drop`);
  return [...new Set(flows)];
}

/** To a local port: straight out, or through its ingress firewall. */
const deliver = (p: LocalPort) => (p.firewall ? `set_field:${p.ofport}->reg7,goto_table:40` : `output:${p.ofport}`);

const PROTOCOLS_V4: Record<number, string> = { 6: 'tcp', 17: 'udp', 1: 'icmp' };
const PROTOCOLS_V6: Record<number, string> = { 6: 'tcp6', 17: 'udp6', 58: 'icmp6' };
/** IPv6 neighbour discovery (router solicitation/advertisement, neighbour solicitation/advertisement): always allowed, as Neutron does. */
const ND_TYPES = [133, 134, 135, 136];

/** The value/mask pairs that cover the 16-bit range [min, max] exactly (OpenFlow has no range match). */
export function portMasks(min: number, max: number): string[] {
  const out: string[] = [];
  let start = min;
  while (start <= max) {
    let size = 1;
    while ((start & (size * 2 - 1)) === 0 && start + size * 2 - 1 <= max && size < 0x10000) size *= 2;
    out.push(size === 1 ? `${start}` : `0x${start.toString(16)}/0x${(0xffff & ~(size - 1)).toString(16)}`);
    start += size;
  }
  return out;
}

/** The match of one rule without its remote group, one per masked port range. */
function ruleMatches(rule: FirewallRule): string[] {
  const v6 = rule.ethertype === 'IPv6';
  const proto = rule.protocol === null ? (v6 ? 'ipv6' : 'ip') : ((v6 ? PROTOCOLS_V6 : PROTOCOLS_V4)[rule.protocol] ?? `${v6 ? 'ipv6' : 'ip'},nw_proto=${rule.protocol}`);
  let l4 = [''];
  if (rule.protocol === 6 || rule.protocol === 17) {
    if (rule.portRangeMin !== null) l4 = portMasks(rule.portRangeMin, rule.portRangeMax ?? rule.portRangeMin).map((m) => `,tp_dst=${m}`);
  } else if (rule.protocol === 1 || rule.protocol === 58) {
    l4 = [`${rule.portRangeMin !== null ? `,icmp_type=${rule.portRangeMin}` : ''}${rule.portRangeMax !== null ? `,icmp_code=${rule.portRangeMax}` : ''}`];
  }
  const remote = rule.remotePrefix === null ? '' : rule.remotePrefix.includes(':') === v6 ? `,${remoteField(rule)}=${rule.remotePrefix}` : null;
  return remote === null ? [] : l4.map((l) => `${proto}${remote}${l}`);
}

const remoteField = (rule: FirewallRule) => `${rule.ethertype === 'IPv6' ? 'ipv6' : 'nw'}_${rule.direction === 'ingress' ? 'src' : 'dst'}`;

/** The conntrack states a rule is checked in, and what an accepted packet of each then does. */
const VARIANTS = [
  { state: '+new-est', commit: true },
  { state: '+est-rel-rpl', commit: false },
  { state: '+rel-rpl', commit: false },
] as const;

interface Direction {
  name: 'egress' | 'ingress';
  base: number;
  rules: number;
  reg: string;
  zone: string;
  /** Where an accepted packet goes (the port is in the register: conjunction flows do not know it). */
  accept: string;
}
const EGRESS: Direction = { name: 'egress', base: 30, rules: 31, reg: 'reg5', zone: 'NXM_NX_REG5[0..15]', accept: 'resubmit(,10)' };
const INGRESS: Direction = { name: 'ingress', base: 40, rules: 41, reg: 'reg7', zone: 'NXM_NX_REG7[0..15]', accept: 'output:NXM_NX_REG7[0..15]' };

/**
 * All ports' firewall tables. Rules naming a remote group use OpenFlow conjunctions, as Neutron
 * does: clause 1 is the port and the rule's protocol and ports, clause 2 a member's address,
 * shared by every port that uses the group; so a group of N members on M ports costs N + M flows,
 * not N x M.
 */
function firewallTables(ports: LocalPort[]): string[] {
  const flows: string[] = [];
  // Conjunction ids: one per (remote group, direction, ethertype, conntrack state), numbered in sorted order.
  const conj = new Map<string, { dir: Direction; ethertype: string; variant: (typeof VARIANTS)[number]; members: string[] }>();
  const conjKey = (groupId: string, dir: Direction, ethertype: string, state: string) => `${groupId}|${dir.name}|${ethertype}|${state}`;
  const clause1 = new Map<string, string[]>();
  for (const p of ports) {
    const fw = p.firewall;
    if (!fw) continue;
    flows.push(...portBaseFlows(p, fw));
    for (const dir of [EGRESS, INGRESS]) {
      const at = `${dir.reg}=${p.ofport}`;
      const tr = `table=${dir.rules}`;
      // A remote group without members (of the rule's ethertype) lets nobody through: no flows.
      const rules = fw.rules.filter((x) => x.direction === dir.name && (!x.remoteGroup || x.remoteGroup.members.length > 0));
      const plain = [...new Set(rules.filter((x) => !x.remoteGroup).flatMap(ruleMatches))].sort();
      if (!fw.stateful) {
        for (const m of plain) flows.push(`${tr},priority=70,${m},${at},actions=${dir.accept}`);
        for (const x of rules.filter((y) => y.remoteGroup)) {
          for (const m of ruleMatches({ ...x, remotePrefix: null })) {
            for (const member of x.remoteGroup!.members) flows.push(`${tr},priority=70,${m},${remoteField(x)}=${member},${at},actions=${dir.accept}`);
          }
        }
        continue;
      }
      for (const v of VARIANTS) {
        const act = v.commit ? `ct(commit,zone=${dir.zone}),${dir.accept}` : dir.accept;
        for (const m of plain) flows.push(`${tr},priority=70,ct_state=${v.state},${m},${at},actions=${act}`);
        for (const x of rules.filter((y) => y.remoteGroup)) {
          const key = conjKey(x.remoteGroup!.id, dir, x.ethertype, v.state);
          conj.set(key, { dir, ethertype: x.ethertype, variant: v, members: x.remoteGroup!.members });
          for (const m of ruleMatches({ ...x, remotePrefix: null })) {
            const match = `${tr},priority=71,ct_state=${v.state},${m},${at}`;
            clause1.set(match, [...(clause1.get(match) ?? []), key]);
          }
        }
      }
    }
  }
  if (ports.some((p) => p.firewall)) flows.push(...sharedFirewallFlows());
  const ids = new Map([...conj.keys()].sort().map((k, i) => [k, i + 1]));
  const clause2 = new Map<string, number[]>();
  for (const [key, c] of conj) {
    const id = ids.get(key)!;
    const v6 = c.ethertype === 'IPv6';
    const field = `${v6 ? 'ipv6' : 'nw'}_${c.dir.name === 'ingress' ? 'src' : 'dst'}`;
    for (const member of c.members) {
      const match = `table=${c.dir.rules},priority=71,ct_state=${c.variant.state},${v6 ? 'ipv6' : 'ip'},${field}=${member}`;
      clause2.set(match, [...(clause2.get(match) ?? []), id]);
    }
    flows.push(`table=${c.dir.rules},priority=71,conj_id=${id},${v6 ? 'ipv6' : 'ip'},actions=${c.variant.commit ? `ct(commit,zone=${c.dir.zone}),${c.dir.accept}` : c.dir.accept}`);
  }
  for (const [match, keys] of clause1) flows.push(`${match},actions=${[...new Set(keys)].sort().map((k) => `conjunction(${ids.get(k)},1/2)`).join(',')}`);
  for (const [match, list] of clause2) flows.push(`${match},actions=${[...new Set(list)].sort((a, b) => a - b).map((id) => `conjunction(${id},2/2)`).join(',')}`);
  return flows;
}

/**
 * The firewall flows every filtered port shares: they find the port in its register (reg5 on the
 * way out, reg7 on the way in). Only tracked packets (+trk) meet the conntrack ones: a stateless
 * port's packets are never tracked.
 */
function sharedFirewallFlows(): string[] {
  const flows: string[] = [];
  // Egress: DHCP requests and ND before anything else.
  flows.push('table=30,priority=120,udp,tp_src=68,tp_dst=67,actions=resubmit(,10)');
  for (const type of ND_TYPES) flows.push(`table=30,priority=120,icmp6,icmp_type=${type},actions=resubmit(,10)`);
  // Ingress: DHCP replies and ND pass; IP broadcasts and multicasts do not; other IP is checked
  // (the port's own flow says how); the rest (ARP) passes.
  flows.push(`table=40,priority=120,udp,tp_src=67,tp_dst=68,actions=${INGRESS.accept}`);
  for (const type of ND_TYPES) flows.push(`table=40,priority=120,icmp6,icmp_type=${type},actions=${INGRESS.accept}`);
  for (const proto of ['ip', 'ipv6']) flows.push(`table=40,priority=110,${proto},${BROADCAST},actions=drop`);
  flows.push(`table=40,priority=90,actions=${INGRESS.accept}`);
  for (const dir of [EGRESS, INGRESS]) {
    const tr = `table=${dir.rules}`;
    flows.push(`${tr},priority=130,ct_state=+inv+trk,actions=drop`);
    flows.push(`${tr},priority=125,ct_state=+trk,ct_mark=0x1,actions=drop`);
    flows.push(`${tr},priority=120,ct_state=+est-rel+rpl,ct_mark=0,actions=${dir.accept}`);
    flows.push(`${tr},priority=120,ct_state=+rel+rpl,ct_mark=0,actions=${dir.accept}`);
    // Established, and no rule allows it any more: mark the connection so its replies stop too.
    for (const proto of ['ip', 'ipv6']) flows.push(`${tr},priority=40,ct_state=+est-rel-rpl,${proto},actions=ct(commit,zone=${dir.zone},exec(set_field:0x1->ct_mark))`);
  }
  return flows;
}

/** A port's own base flows: its source addresses on the way out, its tracking on the way in. */
function portBaseFlows(p: LocalPort, fw: PortFirewall): string[] {
  const flows: string[] = [];
  const eg = `reg5=${p.ofport}`;
  const ig = `reg7=${p.ofport}`;
  const egressNext = fw.stateful ? `ct(table=31,zone=${EGRESS.zone})` : 'goto_table:31';
  flows.push(`table=30,priority=115,ipv6,${eg},ipv6_src=fe80::/10,actions=${egressNext}`);
  for (const ip of [...p.ips].sort()) flows.push(`table=30,priority=110,${ip.includes(':') ? `ipv6,${eg},ipv6_src=${ip}` : `ip,${eg},nw_src=${ip}`},actions=${egressNext}`);
  flows.push(`table=30,priority=100,${eg},actions=drop`);
  const ingressNext = fw.stateful ? `ct(table=41,zone=${INGRESS.zone})` : 'goto_table:41';
  for (const proto of ['ip', 'ipv6']) flows.push(`table=40,priority=100,${proto},${ig},actions=${ingressNext}`);
  return flows;
}
