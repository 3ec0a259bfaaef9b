// The network read models: networks (status from admin_state_up), subnets with the addresses their
// ports hold, ports with their status and binding, security groups and their rules, routers with
// their gateway and interfaces, floating IPs with their association and status. Pure: an event
// in, statements out (SQL that SQLite and PostgreSQL share; booleans are 0/1 integers, JSON is
// TEXT). Every row is written by the events of one aggregate only (a subnet's allocations by the
// subnet, a group's rules by the group), so the result does not depend on how partitions
// interleave. Quotas: a project's limits set and what each resource holds (in use is their sum).
// Segment pools and MAC registries are the deciders' business: not shown here.
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement } from '../../infra/store/store.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';

type Ev = Record<string, any> & { type: string };

const b = (v: unknown) => (v ? 1 : 0);
const json = (v: unknown) => JSON.stringify(v ?? null);

export const NETWORK_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS network_networks (id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, admin_state_up INTEGER NOT NULL,
     status TEXT NOT NULL, shared INTEGER NOT NULL, external INTEGER NOT NULL, mtu INTEGER NOT NULL, network_type TEXT NOT NULL,
     physical_network TEXT NOT NULL, segmentation_id BIGINT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS network_subnets (id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL,
     ip_version INTEGER NOT NULL, cidr TEXT NOT NULL, gateway_ip TEXT, allocation_pools TEXT NOT NULL, dns_nameservers TEXT NOT NULL,
     host_routes TEXT NOT NULL, enable_dhcp INTEGER NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS network_ip_allocations (subnet_id TEXT NOT NULL, ip_address TEXT NOT NULL, port_id TEXT NOT NULL,
     PRIMARY KEY (subnet_id, ip_address))`,
  `CREATE TABLE IF NOT EXISTS network_ports (id TEXT PRIMARY KEY, network_id TEXT NOT NULL, project_id TEXT NOT NULL, name TEXT NOT NULL,
     mac_address TEXT NOT NULL, fixed_ips TEXT NOT NULL, device_owner TEXT NOT NULL, device_id TEXT NOT NULL, security_groups TEXT NOT NULL,
     port_security_enabled INTEGER NOT NULL, allowed_address_pairs TEXT NOT NULL, admin_state_up INTEGER NOT NULL, status TEXT NOT NULL,
     host_id TEXT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  // A port's groups, one row each: "which ports use this group" without scanning JSON.
  `CREATE TABLE IF NOT EXISTS network_port_security_groups (port_id TEXT NOT NULL, security_group_id TEXT NOT NULL, PRIMARY KEY (port_id, security_group_id))`,
  `CREATE TABLE IF NOT EXISTS network_security_groups (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, description TEXT NOT NULL,
     stateful INTEGER NOT NULL, is_default INTEGER NOT NULL, created_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS network_security_group_rules (id TEXT PRIMARY KEY, security_group_id TEXT NOT NULL, direction TEXT NOT NULL,
     ethertype TEXT NOT NULL, protocol TEXT NOT NULL, port_range_min INTEGER, port_range_max INTEGER, remote_ip_prefix TEXT NOT NULL,
     remote_group_id TEXT NOT NULL, description TEXT NOT NULL, seq BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS network_routers (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, name TEXT NOT NULL, admin_state_up INTEGER NOT NULL,
     status TEXT NOT NULL, external_gateway_info TEXT, gateway_network_id TEXT NOT NULL, gateway_port_id TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  // A router's interfaces, one row per subnet: "which router is on this subnet" for floating IPs.
  `CREATE TABLE IF NOT EXISTS network_router_interfaces (router_id TEXT NOT NULL, port_id TEXT NOT NULL, subnet_id TEXT NOT NULL, cidr TEXT NOT NULL,
     seq BIGINT NOT NULL, PRIMARY KEY (router_id, port_id, subnet_id))`,
  `CREATE TABLE IF NOT EXISTS network_floating_ips (id TEXT PRIMARY KEY, project_id TEXT NOT NULL, floating_network_id TEXT NOT NULL,
     floating_ip_address TEXT NOT NULL, port_id TEXT NOT NULL, fixed_ip_address TEXT NOT NULL, router_id TEXT NOT NULL, status TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS network_quota_limits (project_id TEXT NOT NULL, name TEXT NOT NULL, quota_limit BIGINT NOT NULL,
     PRIMARY KEY (project_id, name))`,
  `CREATE TABLE IF NOT EXISTS network_quota_reservations (project_id TEXT NOT NULL, consumer_id TEXT NOT NULL, usage TEXT NOT NULL,
     PRIMARY KEY (project_id, consumer_id))`,
  `CREATE INDEX IF NOT EXISTS network_networks_project ON network_networks (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_subnets_network ON network_subnets (network_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_ports_network ON network_ports (network_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_ports_project ON network_ports (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_port_security_groups_group ON network_port_security_groups (security_group_id)`,
  `CREATE INDEX IF NOT EXISTS network_security_groups_project ON network_security_groups (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_security_group_rules_group ON network_security_group_rules (security_group_id, seq)`,
  `CREATE INDEX IF NOT EXISTS network_routers_project ON network_routers (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_router_interfaces_subnet ON network_router_interfaces (subnet_id)`,
  `CREATE INDEX IF NOT EXISTS network_floating_ips_project ON network_floating_ips (project_id, id)`,
  `CREATE INDEX IF NOT EXISTS network_floating_ips_port ON network_floating_ips (port_id)`,
];

export const NETWORK_TABLES = [
  'network_networks',
  'network_subnets',
  'network_ip_allocations',
  'network_ports',
  'network_port_security_groups',
  'network_security_groups',
  'network_security_group_rules',
  'network_routers',
  'network_router_interfaces',
  'network_floating_ips',
  'network_quota_limits',
  'network_quota_reservations',
];

/** The events this projection turns into rows; the others (segments, MAC registry) it passes. */
export const NETWORK_PROJECTED_EVENTS = [
  'NetworkCreated', 'NetworkUpdated', 'NetworkDeleted',
  'SubnetCreated', 'SubnetUpdated', 'SubnetDeleted', 'IpAllocated', 'IpReleased',
  'PortCreated', 'PortUpdated', 'PortDeleted', 'PortBound', 'PortUnbound', 'PortStatusChanged',
  'SecurityGroupCreated', 'SecurityGroupUpdated', 'SecurityGroupDeleted', 'SecurityGroupRuleAdded', 'SecurityGroupRuleRemoved',
  'RouterCreated', 'RouterUpdated', 'RouterGatewaySet', 'RouterGatewayCleared', 'RouterInterfaceAdded', 'RouterInterfaceRemoved', 'RouterDeleted',
  'FloatingIpCreated', 'FloatingIpUpdated', 'FloatingIpStatusChanged', 'FloatingIpDeleted',
  'NetworkQuotaLimitsSet', 'NetworkQuotaReserved', 'NetworkQuotaReleased',
] as const;

function portGroups(id: string, groups: string[]): Statement[] {
  return [
    { sql: 'DELETE FROM network_port_security_groups WHERE port_id = $1', params: [id] },
    ...groups.map((g) => ({ sql: 'INSERT INTO network_port_security_groups (port_id, security_group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', params: [id, g] })),
  ];
}

export function networkStatements(event: EventEnvelope): Statement[] {
  const e = networkCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Ev;
  const id = event.aggregateId;
  const at = event.occurredAtMs;
  switch (e.type) {
    case 'NetworkCreated':
    case 'NetworkUpdated': {
      const n = e.network ?? {};
      return [
        {
          sql: `INSERT INTO network_networks (id, name, project_id, admin_state_up, status, shared, external, mtu, network_type, physical_network,
                  segmentation_id, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, admin_state_up = excluded.admin_state_up, status = excluded.status,
                  shared = excluded.shared, external = excluded.external, mtu = excluded.mtu, updated_at_ms = excluded.updated_at_ms`,
          params: [id, n.name ?? '', n.projectId ?? '', b(n.adminStateUp), n.adminStateUp ? 'ACTIVE' : 'DOWN', b(n.shared), b(n.external), Number(n.mtu ?? 0),
            n.networkType ?? '', n.physicalNetwork ?? '', Number(n.segmentationId ?? 0), at],
        },
      ];
    }
    case 'NetworkDeleted':
      return [{ sql: 'DELETE FROM network_networks WHERE id = $1', params: [id] }];

    case 'SubnetCreated':
    case 'SubnetUpdated': {
      const s = e.subnet ?? {};
      return [
        {
          sql: `INSERT INTO network_subnets (id, network_id, project_id, name, ip_version, cidr, gateway_ip, allocation_pools, dns_nameservers,
                  host_routes, enable_dhcp, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, dns_nameservers = excluded.dns_nameservers, host_routes = excluded.host_routes,
                  enable_dhcp = excluded.enable_dhcp, updated_at_ms = excluded.updated_at_ms`,
          params: [id, s.networkId ?? '', s.projectId ?? '', s.name ?? '', Number(s.ipVersion ?? 4), s.cidr ?? '', s.gatewayIp ?? null,
            json(s.allocationPools ?? []), json(s.dnsNameservers ?? []), json(s.hostRoutes ?? []), b(s.enableDhcp), at],
        },
      ];
    }
    case 'SubnetDeleted':
      return [
        { sql: 'DELETE FROM network_subnets WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM network_ip_allocations WHERE subnet_id = $1', params: [id] },
      ];
    case 'IpAllocated':
      return [{ sql: 'INSERT INTO network_ip_allocations (subnet_id, ip_address, port_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', params: [id, e.ipAddress, e.portId] }];
    case 'IpReleased':
      return [{ sql: 'DELETE FROM network_ip_allocations WHERE subnet_id = $1 AND ip_address = $2', params: [id, e.ipAddress] }];

    case 'PortCreated':
    case 'PortUpdated': {
      const p = e.port ?? {};
      return [
        {
          sql: `INSERT INTO network_ports (id, network_id, project_id, name, mac_address, fixed_ips, device_owner, device_id, security_groups,
                  port_security_enabled, allowed_address_pairs, admin_state_up, status, host_id, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'DOWN', '', $13, $13)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, fixed_ips = excluded.fixed_ips, device_owner = excluded.device_owner,
                  device_id = excluded.device_id, security_groups = excluded.security_groups, port_security_enabled = excluded.port_security_enabled,
                  allowed_address_pairs = excluded.allowed_address_pairs, admin_state_up = excluded.admin_state_up, updated_at_ms = excluded.updated_at_ms`,
          params: [id, p.networkId ?? '', p.projectId ?? '', p.name ?? '', p.macAddress ?? '', json(p.fixedIps ?? []), p.deviceOwner ?? '', p.deviceId ?? '',
            json(p.securityGroups ?? []), b(p.portSecurityEnabled), json(p.allowedAddressPairs ?? []), b(p.adminStateUp), at],
        },
        ...portGroups(id, p.securityGroups ?? []),
      ];
    }
    case 'PortDeleted':
      return [{ sql: 'DELETE FROM network_ports WHERE id = $1', params: [id] }, ...portGroups(id, [])];
    case 'PortBound':
      return [{ sql: 'UPDATE network_ports SET host_id = $2, updated_at_ms = $3 WHERE id = $1', params: [id, e.hostId ?? '', at] }];
    case 'PortUnbound':
      return [{ sql: "UPDATE network_ports SET host_id = '', updated_at_ms = $2 WHERE id = $1", params: [id, at] }];
    case 'PortStatusChanged':
      return [{ sql: 'UPDATE network_ports SET status = $2, updated_at_ms = $3 WHERE id = $1', params: [id, e.status, at] }];

    case 'SecurityGroupCreated':
    case 'SecurityGroupUpdated': {
      const g = e.securityGroup ?? {};
      return [
        {
          sql: `INSERT INTO network_security_groups (id, project_id, name, description, stateful, is_default, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, description = excluded.description`,
          params: [id, g.projectId ?? '', g.name ?? '', g.description ?? '', b(g.stateful), b(g.isDefault), at],
        },
      ];
    }
    case 'SecurityGroupDeleted':
      return [
        { sql: 'DELETE FROM network_security_groups WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM network_security_group_rules WHERE security_group_id = $1', params: [id] },
      ];
    case 'SecurityGroupRuleAdded': {
      const r = e.rule ?? {};
      return [
        {
          sql: `INSERT INTO network_security_group_rules (id, security_group_id, direction, ethertype, protocol, port_range_min, port_range_max,
                  remote_ip_prefix, remote_group_id, description, seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`,
          params: [r.id, id, r.direction ?? '', r.ethertype ?? '', r.protocol ?? '', r.portRangeMin ?? null, r.portRangeMax ?? null, r.remoteIpPrefix ?? '',
            r.remoteGroupId ?? '', r.description ?? '', event.version],
        },
      ];
    }
    case 'SecurityGroupRuleRemoved':
      return [{ sql: 'DELETE FROM network_security_group_rules WHERE id = $1 AND security_group_id = $2', params: [e.rule?.id ?? '', id] }];

    case 'RouterCreated':
    case 'RouterUpdated':
    case 'RouterGatewaySet':
    case 'RouterGatewayCleared': {
      const r = e.router ?? {};
      const g = r.externalGatewayInfo ?? null;
      // Created and updated carry no port: the gateway port stays what the gateway events said.
      const portSet = e.type === 'RouterGatewaySet' || e.type === 'RouterGatewayCleared';
      return [
        {
          sql: `INSERT INTO network_routers (id, project_id, name, admin_state_up, status, external_gateway_info, gateway_network_id, gateway_port_id,
                  created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, 'ACTIVE', $5, $6, '', $7, $7)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, admin_state_up = excluded.admin_state_up,
                  external_gateway_info = excluded.external_gateway_info, gateway_network_id = excluded.gateway_network_id, updated_at_ms = excluded.updated_at_ms`,
          params: [id, r.projectId ?? '', r.name ?? '', b(r.adminStateUp), g ? json(g) : null, g?.networkId ?? '', at],
        },
        ...(portSet
          ? [{ sql: 'UPDATE network_routers SET gateway_port_id = $2 WHERE id = $1', params: [id, e.type === 'RouterGatewaySet' ? e.portId ?? '' : ''] }]
          : []),
      ];
    }
    case 'RouterInterfaceAdded':
      return (e.subnets ?? []).map((x: Ev) => ({
        sql: 'INSERT INTO network_router_interfaces (router_id, port_id, subnet_id, cidr, seq) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING',
        params: [id, e.portId, x.subnetId, x.cidr, event.version],
      }));
    case 'RouterInterfaceRemoved':
      return [{ sql: 'DELETE FROM network_router_interfaces WHERE router_id = $1 AND port_id = $2', params: [id, e.portId] }];
    case 'RouterDeleted':
      return [
        { sql: 'DELETE FROM network_routers WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM network_router_interfaces WHERE router_id = $1', params: [id] },
      ];

    case 'FloatingIpCreated':
    case 'FloatingIpUpdated': {
      const f = e.floatingIp ?? {};
      return [
        {
          sql: `INSERT INTO network_floating_ips (id, project_id, floating_network_id, floating_ip_address, port_id, fixed_ip_address, router_id, status,
                  created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'DOWN', $8, $8)
                ON CONFLICT (id) DO UPDATE SET port_id = excluded.port_id, fixed_ip_address = excluded.fixed_ip_address, router_id = excluded.router_id,
                  updated_at_ms = excluded.updated_at_ms`,
          params: [id, f.projectId ?? '', f.floatingNetworkId ?? '', f.floatingIpAddress ?? '', f.portId ?? '', f.fixedIpAddress ?? '', f.routerId ?? '', at],
        },
      ];
    }
    case 'FloatingIpStatusChanged':
      return [{ sql: 'UPDATE network_floating_ips SET status = $2, updated_at_ms = $3 WHERE id = $1', params: [id, e.status, at] }];
    case 'FloatingIpDeleted':
      return [{ sql: 'DELETE FROM network_floating_ips WHERE id = $1', params: [id] }];

    // A quota's aggregate id is its project.
    case 'NetworkQuotaLimitsSet':
      return Object.entries((e.limits ?? {}) as Record<string, number>).map(([name, limit]) => ({
        sql: `INSERT INTO network_quota_limits (project_id, name, quota_limit) VALUES ($1, $2, $3)
              ON CONFLICT (project_id, name) DO UPDATE SET quota_limit = excluded.quota_limit`,
        params: [id, name, Number(limit)],
      }));
    case 'NetworkQuotaReserved':
      return [
        {
          sql: 'INSERT INTO network_quota_reservations (project_id, consumer_id, usage) VALUES ($1, $2, $3) ON CONFLICT (project_id, consumer_id) DO UPDATE SET usage = excluded.usage',
          params: [id, e.consumerId ?? '', json(e.usage ?? {})],
        },
      ];
    case 'NetworkQuotaReleased':
      return [{ sql: 'DELETE FROM network_quota_reservations WHERE project_id = $1 AND consumer_id = $2', params: [id, e.consumerId ?? ''] }];
    default:
      return [];
  }
}

export const networkProjection: Projection = {
  name: 'network',
  topics: [domainTopics(NETWORK_DOMAIN).events],
  handles: NETWORK_PROJECTED_EVENTS,
  schema: NETWORK_SCHEMA,
  tables: NETWORK_TABLES,
  apply: (event: EventEnvelope, _position: Position) => networkStatements(event),
};
