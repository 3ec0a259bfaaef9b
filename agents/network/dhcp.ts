// DHCP for the ports of one host, distributed like OVN's native DHCP: each host's network agent
// serves only the ports bound to it, so a request never leaves the host and no host depends on
// another for addresses. What is served comes from the log alone (the NetworkView): a port's fixed
// IPs on the IPv4 subnets of its network that have enable_dhcp; nothing else is ever handed out.
//
// Per network with such a port on this host the agent runs (dnsmasq.ts):
//   - a namespace `qdhcp-<network id>` (prefixed when hosts share one kernel, as simulated hosts do)
//     holding one end of a veth, `dhcp0`; the other end, `dhcp<hash>`, is a port of the
//     integration bridge (a veth as for guests: it works with the userspace datapath wherever the
//     vswitchd runs);
//   - on `dhcp0` the server's address in each DHCP subnet: the subnet's gateway IP, as OVN uses it
//     for server_id (so the DHCP port takes no address from the pool: a /28 still gives all its
//     pool to ports); a subnet without a gateway gets its highest address that no port holds;
//   - a dnsmasq with static hosts only (`--dhcp-range=<net>,static`, one `mac,ip` line per port):
//     no dynamic leases, so an unknown MAC gets no offer. Options: router (none without a gateway),
//     DNS servers, host routes as option 121 (with the default route in it: a client that takes 121
//     ignores option 3, RFC 3442), MTU (26, the network's), lease time. New hosts reach it by SIGHUP;
//     a host removed or changed restarts it (a lease would still hold the old address).
//     Pid, hosts, options and lease files live in the agent's state directory, so a restarted agent
//     adopts its dnsmasq (same command line) instead of starting a second one.
//
// The server owns the gateway's address without being the gateway, so the flows (compileDhcpFlows)
// keep it invisible: only DHCP requests of this host's client ports reach it (dl_dst rewritten to its
// MAC, so unicast renewals sent to the gateway's MAC arrive too), and only DHCP replies leave it, to
// local client ports only (never a tunnel). It never sends ARP: the agent writes its neighbours (the
// clients' addresses) as permanent entries, since dnsmasq answers a client with an address by
// unicast. A port with port security may not send DHCP server replies (udp 67 -> 68 dropped, as
// Neutron's firewall does). DHCP requests skip the security-group tables, as Neutron always allows
// them. IPv6 (DHCPv6, RA) is not served here.
//
// This file is the pure part: which networks need a server and what it serves, the files' text,
// dnsmasq's command line and the flows.
import { createHash } from 'node:crypto';
import { formatIp, lastOf, mask, parseCidr } from '../../domains/network/ip.js';
import { defaultMtu } from '../../domains/network/network.types.js';
import type { NetworkView } from '../../domains/network/network.view.js';
import type { LocalPort } from './flows.js';

export interface DhcpSubnet {
  subnetId: string;
  /** The network address and mask, for dnsmasq's static range. */
  networkAddress: string;
  netmask: string;
  prefix: number;
  /** The server's own address on this subnet (the gateway IP, or a free address without one). */
  serverIp: string;
  gatewayIp: string | null;
  dnsNameservers: string[];
  hostRoutes: { destination: string; nexthop: string }[];
}

export interface DhcpHost {
  mac: string;
  ip: string;
  subnetId: string;
}

export interface DhcpClient {
  portId: string;
  ofport: number;
  mac: string;
  portSecurity: boolean;
}

/** What one network's DHCP server on this host serves. */
export interface DhcpNetworkPlan {
  networkId: string;
  mtu: number;
  subnets: DhcpSubnet[];
  hosts: DhcpHost[];
  clients: DhcpClient[];
}

/** A DHCP server as it runs: its bridge port, its MAC and the local ports it answers. */
export interface DhcpServerPort {
  networkId: string;
  ofport: number;
  mac: string;
  clients: DhcpClient[];
}

const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The DHCP servers this host needs: one per network that has a local port (wired, admin up, not a
 * network:* port) with a fixed IP on an IPv4 subnet with DHCP enabled. Deterministic whatever the
 * order of the inputs.
 */
