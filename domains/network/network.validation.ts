// Field rules of network commands, shared by the API (before it sends), the codec (for any other
// sender) and the deciders (which refuse what the rules refuse): Neutron's request rules restated
// on the commands. A broken rule throws InvalidArgumentError naming the field by its proto path
// ("subnet.allocation_pools[1].start"). Rules the state decides (a taken address, a duplicate rule,
// an exhausted range) are the deciders'.
import { InvalidArgumentError, type Rejection } from '../kernel/rejection.js';
import { canonicalIp, cidrText, parseCidr, parseIp } from './ip.js';
import { DIRECTIONS, ETHERTYPES, FLOATING_IP_STATUSES, NETWORK_TYPES, PROTOCOL_NAMES, SEGMENTATION_LIMITS, type NetworkType } from './network.types.js';
import { NETWORK_QUOTA_DEFAULTS } from './network-quota.machine.js';
import { resolveSubnet } from './subnet.ipam.js';

type Fields = Record<string, any>;

const snake = (camel: string) => camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const at = (prefix: string, field: string) => (prefix ? `${prefix}.${field}` : field);

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
/** A unicast MAC as Neutron prints it: six lower-case hex pairs with colons. */
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function text(field: string, value: unknown, max: number, required: boolean): void {
  if (value !== undefined && value !== null && typeof value !== 'string') throw new InvalidArgumentError(field, 'must be a string');
  const s = (value as string | undefined) ?? '';
  if (required && s.trim() === '') throw new InvalidArgumentError(field, 'is required');
  if (s.length > max) throw new InvalidArgumentError(field, `must be at most ${max} characters, got ${s.length}`);
  if (CONTROL.test(s)) throw new InvalidArgumentError(field, 'must not contain control characters');
}

function id(field: string, value: unknown): void {
  text(field, value, 64, true);
  if (!ID.test(value as string)) throw new InvalidArgumentError(field, `"${value}" is not an id (letters, digits, _ . : -; at most 64)`);
}

function int(field: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new InvalidArgumentError(field, `must be an integer, got ${String(value)}`);
  if (value < min || value > max) throw new InvalidArgumentError(field, `must be from ${min} to ${max}, got ${value}`);
}

function oneOf(field: string, value: unknown, allowed: readonly string[]): void {
  if (!allowed.includes(value as string)) throw new InvalidArgumentError(field, `must be one of ${allowed.join(', ')}, got "${String(value)}"`);
}

function list(field: string, value: unknown, max: number): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InvalidArgumentError(field, 'must be a list');
  if (value.length > max) throw new InvalidArgumentError(field, `must have at most ${max} entries, got ${value.length}`);
  return value;
}

function present(field: string, value: unknown): asserts value is Fields {
  if (value === undefined || value === null) throw new InvalidArgumentError(field, 'is required');
}

export function mac(field: string, value: unknown): void {
  text(field, value, 17, true);
  if (!MAC.test(value as string)) throw new InvalidArgumentError(field, `"${value}" is not a MAC address (six lower-case hex pairs, "fa:16:3e:00:00:01")`);
  if (parseInt((value as string).slice(0, 2), 16) & 1) throw new InvalidArgumentError(field, `${value} is a multicast address`);
}

function ip(field: string, value: unknown, version?: number): void {
  text(field, value, 45, true);
  const a = parseIp(value as string);
  if (!a) throw new InvalidArgumentError(field, `"${value}" is not an IP address`);
  if (version && a.version !== version) throw new InvalidArgumentError(field, `"${value}" is not an IPv${version} address`);
}

function cidr(field: string, value: unknown, version?: number): void {
  text(field, value, 49, true);
  const c = parseCidr(value as string);
  if (!c) throw new InvalidArgumentError(field, `"${value}" is not a CIDR (address/prefix)`);
  if (c.hostBits) throw new InvalidArgumentError(field, `"${value}" has host bits set (the network is ${cidrText(c)})`);
  if (version && c.version !== version) throw new InvalidArgumentError(field, `"${value}" is not an IPv${version} CIDR`);
}

// Networks.

