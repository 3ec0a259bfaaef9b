// Queries over the network read models, shaped as Neutron shows them: networks (a project's and
// the shared ones), subnets with the count of addresses their ports hold, ports, security groups
// with their rules, routers with their interfaces, floating IPs. Lists are ordered by id and paged
// by an id marker.
import type { ExternalGatewayInfo, FixedIp, FloatingIp, Network, Port, SecurityGroup, SecurityGroupRule, Subnet } from '../../domains/network/network.types.js';
import { NETWORK_QUOTA_DEFAULTS } from '../../domains/network/network-quota.machine.js';
import type { Store } from '../../infra/store/store.js';

type Row = Record<string, any>;

/** A network as the API shows it: with its status (from admin_state_up) and its subnets' ids. */
export type NetworkRecord = Network & { status: string; subnets: string[] };

/** A subnet with how many of its addresses ports hold. */
export type SubnetRecord = Subnet & { usedIps: number };

/** A port with its status and the host it is bound to ('' unbound). */
export type PortRecord = Port & { status: string; hostId: string };

/** A rule with the group it belongs to and that group's project. */
export type SecurityGroupRuleRecord = SecurityGroupRule & { securityGroupId: string; projectId: string };

export type SecurityGroupRecord = SecurityGroup & { rules: SecurityGroupRuleRecord[] };

export interface RouterInterfaceRecord {
  portId: string;
  subnetId: string;
  cidr: string;
  /** The port's address on the subnet ('' when the port row is not there). */
  ipAddress: string;
}

export interface RouterRecord {
  id: string;
  projectId: string;
  name: string;
  adminStateUp: boolean;
  status: string;
  externalGatewayInfo: ExternalGatewayInfo | null;
  /** '' without a gateway. */
  gatewayPortId: string;
  interfaces: RouterInterfaceRecord[];
}

export type FloatingIpRecord = FloatingIp;

export interface Page {
  limit?: number;
  /** The last id of the previous page. */
  marker?: string;
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

const networkOf = (r: Row, subnets: string[]): NetworkRecord => ({
  id: r.id, name: r.name, projectId: r.project_id, adminStateUp: Boolean(r.admin_state_up), status: r.status, shared: Boolean(r.shared),
  external: Boolean(r.external), mtu: Number(r.mtu), networkType: r.network_type, physicalNetwork: r.physical_network,
  segmentationId: Number(r.segmentation_id), subnets,
});

const subnetOf = (r: Row): SubnetRecord => ({
  id: r.id, networkId: r.network_id, projectId: r.project_id, name: r.name, ipVersion: Number(r.ip_version), cidr: r.cidr, gatewayIp: r.gateway_ip ?? null,
  allocationPools: JSON.parse(r.allocation_pools), dnsNameservers: JSON.parse(r.dns_nameservers), hostRoutes: JSON.parse(r.host_routes),
  enableDhcp: Boolean(r.enable_dhcp), usedIps: Number(r.used_ips ?? 0),
});

const portOf = (r: Row): PortRecord => ({
  id: r.id, networkId: r.network_id, projectId: r.project_id, name: r.name, macAddress: r.mac_address, fixedIps: JSON.parse(r.fixed_ips),
  deviceOwner: r.device_owner, deviceId: r.device_id, securityGroups: JSON.parse(r.security_groups), portSecurityEnabled: Boolean(r.port_security_enabled),
  allowedAddressPairs: JSON.parse(r.allowed_address_pairs), adminStateUp: Boolean(r.admin_state_up), status: r.status, hostId: r.host_id,
});

const ruleOf = (r: Row): SecurityGroupRuleRecord => ({
  id: r.id, securityGroupId: r.security_group_id, projectId: r.project_id ?? '', direction: r.direction, ethertype: r.ethertype, protocol: r.protocol,
  portRangeMin: num(r.port_range_min), portRangeMax: num(r.port_range_max), remoteIpPrefix: r.remote_ip_prefix, remoteGroupId: r.remote_group_id,
  description: r.description,
});

const floatingIpOf = (r: Row): FloatingIpRecord => ({
  id: r.id, projectId: r.project_id, floatingNetworkId: r.floating_network_id, floatingIpAddress: r.floating_ip_address, portId: r.port_id,
  fixedIpAddress: r.fixed_ip_address, routerId: r.router_id, status: r.status,
});

const SUBNET_SELECT = `SELECT s.*, (SELECT COUNT(*) FROM network_ip_allocations a WHERE a.subnet_id = s.id) AS used_ips FROM network_subnets s`;
const RULE_SELECT = `SELECT r.*, g.project_id FROM network_security_group_rules r JOIN network_security_groups g ON g.id = r.security_group_id`;

/** WHERE clauses and params, plus the page's marker and limit. */
function paged(where: string[], params: unknown[], page: Page, column = 'id'): { sql: string; params: unknown[] } {
  const w = [...where];
  const p = [...params];
  if (page.marker) {
    p.push(page.marker);
    w.push(`${column} > $${p.length}`);
  }
  let sql = w.length ? ` WHERE ${w.join(' AND ')}` : '';
  sql += ` ORDER BY ${column}`;
  if (page.limit) sql += ` LIMIT ${Math.floor(page.limit)}`;
  return { sql, params: p };
}

export interface NetworkQuotaRecord {
  projectId: string;
  /** Quota name -> limit (-1: unlimited). */
  limits: Record<string, number>;
  /** Quota name -> what the project's resources hold. */
  inUse: Record<string, number>;
}

export class NetworkQueries {
  constructor(readonly store: Store) {}

