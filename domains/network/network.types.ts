// The network resources as the domain sees them: the messages of
// proto/strata/network/v1/resources.proto with camelCase fields, named after Neutron's
// (router:external is `external`, provider:network_type is `networkType`).

export const NETWORK_DOMAIN = 'network';

export const NETWORK_TYPES = ['flat', 'vlan', 'vxlan'] as const;
export type NetworkType = (typeof NETWORK_TYPES)[number];

/** Valid segmentation ids per type (VLAN 802.1Q ids; VXLAN 24-bit VNIs); flat has none. */
export const SEGMENTATION_LIMITS: Record<NetworkType, { min: number; max: number } | null> = {
  flat: null,
  vlan: { min: 1, max: 4094 },
  vxlan: { min: 1, max: 16_777_215 },
};

/** Neutron's MTUs: the physical 1500, less VXLAN's 50-byte overhead. */
export const defaultMtu = (networkType: string): number => (networkType === 'vxlan' ? 1450 : 1500);

export interface Network {
  id: string;
  name: string;
  projectId: string;
  adminStateUp: boolean;
  shared: boolean;
  /** Neutron's router:external. */
  external: boolean;
  /** 0 in a command: the type's default (1500; 1450 for vxlan). */
  mtu: number;
  /** provider:network_type; '' in a command: the tenant type the saga chose. */
  networkType: string;
  /** provider:physical_network ('' for vxlan). */
  physicalNetwork: string;
  /** provider:segmentation_id (0 for flat). */
  segmentationId: number;
}

export interface AllocationPool {
  start: string;
  end: string;
}

export interface HostRoute {
  destination: string;
  nexthop: string;
}

export interface Subnet {
  id: string;
  networkId: string;
  projectId: string;
  name: string;
  ipVersion: number;
  cidr: string;
  /** null: no gateway. */
  gatewayIp: string | null;
  allocationPools: AllocationPool[];
  dnsNameservers: string[];
  hostRoutes: HostRoute[];
  enableDhcp: boolean;
}

export interface FixedIp {
  subnetId: string;
  ipAddress: string;
}

export interface AddressPair {
  ipAddress: string;
  macAddress: string;
}

export interface Port {
  id: string;
  networkId: string;
  projectId: string;
  name: string;
  macAddress: string;
  fixedIps: FixedIp[];
  deviceOwner: string;
  deviceId: string;
  securityGroups: string[];
  portSecurityEnabled: boolean;
  allowedAddressPairs: AddressPair[];
  adminStateUp: boolean;
}

export const DIRECTIONS = ['ingress', 'egress'] as const;
export const ETHERTYPES = ['IPv4', 'IPv6'] as const;
/** Protocol names Neutron accepts besides numbers 0..255; '' (or "any") is any protocol. */
export const PROTOCOL_NAMES: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 };

export interface SecurityGroup {
  id: string;
  projectId: string;
  name: string;
  description: string;
  stateful: boolean;
  /** The project's "default" group: created with Neutron's default rules; only an admin deletes it. */
  isDefault: boolean;
}

export interface SecurityGroupRule {
  id: string;
  direction: string;
  ethertype: string;
  /** '' any; a name (tcp, udp, icmp, icmpv6) or a number "0".."255". */
  protocol: string;
  /** null: any (ports for tcp/udp; ICMP type and code for icmp). */
  portRangeMin: number | null;
  portRangeMax: number | null;
  /** '' none. */
  remoteIpPrefix: string;
  /** '' none. */
  remoteGroupId: string;
  description: string;
}

/** Neutron's router external_gateway_info: its external network, SNAT, and the gateway port's addresses. */
export interface ExternalGatewayInfo {
  networkId: string;
  /** Default true. */
  enableSnat: boolean;
  externalFixedIps: FixedIp[];
}

export interface Router {
  id: string;
  projectId: string;
  name: string;
  adminStateUp: boolean;
  /** null: no gateway. */
  externalGatewayInfo: ExternalGatewayInfo | null;
}

export const FLOATING_IP_STATUSES = ['ACTIVE', 'DOWN', 'ERROR'] as const;
export type FloatingIpStatus = (typeof FLOATING_IP_STATUSES)[number];

export interface FloatingIp {
  id: string;
  projectId: string;
  floatingNetworkId: string;
  floatingIpAddress: string;
  /** '' when not associated. */
  portId: string;
  /** '' when not associated. */
  fixedIpAddress: string;
  /** '' when not associated. */
  routerId: string;
  status: FloatingIpStatus;
}

/** Neutron's device owners of the ports the L3 service creates. */
export const ROUTER_INTERFACE_OWNER = 'network:router_interface';
export const ROUTER_GATEWAY_OWNER = 'network:router_gateway';
export const FLOATING_IP_OWNER = 'network:floatingip';