const NETWORK_RULES: Record<string, (v: unknown, r: Fields, p: string) => void> = {
  id: (v, _r, p) => id(at(p, 'id'), v),
  name: (v, _r, p) => text(at(p, 'name'), v, 255, false),
  projectId: (v, _r, p) => text(at(p, 'project_id'), v, 255, true),
  adminStateUp: () => undefined,
  shared: () => undefined,
  external: () => undefined,
  mtu: (v, _r, p) => {
    if (v !== 0) int(at(p, 'mtu'), v, 68, 9216);
  },
  networkType: (v, r, p) => {
    if (v) oneOf(at(p, 'network_type'), v, NETWORK_TYPES);
    else if (r.physicalNetwork || r.segmentationId) throw new InvalidArgumentError(at(p, 'network_type'), 'is required with a physical network or segmentation id');
  },
  physicalNetwork: (v, r, p) => {
    text(at(p, 'physical_network'), v, 64, false);
    if ((r.networkType === 'flat' || r.networkType === 'vlan') && !v) throw new InvalidArgumentError(at(p, 'physical_network'), `is required for a ${r.networkType} network`);
    if (r.networkType === 'vxlan' && v) throw new InvalidArgumentError(at(p, 'physical_network'), 'must be empty for a vxlan network');
  },
  segmentationId: (v, r, p) => {
    const field = at(p, 'segmentation_id');
    int(field, v ?? 0, 0);
    const limits = SEGMENTATION_LIMITS[r.networkType as NetworkType];
    if (r.networkType === 'flat' && v) throw new InvalidArgumentError(field, 'must be 0 for a flat network');
    if (limits && r.networkType && (v as number) !== 0 && ((v as number) < limits.min || (v as number) > limits.max)) {
      throw new InvalidArgumentError(field, `must be from ${limits.min} to ${limits.max} for a ${r.networkType} network, got ${v}`);
    }
  },
};

/** The provider attributes by their Neutron names: only admins set them (the tenant allocator aside). */
export const PROVIDER_FIELDS: Record<string, string> = {
  networkType: 'provider:network_type',
  physicalNetwork: 'provider:physical_network',
  segmentationId: 'provider:segmentation_id',
};
/** Fields Neutron's default policy leaves to admins when they are set (true) on a network. */
export const ADMIN_FLAGS: Record<string, string> = { shared: 'shared', external: 'router:external' };

// Subnets.

const NAMESERVERS_MAX = 5;
const ROUTES_MAX = 20;

function subnetFields(subnet: Fields, p: string, whole: boolean): void {
  if (whole) {
    id(at(p, 'id'), subnet.id);
    id(at(p, 'network_id'), subnet.networkId);
    text(at(p, 'project_id'), subnet.projectId, 255, true);
    if (subnet.ipVersion !== 4 && subnet.ipVersion !== 6) throw new InvalidArgumentError(at(p, 'ip_version'), `must be 4 or 6, got ${String(subnet.ipVersion)}`);
  }
  const version = subnet.ipVersion as number | undefined;
  text(at(p, 'name'), subnet.name, 255, false);
  const servers = list(at(p, 'dns_nameservers'), subnet.dnsNameservers, NAMESERVERS_MAX);
  servers.forEach((s, i) => ip(`${at(p, 'dns_nameservers')}[${i}]`, s, version));
  const seen = new Set<string>();
  servers.forEach((s, i) => {
    const c = canonicalIp(s as string)!;
    if (seen.has(c)) throw new InvalidArgumentError(`${at(p, 'dns_nameservers')}[${i}]`, `${s} is listed twice`);
    seen.add(c);
  });
  list(at(p, 'host_routes'), subnet.hostRoutes, ROUTES_MAX).forEach((r, i) => {
    const f = `${at(p, 'host_routes')}[${i}]`;
    present(f, r);
    cidr(`${f}.destination`, (r as Fields).destination, version);
    ip(`${f}.nexthop`, (r as Fields).nexthop, version);
  });
}

// Ports.