  private async subnetIds(networkIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(networkIds.map((id) => [id, []]));
    if (networkIds.length === 0) return out;
    const rows = await this.store.query<Row>(
      `SELECT id, network_id FROM network_subnets WHERE network_id IN (${networkIds.map((_, i) => `$${i + 1}`).join(', ')}) ORDER BY created_at_ms, id`,
      networkIds,
    );
    for (const r of rows) out.get(r.network_id)?.push(r.id);
    return out;
  }

  async getNetwork(id: string): Promise<NetworkRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM network_networks WHERE id = $1', [id]);
    return row && networkOf(row, (await this.subnetIds([id])).get(id) ?? []);
  }

  /** A project's networks and the shared ones, and with withExternal the external ones (projectId undefined: all). */
  async listNetworks(options: { projectId?: string; name?: string; withExternal?: boolean } & Page = {}): Promise<NetworkRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.projectId !== undefined) {
      params.push(options.projectId);
      where.push(`(project_id = $${params.length} OR shared = 1${options.withExternal ? ' OR external = 1' : ''})`);
    }
    if (options.name) {
      params.push(options.name);
      where.push(`name = $${params.length}`);
    }
    const q = paged(where, params, options);
    const rows = await this.store.query<Row>(`SELECT * FROM network_networks${q.sql}`, q.params);
    const subnets = await this.subnetIds(rows.map((r) => r.id));
    return rows.map((r) => networkOf(r, subnets.get(r.id) ?? []));
  }

  async getSubnet(id: string): Promise<SubnetRecord | undefined> {
    const [row] = await this.store.query<Row>(`${SUBNET_SELECT} WHERE s.id = $1`, [id]);
    return row && subnetOf(row);
  }

  /** Subnets of the given networks, or of one network (in creation order when by network). */
  async listSubnets(options: { networkIds?: string[] } & Page = {}): Promise<SubnetRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.networkIds) {
      if (options.networkIds.length === 0) return [];
      where.push(`s.network_id IN (${options.networkIds.map((id) => `$${params.push(id)}`).join(', ')})`);
    }
    const q = paged(where, params, options, 's.id');
    return (await this.store.query<Row>(`${SUBNET_SELECT}${q.sql}`, q.params)).map(subnetOf);
  }

  /** A network's subnets in the order they were made (the first IPv4 one serves a port that names none). */
  async subnetsOf(networkId: string): Promise<SubnetRecord[]> {
    return (await this.store.query<Row>(`${SUBNET_SELECT} WHERE s.network_id = $1 ORDER BY s.created_at_ms, s.id`, [networkId])).map(subnetOf);
  }

  async getPort(id: string): Promise<PortRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM network_ports WHERE id = $1', [id]);
    return row && portOf(row);
  }

  async listPorts(options: { projectId?: string; networkId?: string; deviceId?: string } & Page = {}): Promise<PortRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of [['project_id', options.projectId], ['network_id', options.networkId], ['device_id', options.deviceId]] as const) {
      if (value === undefined || value === '') continue;
      params.push(value);
      where.push(`${column} = $${params.length}`);
    }
    const q = paged(where, params, options);
    return (await this.store.query<Row>(`SELECT * FROM network_ports${q.sql}`, q.params)).map(portOf);
  }

  async countPorts(networkId: string): Promise<number> {
    const [row] = await this.store.query<Row>('SELECT COUNT(*) AS n FROM network_ports WHERE network_id = $1', [networkId]);
    return Number(row?.n ?? 0);
  }

  /** Ports using a security group. */
  async portsUsingGroup(groupId: string): Promise<string[]> {
    return (await this.store.query<Row>('SELECT port_id FROM network_port_security_groups WHERE security_group_id = $1 ORDER BY port_id', [groupId])).map((r) => r.port_id);
  }

  private async rulesOf(groupIds: string[]): Promise<Map<string, SecurityGroupRuleRecord[]>> {
    const out = new Map<string, SecurityGroupRuleRecord[]>(groupIds.map((id) => [id, []]));
    if (groupIds.length === 0) return out;
    const rows = await this.store.query<Row>(
      `${RULE_SELECT} WHERE r.security_group_id IN (${groupIds.map((_, i) => `$${i + 1}`).join(', ')}) ORDER BY r.seq, r.id`,
      groupIds,
    );
    for (const r of rows) out.get(r.security_group_id)?.push(ruleOf(r));
    return out;
  }

  private async groups(rows: Row[]): Promise<SecurityGroupRecord[]> {
    const rules = await this.rulesOf(rows.map((r) => r.id));
    return rows.map((r) => ({
      id: r.id, projectId: r.project_id, name: r.name, description: r.description, stateful: Boolean(r.stateful), isDefault: Boolean(r.is_default),
      rules: rules.get(r.id) ?? [],
    }));
  }

  async getSecurityGroup(id: string): Promise<SecurityGroupRecord | undefined> {
    const rows = await this.store.query<Row>('SELECT * FROM network_security_groups WHERE id = $1', [id]);
    return (await this.groups(rows))[0];
  }

  async listSecurityGroups(options: { projectId?: string; name?: string } & Page = {}): Promise<SecurityGroupRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.projectId !== undefined) where.push(`project_id = $${params.push(options.projectId)}`);
    if (options.name) where.push(`name = $${params.push(options.name)}`);
    const q = paged(where, params, options);
    return this.groups(await this.store.query<Row>(`SELECT * FROM network_security_groups${q.sql}`, q.params));
  }

  private async routers(rows: Row[]): Promise<RouterRecord[]> {
    const ids = rows.map((r) => r.id);
    const interfaces = new Map<string, RouterInterfaceRecord[]>(ids.map((id) => [id, []]));
    if (ids.length > 0) {
      const found = await this.store.query<Row>(
        `SELECT i.router_id, i.port_id, i.subnet_id, i.cidr, p.fixed_ips FROM network_router_interfaces i LEFT JOIN network_ports p ON p.id = i.port_id
         WHERE i.router_id IN (${ids.map((_, i) => `$${i + 1}`).join(', ')}) ORDER BY i.seq, i.port_id, i.subnet_id`,
        ids,
      );
      for (const r of found) {
        const ips = (r.fixed_ips ? JSON.parse(r.fixed_ips) : []) as FixedIp[];
        const ipAddress = ips.find((f) => f.subnetId === r.subnet_id)?.ipAddress ?? '';
        interfaces.get(r.router_id)?.push({ portId: r.port_id, subnetId: r.subnet_id, cidr: r.cidr, ipAddress });
      }
    }
    return rows.map((r) => ({
      id: r.id, projectId: r.project_id, name: r.name, adminStateUp: Boolean(r.admin_state_up), status: r.status,
      externalGatewayInfo: r.external_gateway_info ? JSON.parse(r.external_gateway_info) : null, gatewayPortId: r.gateway_port_id,
      interfaces: interfaces.get(r.id) ?? [],
    }));
  }

  async getRouter(id: string): Promise<RouterRecord | undefined> {
    return (await this.routers(await this.store.query<Row>('SELECT * FROM network_routers WHERE id = $1', [id])))[0];
  }

  async listRouters(options: { projectId?: string; name?: string; externalNetworkId?: string } & Page = {}): Promise<RouterRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    for (const [column, value] of [['project_id', options.projectId], ['name', options.name], ['gateway_network_id', options.externalNetworkId]] as const) {
      if (value === undefined || value === '') continue;
      where.push(`${column} = $${params.push(value)}`);
    }
    const q = paged(where, params, options);
    return this.routers(await this.store.query<Row>(`SELECT * FROM network_routers${q.sql}`, q.params));
  }

  /** The routers with an interface on the subnet and their gateway on the network (a floating IP's way out). */
  async routersBetween(subnetId: string, externalNetworkId: string): Promise<string[]> {
    const rows = await this.store.query<Row>(
      `SELECT DISTINCT r.id FROM network_router_interfaces i JOIN network_routers r ON r.id = i.router_id
       WHERE i.subnet_id = $1 AND r.gateway_network_id = $2 ORDER BY r.id`,
      [subnetId, externalNetworkId],
    );
    return rows.map((r) => r.id);
  }

  /** A project's network quotas: its limits (Neutron's defaults where none was set) and what its resources hold. */
  async getNetworkQuota(projectId: string): Promise<NetworkQuotaRecord> {
    const limits: Record<string, number> = { ...NETWORK_QUOTA_DEFAULTS };
    for (const r of await this.store.query<Row>('SELECT name, quota_limit FROM network_quota_limits WHERE project_id = $1', [projectId])) limits[r.name] = Number(r.quota_limit);
    const inUse: Record<string, number> = Object.fromEntries(Object.keys(NETWORK_QUOTA_DEFAULTS).map((n) => [n, 0]));
    for (const r of await this.store.query<Row>('SELECT usage FROM network_quota_reservations WHERE project_id = $1', [projectId])) {
      for (const [name, n] of Object.entries(JSON.parse(String(r.usage)) as Record<string, number>)) inUse[name] = (inUse[name] ?? 0) + Number(n);
    }
    return { projectId, limits, inUse };
  }

  async getFloatingIp(id: string): Promise<FloatingIpRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM network_floating_ips WHERE id = $1', [id]);
    return row && floatingIpOf(row);
  }

  async listFloatingIps(
    options: { projectId?: string; portId?: string; routerId?: string; floatingNetworkId?: string; status?: string; floatingIpAddress?: string } & Page = {},
  ): Promise<FloatingIpRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const filters = [
      ['project_id', options.projectId], ['port_id', options.portId], ['router_id', options.routerId], ['floating_network_id', options.floatingNetworkId],
      ['status', options.status], ['floating_ip_address', options.floatingIpAddress],
    ] as const;
    for (const [column, value] of filters) {
      if (value === undefined || value === '') continue;
      where.push(`${column} = $${params.push(value)}`);
    }
    const q = paged(where, params, options);
    return (await this.store.query<Row>(`SELECT * FROM network_floating_ips${q.sql}`, q.params)).map(floatingIpOf);
  }

  async getRule(id: string): Promise<SecurityGroupRuleRecord | undefined> {
    const [row] = await this.store.query<Row>(`${RULE_SELECT} WHERE r.id = $1`, [id]);
    return row && ruleOf(row);
  }

  async listRules(options: { projectId?: string; securityGroupId?: string } = {}): Promise<SecurityGroupRuleRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.projectId !== undefined) where.push(`g.project_id = $${params.push(options.projectId)}`);
    if (options.securityGroupId) where.push(`r.security_group_id = $${params.push(options.securityGroupId)}`);
    const rows = await this.store.query<Row>(`${RULE_SELECT}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY r.security_group_id, r.seq, r.id`, params);
    return rows.map(ruleOf);
  }
}