export function planDhcp(view: Pick<NetworkView, 'networks' | 'subnets' | 'ports'>, localPorts: readonly LocalPort[]): DhcpNetworkPlan[] {
  const plans: DhcpNetworkPlan[] = [];
  const networkIds = [...new Set(localPorts.map((p) => p.networkId))].sort(byText);
  for (const networkId of networkIds) {
    const network = view.networks.get(networkId);
    if (!network) continue;
    const subnets = [...view.subnets.values()]
      .filter((s) => s.networkId === networkId && s.enableDhcp && s.ipVersion === 4)
      .sort((a, b) => byText(a.id, b.id));
    if (subnets.length === 0) continue;
    const dhcpSubnets = new Set(subnets.map((s) => s.id));
    const hosts: DhcpHost[] = [];
    const clients: DhcpClient[] = [];
    for (const local of [...localPorts].filter((p) => p.networkId === networkId).sort((a, b) => byText(a.portId, b.portId))) {
      const port = view.ports.get(local.portId)?.port;
      // Routers' and other network:* ports hold their addresses themselves (a router interface
      // even holds the gateway IP, the server's own address).
      if (!port || port.deviceOwner.startsWith('network:')) continue;
      const served = port.fixedIps.filter((f) => dhcpSubnets.has(f.subnetId));
      if (served.length === 0) continue;
      clients.push({ portId: local.portId, ofport: local.ofport, mac: local.mac.toLowerCase(), portSecurity: local.portSecurity });
      for (const f of served) hosts.push({ mac: local.mac.toLowerCase(), ip: f.ipAddress, subnetId: f.subnetId });
    }
    if (clients.length === 0) continue;
    const held = new Set([...view.ports.values()].flatMap((p) => p.port.fixedIps.map((f) => f.ipAddress)));
    plans.push({
      networkId,
      mtu: network.mtu || defaultMtu(network.networkType),
      subnets: subnets.map((s) => {
        const cidr = parseCidr(s.cidr)!;
        return {
          subnetId: s.id,
          networkAddress: formatIp(4, cidr.network),
          netmask: formatIp(4, mask(4, cidr.prefix)),
          prefix: cidr.prefix,
          serverIp: s.gatewayIp ?? freeServerIp(cidr, held),
          gatewayIp: s.gatewayIp,
          dnsNameservers: [...s.dnsNameservers],
          hostRoutes: s.hostRoutes.map((r) => ({ destination: r.destination, nexthop: r.nexthop })),
        };
      }),
      hosts: hosts.sort((a, b) => byText(`${a.subnetId}/${a.mac}/${a.ip}`, `${b.subnetId}/${b.mac}/${b.ip}`)),
      clients,
    });
  }
  return plans;
}

/** Without a gateway: the highest host address of the subnet that no port holds. */
function freeServerIp(cidr: { network: bigint; prefix: number }, held: Set<string>): string {
  const c = { version: 4 as const, network: cidr.network, prefix: cidr.prefix };
  const top = cidr.prefix <= 30 ? lastOf(c) - 1n : lastOf(c);
  for (let a = top; a >= cidr.network; a--) {
    const text = formatIp(4, a);
    if (!held.has(text)) return text;
  }
  return formatIp(4, top);
}

/** dnsmasq's --dhcp-hostsfile: `mac,ip,hostname` per served address (Neutron's host-<ip> names). */
export function hostsFileText(plan: DhcpNetworkPlan): string {
  return plan.hosts.map((h) => `${h.mac},${h.ip},host-${h.ip.replace(/\./g, '-')}\n`).join('');
}

/**
 * dnsmasq's --dhcp-optsfile: per subnet (tagged by its range) the router, DNS servers and host
 * routes. An empty option suppresses dnsmasq's default of offering itself.
 */
export function optionsFileText(plan: DhcpNetworkPlan): string {
  const lines: string[] = [];
  for (const s of plan.subnets) {
    const tag = `tag:${subnetTag(s.subnetId)}`;
    lines.push(`${tag},option:router${s.gatewayIp ? `,${s.gatewayIp}` : ''}`);
    lines.push(`${tag},option:dns-server${s.dnsNameservers.length > 0 ? `,${s.dnsNameservers.join(',')}` : ''}`);
    if (s.hostRoutes.length > 0) {
      const routes = s.hostRoutes.map((r) => `${r.destination},${r.nexthop}`);
      if (s.gatewayIp && !s.hostRoutes.some((r) => r.destination === '0.0.0.0/0')) routes.push(`0.0.0.0/0,${s.gatewayIp}`);
      lines.push(`${tag},option:classless-static-route,${routes.join(',')}`);
      // Older Windows clients read the same list as option 249 (Neutron sends both).
      lines.push(`${tag},249,${routes.join(',')}`);
    }
  }
  return lines.map((l) => `${l}\n`).join('');
}

const subnetTag = (subnetId: string) => `subnet-${subnetId}`;

export interface DnsmasqPaths {
  pidFile: string;
  hostsFile: string;
  optionsFile: string;
  leaseFile: string;
  logFile: string;
}