function portFields(port: Fields, p: string, fields: readonly string[]): void {
  const has = (f: string) => fields.includes(f);
  if (has('id')) id(at(p, 'id'), port.id);
  if (has('networkId')) id(at(p, 'network_id'), port.networkId);
  if (has('projectId')) text(at(p, 'project_id'), port.projectId, 255, true);
  if (has('name')) text(at(p, 'name'), port.name, 255, false);
  if (has('macAddress')) mac(at(p, 'mac_address'), port.macAddress);
  if (has('fixedIps')) {
    const seen = new Set<string>();
    list(at(p, 'fixed_ips'), port.fixedIps, 20).forEach((f, i) => {
      const field = `${at(p, 'fixed_ips')}[${i}]`;
      present(field, f);
      id(`${field}.subnet_id`, (f as Fields).subnetId);
      ip(`${field}.ip_address`, (f as Fields).ipAddress);
      const key = `${(f as Fields).subnetId}/${canonicalIp((f as Fields).ipAddress)}`;
      if (seen.has(key)) throw new InvalidArgumentError(`${field}.ip_address`, `${(f as Fields).ipAddress} is listed twice`);
      seen.add(key);
    });
  }
  if (has('deviceOwner')) text(at(p, 'device_owner'), port.deviceOwner, 255, false);
  if (has('deviceId')) text(at(p, 'device_id'), port.deviceId, 255, false);
  if (has('securityGroups')) list(at(p, 'security_groups'), port.securityGroups, 64).forEach((g, i) => id(`${at(p, 'security_groups')}[${i}]`, g));
  if (has('allowedAddressPairs')) {
    list(at(p, 'allowed_address_pairs'), port.allowedAddressPairs, 10).forEach((a, i) => {
      const field = `${at(p, 'allowed_address_pairs')}[${i}]`;
      present(field, a);
      const addr = (a as Fields).ipAddress as string;
      if (typeof addr === 'string' && addr.includes('/')) cidr(`${field}.ip_address`, addr);
      else ip(`${field}.ip_address`, addr);
      if ((a as Fields).macAddress) mac(`${field}.mac_address`, (a as Fields).macAddress);
    });
  }
  // Neutron: security groups and address pairs need port security (PortSecurityAndIPRequiredForSecurityGroups).
  if ((has('portSecurityEnabled') || has('securityGroups')) && port.portSecurityEnabled === false) {
    if ((port.securityGroups ?? []).length > 0) throw new InvalidArgumentError(at(p, 'security_groups'), 'must be empty when port security is disabled');
    if ((port.allowedAddressPairs ?? []).length > 0) throw new InvalidArgumentError(at(p, 'allowed_address_pairs'), 'must be empty when port security is disabled');
  }
}

const PORT_MUTABLE = ['name', 'fixedIps', 'deviceOwner', 'deviceId', 'securityGroups', 'portSecurityEnabled', 'allowedAddressPairs', 'adminStateUp'] as const;
const PORT_FIELDS = ['id', 'networkId', 'projectId', 'macAddress', ...PORT_MUTABLE];

// Security group rules.

/** Protocols whose port range is a range of ports. */
const PORTED = new Set(['6', '17', '33', '132', '136']);
const ICMP = new Set(['1', '58']);

/** A rule's protocol as a number string ('' any), or undefined when it is not one. */
export function protocolNumber(protocol: string | null | undefined): string | undefined {
  const p = (protocol ?? '').toLowerCase();
  if (p === '' || p === 'any') return '';
  if (p in PROTOCOL_NAMES) return String(PROTOCOL_NAMES[p]);
  if (/^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255) return p;
  return undefined;
}

