// What a port's security groups allow, resolved for the flow compiler: each rule with its protocol
// as a number and its remote end as addresses (a remote group becomes the addresses of the ports
// that are members of it, on any host). Pure: the same view gives the same firewall.
import { PROTOCOL_NAMES, type Port, type SecurityGroupRule } from '../../domains/network/network.types.js';
import type { NetworkView } from '../../domains/network/network.view.js';

export interface FirewallRule {
  direction: 'ingress' | 'egress';
  ethertype: 'IPv4' | 'IPv6';
  /** IP protocol number; null: any. */
  protocol: number | null;
  /** tcp/udp: the destination port range; icmp: type (min) and code (max); null: any. */
  portRangeMin: number | null;
  portRangeMax: number | null;
  /** The remote end as an address or CIDR; null: anywhere (or a remote group). */
  remotePrefix: string | null;
  /** The remote end as a group: its id and its members' addresses of this rule's ethertype. */
  remoteGroup: { id: string; members: string[] } | null;
}

export interface PortFirewall {
  /** Stateful groups let return traffic through by conntrack; stateless ones need a rule for it. */
  stateful: boolean;
  rules: FirewallRule[];
}

/** Neutron's trusted ports (routers, DHCP, floating IPs): forwarders of others' packets, never filtered. */
export const isTrustedPort = (port: Port): boolean => port.deviceOwner.startsWith('network:');

const isV6 = (address: string) => address.includes(':');

function protocolNumber(rule: SecurityGroupRule): number | null {
  const p = rule.protocol.toLowerCase();
  if (p === '' || p === 'any') return null;
  const n = p in PROTOCOL_NAMES ? PROTOCOL_NAMES[p] : Number(p);
  // Neutron reads "icmp" on an IPv6 rule as ICMPv6.
  return rule.ethertype === 'IPv6' && n === PROTOCOL_NAMES.icmp ? PROTOCOL_NAMES.icmpv6 : n;
}

/** The addresses a port may use: its fixed IPs and its allowed address pairs. */
export const portAddresses = (port: Port): string[] => [...port.fixedIps.map((f) => f.ipAddress), ...port.allowedAddressPairs.map((a) => a.ipAddress)];

/** The firewall of a port with port security, from its groups in the view. */
export function firewallFor(view: NetworkView, port: Port): PortFirewall {
  const groups = port.securityGroups.map((id) => view.securityGroups.get(id)).filter((g) => g !== undefined);
  const members = (groupId: string, ethertype: string) =>
    [...view.ports.values()]
      .filter((p) => p.port.securityGroups.includes(groupId))
      .flatMap((p) => portAddresses(p.port))
      .filter((a) => isV6(a) === (ethertype === 'IPv6'));
  const rules = groups.flatMap((g) =>
    g.rules.map(
      (r): FirewallRule => ({
        direction: r.direction as FirewallRule['direction'],
        ethertype: r.ethertype as FirewallRule['ethertype'],
        protocol: protocolNumber(r),
        portRangeMin: r.portRangeMin,
        portRangeMax: r.portRangeMax,
        remotePrefix: r.remoteIpPrefix || null,
        remoteGroup: r.remoteGroupId ? { id: r.remoteGroupId, members: [...new Set(members(r.remoteGroupId, r.ethertype))].sort() } : null,
      }),
    ),
  );
  // Neutron refuses to mix stateful and stateless groups on a port; a port is stateless only when all its groups are.
  return { stateful: groups.length === 0 || groups.some((g) => g.securityGroup.stateful), rules };
}