/** dnsmasq's arguments (without the program): DHCP only, static hosts only, on `device`. */
export function dnsmasqArgs(plan: DhcpNetworkPlan, device: string, paths: DnsmasqPaths, leaseSeconds: number): string[] {
  return [
    '--conf-file=/dev/null',
    '--no-hosts',
    '--no-resolv',
    '--port=0', // no DNS service, DHCP only
    `--interface=${device}`,
    '--except-interface=lo',
    '--bind-interfaces',
    '--no-ping', // addresses are the ports' own: nothing to probe
    `--pid-file=${paths.pidFile}`,
    `--dhcp-hostsfile=${paths.hostsFile}`,
    `--dhcp-optsfile=${paths.optionsFile}`,
    `--dhcp-leasefile=${paths.leaseFile}`,
    `--log-facility=${paths.logFile}`,
    ...plan.subnets.map((s) => `--dhcp-range=set:${subnetTag(s.subnetId)},${s.networkAddress},static,${s.netmask},${leaseSeconds}s`),
    `--dhcp-option-force=option:mtu,${plan.mtu}`,
    `--dhcp-lease-max=${Math.max(16, plan.hosts.length * 2)}`,
  ];
}

/**
 * Whether moving from the served `before` hosts file to `after` needs a restart: a line removed or
 * changed (a lease would still hold the old address); added lines only need a reload (SIGHUP).
 */
export function hostsChangeNeedsRestart(before: string, after: string): boolean {
  const kept = new Set(after.split('\n').filter(Boolean));
  return before.split('\n').filter(Boolean).some((line) => !kept.has(line));
}

/**
 * A dnsmasq lease file (`expiry mac ip hostname client-id` per line) without the leases that no
 * served host gives any more: what dnsmasq is restarted with, so a removed port's lease does not
 * hold its address (Neutron calls dhcp_release for the same reason).
 */
export function keptLeases(leaseFile: string, plan: DhcpNetworkPlan): string {
  const served = new Set(plan.hosts.map((h) => `${h.mac} ${h.ip}`));
  return leaseFile.split('\n').filter((line) => {
    const [, mac, ip] = line.split(' ');
    return mac !== undefined && served.has(`${mac.toLowerCase()} ${ip}`);
  }).map((l) => `${l}\n`).join('');
}

/** The devices of a network's DHCP server: the bridge side (at most 15 characters) and the namespace side. */
export function dhcpDeviceNames(networkId: string): { bridgeSide: string; namespaceSide: string } {
  return { bridgeSide: `dhcp${digest(networkId).slice(0, 11)}`, namespaceSide: 'dhcp0' };
}

/** A stable, locally administered MAC for a network's DHCP server on one host. */
export function dhcpServerMac(hostId: string, networkId: string): string {
  const h = digest(`${hostId}/${networkId}`);
  return ['02', 'd4', h.slice(0, 2), h.slice(2, 4), h.slice(4, 6), h.slice(6, 8)].join(':');
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

const UDP_DHCP_REQUEST = 'udp,tp_src=68,tp_dst=67';
const UDP_DHCP_REPLY = 'udp,tp_src=67,tp_dst=68';

/**
 * The DHCP flows of table 0, above the classification flows (priority 100-110): requests of the
 * servers' clients to their server, the servers' replies to their clients only, and no DHCP
 * server replies from ports with port security. Deterministic text.
 */
export function compileDhcpFlows(servers: readonly DhcpServerPort[], ports: readonly LocalPort[]): string[] {
  const flows: string[] = [];
  for (const p of [...ports].filter((x) => x.portSecurity).sort((a, b) => byText(a.portId, b.portId))) {
    flows.push(`table=0,priority=120,${UDP_DHCP_REPLY},in_port=${p.ofport},actions=drop`);
  }
  for (const s of [...servers].sort((a, b) => byText(a.networkId, b.networkId))) {
    const clients = [...s.clients].sort((a, b) => byText(a.portId, b.portId));
    for (const c of clients) {
      const from = c.portSecurity ? `in_port=${c.ofport},dl_src=${c.mac}` : `in_port=${c.ofport}`;
      flows.push(`table=0,priority=125,${UDP_DHCP_REQUEST},${from},actions=set_field:${s.mac}->eth_dst,output:${s.ofport}`);
      flows.push(`table=0,priority=125,${UDP_DHCP_REPLY},in_port=${s.ofport},dl_src=${s.mac},dl_dst=${c.mac},actions=output:${c.ofport}`);
    }
    const all = clients.map((c) => `output:${c.ofport}`).join(',');
    flows.push(`table=0,priority=125,${UDP_DHCP_REPLY},in_port=${s.ofport},dl_src=${s.mac},dl_dst=ff:ff:ff:ff:ff:ff,actions=${all}`);
    // Anything else the server's namespace sends (IPv6 neighbour discovery, ...) stays in it.
    flows.push(`table=0,priority=124,in_port=${s.ofport},actions=drop`);
  }
  return flows;
}