export function validateRule(rule: unknown, p = 'rule'): void {
  present(p, rule);
  const r = rule as Fields;
  id(at(p, 'id'), r.id);
  oneOf(at(p, 'direction'), r.direction, DIRECTIONS);
  oneOf(at(p, 'ethertype'), r.ethertype, ETHERTYPES);
  const proto = protocolNumber(r.protocol);
  if (proto === undefined) throw new InvalidArgumentError(at(p, 'protocol'), `must be tcp, udp, icmp, icmpv6, any or a number from 0 to 255, got "${String(r.protocol)}"`);
  if (proto === '58' && r.ethertype === 'IPv4') throw new InvalidArgumentError(at(p, 'protocol'), 'icmpv6 needs ethertype IPv6');
  const min = r.portRangeMin ?? null;
  const max = r.portRangeMax ?? null;
  if (min !== null || max !== null) {
    if (PORTED.has(proto)) {
      if (min === null) throw new InvalidArgumentError(at(p, 'port_range_min'), 'is required with port_range_max');
      int(at(p, 'port_range_min'), min, 1, 65535);
      int(at(p, 'port_range_max'), max ?? min, 1, 65535);
      if (max !== null && max < min) throw new InvalidArgumentError(at(p, 'port_range_max'), `must be at least port_range_min (${min}), got ${max}`);
    } else if (ICMP.has(proto)) {
      // ICMP: port_range_min is the type, port_range_max the code (Neutron: a code needs a type).
      if (min === null) throw new InvalidArgumentError(at(p, 'port_range_min'), 'an ICMP code (port_range_max) needs a type (port_range_min)');
      int(at(p, 'port_range_min'), min, 0, 255);
      if (max !== null) int(at(p, 'port_range_max'), max, 0, 255);
    } else {
      throw new InvalidArgumentError(at(p, 'port_range_min'), `ports cannot be given for protocol ${r.protocol || 'any'} (only tcp, udp, dccp, sctp, udplite and, as type and code, icmp)`);
    }
  }
  text(at(p, 'remote_ip_prefix'), r.remoteIpPrefix, 49, false);
  text(at(p, 'remote_group_id'), r.remoteGroupId, 64, false);
  if (r.remoteIpPrefix && r.remoteGroupId) throw new InvalidArgumentError(at(p, 'remote_ip_prefix'), 'give remote_ip_prefix or remote_group_id, not both');
  if (r.remoteIpPrefix) {
    const c = parseCidr(r.remoteIpPrefix) ?? (parseIp(r.remoteIpPrefix) ? parseCidr(`${r.remoteIpPrefix}/${r.remoteIpPrefix.includes(':') ? 128 : 32}`) : undefined);
    if (!c) throw new InvalidArgumentError(at(p, 'remote_ip_prefix'), `"${r.remoteIpPrefix}" is not a CIDR`);
    if (`IPv${c.version}` !== r.ethertype) throw new InvalidArgumentError(at(p, 'remote_ip_prefix'), `${r.remoteIpPrefix} does not match ethertype ${r.ethertype}`);
  }
  text(at(p, 'description'), r.description, 255, false);
}

// Updates.

function mask(kind: string, mutable: readonly string[], known: readonly string[], m: unknown): string[] {
  const names = mutable.map(snake).join(', ');
  if (!Array.isArray(m) || m.length === 0) throw new InvalidArgumentError('update_mask', `name the fields to change (any of ${names})`);
  for (const path of m as string[]) {
    if (!known.includes(path)) throw new InvalidArgumentError('update_mask', `${kind} has no field ${snake(path)}`);
    if (!mutable.includes(path)) throw new InvalidArgumentError(at(kind, snake(path)), `cannot be changed (a ${kind}'s changeable fields: ${names})`);
  }
  return m as string[];
}

export const NETWORK_MUTABLE = ['name', 'adminStateUp', 'shared', 'external', 'mtu'] as const;
export const SUBNET_MUTABLE = ['name', 'dnsNameservers', 'hostRoutes', 'enableDhcp'] as const;
const SUBNET_FIELDS = ['id', 'networkId', 'projectId', 'name', 'ipVersion', 'cidr', 'gatewayIp', 'allocationPools', 'dnsNameservers', 'hostRoutes', 'enableDhcp'];
export const SECURITY_GROUP_MUTABLE = ['name', 'description'] as const;
export const ROUTER_MUTABLE = ['name', 'adminStateUp'] as const;
const ROUTER_FIELDS = ['id', 'projectId', 'name', 'adminStateUp', 'externalGatewayInfo'];

// Routers and floating IPs.

function fixedIps(field: string, value: unknown): void {
  list(field, value, 20).forEach((f, i) => {
    present(`${field}[${i}]`, f);
    id(`${field}[${i}].subnet_id`, (f as Fields).subnetId);
    ip(`${field}[${i}].ip_address`, (f as Fields).ipAddress);
  });
}

function routerFields(router: Fields, p: string, fields: readonly string[]): void {
  if (fields.includes('id')) id(at(p, 'id'), router.id);
  if (fields.includes('projectId')) text(at(p, 'project_id'), router.projectId, 255, true);
  if (fields.includes('name')) text(at(p, 'name'), router.name, 255, false);
}

export function gatewayInfoFields(info: unknown, p: string): void {
  present(p, info);
  const g = info as Fields;
  id(at(p, 'network_id'), g.networkId);
  if (typeof g.enableSnat !== 'boolean') throw new InvalidArgumentError(at(p, 'enable_snat'), 'must be true or false');
  fixedIps(at(p, 'external_fixed_ips'), g.externalFixedIps);
}

/** A floating IP's association: port, fixed IP and router all given, or none. */
function associationFields(f: Fields, p: string): void {
  if (!f.portId) {
    if (f.fixedIpAddress || f.routerId) throw new InvalidArgumentError(at(p, 'port_id'), 'is required with fixed_ip_address and router_id');
    return;
  }
  id(at(p, 'port_id'), f.portId);
  ip(at(p, 'fixed_ip_address'), f.fixedIpAddress);
  id(at(p, 'router_id'), f.routerId);
}

const COMMAND_RULES: Record<string, (c: Fields) => void> = {
  CreateNetwork: (c) => {
    present('network', c.network);
    for (const [f, rule] of Object.entries(NETWORK_RULES)) rule(c.network[f], c.network, 'network');
  },
  UpdateNetwork: (c) => {
    present('network', c.network);
    for (const f of mask('network', NETWORK_MUTABLE, Object.keys(NETWORK_RULES), c.updateMask)) NETWORK_RULES[f](c.network[f], c.network, 'network');
  },
  AddNetworkPort: (c) => {
    id('port_id', c.portId);
    mac('mac_address', c.macAddress);
  },
  RemoveNetworkPort: (c) => {
    id('port_id', c.portId);
    mac('mac_address', c.macAddress);
  },

  AllocateSegment: (c) => {
    id('network_id', c.networkId);
    int('segmentation_id', c.segmentationId ?? 0, 0, 16_777_215);
    int('range_min', c.rangeMin, 1, 16_777_215);
    int('range_max', c.rangeMax, 1, 16_777_215);
    if (c.rangeMax < c.rangeMin) throw new InvalidArgumentError('range_max', `must be at least range_min (${c.rangeMin}), got ${c.rangeMax}`);
  },
  ReleaseSegment: (c) => id('network_id', c.networkId),

  CreateSubnet: (c) => {
    present('subnet', c.subnet);
    subnetFields(c.subnet, 'subnet', true);
    resolveSubnet(c.subnet as never, Boolean(c.noGateway));
  },
  UpdateSubnet: (c) => {
    present('subnet', c.subnet);
    mask('subnet', SUBNET_MUTABLE, SUBNET_FIELDS, c.updateMask);
    subnetFields(c.subnet, 'subnet', false);
  },
  AllocateIp: (c) => {
    id('port_id', c.portId);
    if (c.ipAddress) ip('ip_address', c.ipAddress);
    text('device_owner', c.deviceOwner, 255, false);
  },
  ReleaseIp: (c) => {
    id('port_id', c.portId);
    if (c.ipAddress) ip('ip_address', c.ipAddress);
  },

  CreatePort: (c) => {
    present('port', c.port);
    portFields(c.port, 'port', PORT_FIELDS);
  },
  UpdatePort: (c) => {
    present('port', c.port);
    portFields(c.port, 'port', mask('port', PORT_MUTABLE, PORT_FIELDS, c.updateMask));
  },
  BindPort: (c) => text('host_id', c.hostId, 255, true),
  ReportPortUp: (c) => text('host_id', c.hostId, 255, true),
  ReportPortDown: (c) => text('host_id', c.hostId, 255, true),

  CreateSecurityGroup: (c) => {
    present('security_group', c.securityGroup);
    id('security_group.id', c.securityGroup.id);
    text('security_group.project_id', c.securityGroup.projectId, 255, true);
    text('security_group.name', c.securityGroup.name, 255, false);
    text('security_group.description', c.securityGroup.description, 255, false);
    if (c.securityGroup.isDefault && c.securityGroup.name !== 'default') throw new InvalidArgumentError('security_group.name', 'the default group is named "default"');
  },
  UpdateSecurityGroup: (c) => {
    present('security_group', c.securityGroup);
    const fields = mask('security_group', SECURITY_GROUP_MUTABLE, ['id', 'projectId', 'name', 'description', 'stateful', 'isDefault'], c.updateMask);
    for (const f of fields) text(`security_group.${f}`, c.securityGroup[f], 255, false);
  },
  AddSecurityGroupRule: (c) => validateRule(c.rule),
  RemoveSecurityGroupRule: (c) => id('rule_id', c.ruleId),

  CreateRouter: (c) => {
    present('router', c.router);
    routerFields(c.router, 'router', ROUTER_FIELDS);
    if (c.router.externalGatewayInfo) throw new InvalidArgumentError('router.external_gateway_info', 'is set by SetRouterGateway once the gateway port exists');
  },
  UpdateRouter: (c) => {
    present('router', c.router);
    routerFields(c.router, 'router', mask('router', ROUTER_MUTABLE, ROUTER_FIELDS, c.updateMask));
  },
  SetRouterGateway: (c) => {
    gatewayInfoFields(c.externalGatewayInfo, 'external_gateway_info');
    id('port_id', c.portId);
  },
  AddRouterInterface: (c) => {
    id('port_id', c.portId);
    const subnets = list('subnets', c.subnets, 20);
    if (subnets.length === 0) throw new InvalidArgumentError('subnets', 'name at least one subnet');
    subnets.forEach((x, i) => {
      present(`subnets[${i}]`, x);
      id(`subnets[${i}].subnet_id`, (x as Fields).subnetId);
      cidr(`subnets[${i}].cidr`, (x as Fields).cidr);
    });
  },
  RemoveRouterInterface: (c) => {
    if (!c.portId && !c.subnetId) throw new InvalidArgumentError('subnet_id', 'give subnet_id or port_id');
    if (c.portId) id('port_id', c.portId);
    if (c.subnetId) id('subnet_id', c.subnetId);
  },

  CreateFloatingIp: (c) => {
    present('floating_ip', c.floatingIp);
    const f = c.floatingIp as Fields;
    id('floating_ip.id', f.id);
    text('floating_ip.project_id', f.projectId, 255, true);
    id('floating_ip.floating_network_id', f.floatingNetworkId);
    ip('floating_ip.floating_ip_address', f.floatingIpAddress);
    associationFields(f, 'floating_ip');
  },
  UpdateFloatingIp: (c) => {
    present('floating_ip', c.floatingIp);
    associationFields(c.floatingIp, 'floating_ip');
  },
  ReportFloatingIpStatus: (c) => {
    oneOf('status', c.status, FLOATING_IP_STATUSES);
    if (c.portId) id('port_id', c.portId);
  },

  SetNetworkQuotaLimits: (c) => {
    const limits = (c.limits as Record<string, unknown> | undefined) ?? {};
    if (Object.keys(limits).length === 0) throw new InvalidArgumentError('limits', 'name at least one quota to set');
    for (const [name, limit] of Object.entries(limits)) {
      if (!(name in NETWORK_QUOTA_DEFAULTS)) throw new InvalidArgumentError('limits', `unknown quota "${name}" (one of ${Object.keys(NETWORK_QUOTA_DEFAULTS).join(', ')})`);
      int(`limits.${name}`, limit, -1);
    }
  },
  ReserveNetworkQuota: (c) => {
    text('consumer_id', c.consumerId, 255, true);
    present('usage', c.usage);
    const names = Object.keys(c.usage);
    if (names.length === 0) throw new InvalidArgumentError('usage', 'name at least one resource');
    for (const name of names) {
      if (!(name in NETWORK_QUOTA_DEFAULTS)) throw new InvalidArgumentError('usage', `unknown quota "${name}"`);
      int(`usage.${name}`, c.usage[name], 0);
    }
  },
  ReleaseNetworkQuota: (c) => text('consumer_id', c.consumerId, 255, true),
};

/** Every field rule of one network command; throws InvalidArgumentError naming the field. */
export function validateNetworkCommand(command: { type: string } & Fields): void {
  COMMAND_RULES[command.type]?.(command);
}

/** The same rules as a rejection, for the deciders (undefined: the command passes). */
export function fieldProblem(command: { type: string } & Fields): Rejection | undefined {
  try {
    validateNetworkCommand(command);
    return undefined;
  } catch (e) {
    if (e instanceof InvalidArgumentError) return { code: 'INVALID_ARGUMENT', field: e.field, message: e.message };
    throw e;
  }
}
