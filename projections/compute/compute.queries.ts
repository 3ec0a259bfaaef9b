// Queries over the compute read models, shaped as Nova shows them: servers by id and in pages
// (newest first by default, a server id as the marker), counts by status, flavors a project may
// see, key pairs of a user, server groups, host aggregates, compute hosts with their usage,
// quotas with Nova's defaults where none was set, and a server's instance actions.
// Deleted servers stay in the table (vm_state deleted, as Nova keeps its soft-deleted rows)
// but are hidden unless asked for.
import type { Aggregate, Flavor, Keypair, ServerGroup } from '../../domains/compute/compute.types.js';
import type { HostInventory } from '../../domains/compute/host.machine.js';
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import type { TaskState, VmState } from '../../domains/compute/instance.states.js';
import { COUNTED, QUOTA_DEFAULTS, type QuotaName } from '../../domains/compute/quota.machine.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import type { Store } from '../../infra/store/store.js';

type Row = Record<string, unknown>;

export interface Server {
  id: string;
  name: string;
  projectId: string;
  userId: string;
  vmState: VmState;
  taskState: TaskState | null;
  /** Nova's API status (ACTIVE, BUILD, SHUTOFF, ...). */
  status: string;
  powerState: number;
  /** The action in progress, if any (Nova's name). */
  action: string | null;
  flavor: FlavorRef | null;
  imageId: string;
  keyName: string;
  availabilityZone: string;
  serverGroupId: string;
  host: string;
  node: string;
  metadata: Record<string, string>;
  locked: boolean;
  lockedReason: string;
  /** 'admin', 'owner', or '' when unlocked. */
  lockedBy: string;
  fault: { code: number; message: string } | null;
  launched: boolean;
  createdAtMs: number;
  updatedAtMs: number;
  /** The instance aggregate's version. */
  version: number;
}

/** A server's network interface (os-interface's interfaceAttachment). */
export interface ServerInterfaceRecord {
  portId: string;
  networkId: string;
  macAddress: string;
  fixedIps: { subnetId: string; ipAddress: string; cidr: string; gatewayIp: string }[];
  mtu: number;
  /** requested, allocated, attached, detaching, detached (domains/compute/instance.interfaces.ts). */
  state: string;
  /** A port the user gave (kept when the server lets it go). */
  preserveOnDelete: boolean;
  /** Why its attach or detach failed; '' otherwise. */
  fault: string;
}

export interface InstanceActionRecord {
  /** The request id (the correlation id of the request that started it). */
  requestId: string;
  instanceId: string;
  action: string;
  userId: string;
  projectId: string;
  startedAtMs: number;
  /** null while it runs. */
  finishedAtMs: number | null;
  result: 'success' | 'error' | null;
  /** The fault message of a failed action; '' otherwise. */
  message: string;
}

export interface FlavorRecord extends Flavor {
  /** Projects given access (private flavors). */
  access: string[];
}

export interface KeypairRecord extends Keypair {
  createdAtMs: number;
}

export interface ServerGroupRecord extends ServerGroup {
  members: string[];
}

export interface AggregateRecord extends Aggregate {
  hosts: string[];
  createdAtMs: number;
  updatedAtMs: number;
}

export interface HostRecord {
  id: string;
  availabilityZone: string;
  inventory: HostInventory | null;
  used: { vcpus: number; ramMb: number; diskGb: number };
  enabled: boolean;
  disabledReason: string;
  lastHeartbeatMs: number;
  /** Where the host's agent serves ComputeAgentService ("host:port"); '' when it serves nothing. */
  endpoint: string;
  /** Consumers (servers) holding a claim on the host. */
  claims: number;
  createdAtMs: number;
  updatedAtMs: number;
}

export interface QuotaRecord {
  projectId: string;
  /** Every quota: the project's limit, or Nova's default; -1 is unlimited. */
  limits: Record<QuotaName, number>;
  used: Record<(typeof COUNTED)[number], number>;
}

export interface ServerPage {
  servers: Server[];
  /** The marker of the next page (the last server's id); '' when this is the last page. */
  nextMarker: string;
}

export interface ListServersOptions {
  /** The project whose servers to list; ignored with allProjects. */
  projectId?: string;
  /** Every project's servers (admins: Nova's all_tenants). */
  allProjects?: boolean;
  /** Nova's status (case-insensitive): DELETED and SOFT_DELETED list those otherwise hidden. */
  status?: string;
  host?: string;
  /** A case-insensitive substring of the name. */
  name?: string;
  userId?: string;
  /** Include deleted and soft-deleted servers. */
  includeDeleted?: boolean;
  /** Page size: default and maximum MAX_LIMIT. */
  limit?: number;
  /** The id of the last server of the previous page. */
  marker?: string;
  /** Order of (created_at, id): Nova's default is newest first. */
  sortDir?: 'asc' | 'desc';
}

export const MAX_LIMIT = 1000;

const num = (v: unknown) => Number(v ?? 0);
const parse = <T>(v: unknown, fallback: T): T => {
  if (v === null || v === undefined || v === '') return fallback;
  const parsed = JSON.parse(String(v));
  return (parsed ?? fallback) as T;
};
const likePattern = (s: string) => `%${s.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

export const serverFromRow = (r: Row): Server => ({
  id: String(r.id),
  name: String(r.name),
  projectId: String(r.project_id),
  userId: String(r.user_id),
  vmState: String(r.vm_state) as VmState,
  taskState: (r.task_state ?? null) as TaskState | null,
  status: String(r.status),
  powerState: num(r.power_state),
  action: (r.action ?? null) as string | null,
  flavor: parse<FlavorRef | null>(r.flavor, null),
  imageId: String(r.image_id),
  keyName: String(r.key_name),
  availabilityZone: String(r.availability_zone),
  serverGroupId: String(r.server_group_id),
  host: String(r.host),
  node: String(r.node),
  metadata: parse<Record<string, string>>(r.metadata, {}),
  locked: num(r.locked) === 1,
  lockedReason: String(r.locked_reason),
  lockedBy: String(r.locked_by),
  fault: parse<{ code: number; message: string } | null>(r.fault, null),
  launched: num(r.launched) === 1,
  createdAtMs: num(r.created_at_ms),
  updatedAtMs: num(r.updated_at_ms),
  version: num(r.version),
});

const actionFromRow = (r: Row): InstanceActionRecord => ({
  requestId: String(r.request_id),
  instanceId: String(r.instance_id),
  action: String(r.action),
  userId: String(r.user_id),
  projectId: String(r.project_id),
  startedAtMs: num(r.started_at_ms),
  finishedAtMs: r.finished_at_ms === null || r.finished_at_ms === undefined ? null : num(r.finished_at_ms),
  result: (r.result ?? null) as 'success' | 'error' | null,
  message: String(r.message ?? ''),
});

const flavorFromRow = (r: Row, access: string[]): FlavorRecord => ({
  id: String(r.id),
  name: String(r.name),
  vcpus: num(r.vcpus),
  ramMb: num(r.ram_mb),
  diskGb: num(r.disk_gb),
  ephemeralGb: num(r.ephemeral_gb),
  swapMb: num(r.swap_mb),
  extraSpecs: parse<Record<string, string>>(r.extra_specs, {}),
  isPublic: num(r.is_public) === 1,
  description: String(r.description),
  access,
});

const keypairFromRow = (r: Row): KeypairRecord => ({
  id: String(r.id),
  name: String(r.name),
  userId: String(r.user_id),
  publicKey: String(r.public_key),
  fingerprint: String(r.fingerprint),
  type: String(r.type) as Keypair['type'],
  createdAtMs: num(r.created_at_ms),
});

const groupFromRow = (r: Row, members: string[]): ServerGroupRecord => ({
  id: String(r.id),
  name: String(r.name),
  projectId: String(r.project_id),
  userId: String(r.user_id),
  policy: String(r.policy) as ServerGroup['policy'],
  maxServerPerHost: num(r.max_server_per_host),
  members,
});

const aggregateFromRow = (r: Row, hosts: string[]): AggregateRecord => ({
  id: String(r.id),
  name: String(r.name),
  availabilityZone: String(r.availability_zone),
  metadata: parse<Record<string, string>>(r.metadata, {}),
  hosts,
  createdAtMs: num(r.created_at_ms),
  updatedAtMs: num(r.updated_at_ms),
});

const hostFromRow = (r: Row): HostRecord => ({
  id: String(r.id),
  availabilityZone: String(r.availability_zone),
  inventory: parse<HostInventory | null>(r.inventory, null),
  used: { vcpus: num(r.used_vcpus), ramMb: num(r.used_ram_mb), diskGb: num(r.used_disk_gb) },
  enabled: num(r.enabled) === 1,
  disabledReason: String(r.disabled_reason),
  lastHeartbeatMs: num(r.last_heartbeat_ms),
  endpoint: r.endpoint === null || r.endpoint === undefined ? '' : String(r.endpoint),
  claims: num(r.claim_count),
  createdAtMs: num(r.created_at_ms),
  updatedAtMs: num(r.updated_at_ms),
});

/** A host row with its agent endpoint (from its side table; empty when none was registered). */
const HOST_COLUMNS = 'h.*, e.endpoint AS endpoint FROM compute_hosts h LEFT JOIN compute_host_endpoints e ON e.host_id = h.id';

/** Groups rows of (key, value) into key -> values, values in row order. */
const groupBy = (rows: Row[], key: string, value: string) => {
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(String(r[key]), [...(out.get(String(r[key])) ?? []), String(r[value])]);
  return out;
};

const inList = (ids: string[], offset = 0) => ids.map((_, i) => `$${i + 1 + offset}`).join(', ');

export class ComputeQueries {
  constructor(readonly store: Store) {}

  // Servers.

  /** The network interfaces of these servers, in the order they were asked for. */
  async interfacesOf(ids: string[]): Promise<Map<string, ServerInterfaceRecord[]>> {
    const out = new Map<string, ServerInterfaceRecord[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return out;
    const rows = await this.store.query<Row>(`SELECT * FROM compute_instance_interfaces WHERE instance_id IN (${inList(ids)}) ORDER BY seq, port_id`, ids);
    for (const r of rows) {
      out.get(String(r.instance_id))?.push({
        portId: String(r.port_id),
        networkId: String(r.network_id),
        macAddress: String(r.mac_address),
        fixedIps: parse(r.fixed_ips, []),
        mtu: num(r.mtu),
        state: String(r.state),
        preserveOnDelete: num(r.preserve_on_delete) === 1,
        fault: String(r.fault),
      });
    }
    return out;
  }

  /** A server by id; a deleted one only with includeDeleted (soft-deleted ones are shown, as Nova does). */
  async getServer(id: string, options: { includeDeleted?: boolean } = {}): Promise<Server | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_instances WHERE id = $1', [id]);
    if (!row || (row.vm_state === 'deleted' && !options.includeDeleted)) return undefined;
    return serverFromRow(row);
  }

  /**
   * A page of servers ordered by (created_at, id), newest first unless sortDir is 'asc'. Deleted
   * and soft-deleted servers are hidden unless the status filter names them or includeDeleted.
   * An unknown marker is an InvalidArgumentError (Nova: "marker [x] not found").
   */
  async listServers(options: ListServersOptions = {}): Promise<ServerPage> {
    const limit = Math.min(Math.max(1, Math.floor(options.limit ?? MAX_LIMIT)), MAX_LIMIT);
    const desc = (options.sortDir ?? 'desc') === 'desc';
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (!options.allProjects && options.projectId !== undefined) where.push(`project_id = ${p(options.projectId)}`);
    if (options.userId !== undefined) where.push(`user_id = ${p(options.userId)}`);
    const status = options.status?.toUpperCase();
    if (status) where.push(`status = ${p(status)}`);
    else if (!options.includeDeleted) where.push(`vm_state NOT IN ('deleted', 'soft-delete')`);
    if (options.host !== undefined) where.push(`host = ${p(options.host)}`);
    if (options.name) where.push(`lower(name) LIKE ${p(likePattern(options.name))} ESCAPE '\\'`);
    if (options.marker) {
      const [m] = await this.store.query<Row>('SELECT created_at_ms, id FROM compute_instances WHERE id = $1', [options.marker]);
      if (!m) throw new InvalidArgumentError('marker', `marker [${options.marker}] not found`);
      const at = p(num(m.created_at_ms));
      const mid = p(String(m.id));
      where.push(desc ? `(created_at_ms < ${at} OR (created_at_ms = ${at} AND id < ${mid}))` : `(created_at_ms > ${at} OR (created_at_ms = ${at} AND id > ${mid}))`);
    }
    const dir = desc ? 'DESC' : 'ASC';
    const rows = await this.store.query<Row>(
      `SELECT * FROM compute_instances${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at_ms ${dir}, id ${dir} LIMIT ${p(limit + 1)}`,
      params,
    );
    const servers = rows.slice(0, limit).map(serverFromRow);
    return { servers, nextMarker: rows.length > limit ? servers[servers.length - 1].id : '' };
  }

  /** Servers by status (deleted ones only with includeDeleted). */
  async serverCountByStatus(options: { projectId?: string; allProjects?: boolean; includeDeleted?: boolean } = {}): Promise<Record<string, number>> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (!options.allProjects && options.projectId !== undefined) {
      params.push(options.projectId);
      where.push('project_id = $1');
    }
    if (!options.includeDeleted) where.push(`vm_state <> 'deleted'`);
    const rows = await this.store.query<Row>(
      `SELECT status, COUNT(*) AS n FROM compute_instances${where.length ? ` WHERE ${where.join(' AND ')}` : ''} GROUP BY status ORDER BY status`,
      params,
    );
    return Object.fromEntries(rows.map((r) => [String(r.status), num(r.n)]));
  }

  /** Nova's os-instance-actions of a server, newest first (deleted servers keep theirs). */
  async listInstanceActions(instanceId: string): Promise<InstanceActionRecord[]> {
    const rows = await this.store.query<Row>('SELECT * FROM compute_instance_actions WHERE instance_id = $1 ORDER BY seq DESC, id DESC', [instanceId]);
    return rows.map(actionFromRow);
  }

  /** One instance action by its request id (the newest, if a request caused several). */
  async getInstanceAction(instanceId: string, requestId: string): Promise<InstanceActionRecord | undefined> {
    const [row] = await this.store.query<Row>(
      'SELECT * FROM compute_instance_actions WHERE instance_id = $1 AND request_id = $2 ORDER BY seq DESC, id DESC LIMIT 1',
      [instanceId, requestId],
    );
    return row ? actionFromRow(row) : undefined;
  }

  /** The instance actions a request started, over every server it touched (a multi-create touches several). */
  async findInstanceActions(requestId: string): Promise<InstanceActionRecord[]> {
    const rows = await this.store.query<Row>('SELECT * FROM compute_instance_actions WHERE request_id = $1 ORDER BY instance_id, seq DESC, id DESC', [requestId]);
    return rows.map(actionFromRow);
  }

  // Flavors.

  private async flavorAccess(ids: string[]): Promise<Map<string, string[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.store.query<Row>(
      `SELECT flavor_id, project_id FROM compute_flavor_access WHERE flavor_id IN (${inList(ids)}) ORDER BY flavor_id, project_id`,
      ids,
    );
    return groupBy(rows, 'flavor_id', 'project_id');
  }

  /** A flavor; with projectId, a private one only if the project has access (otherwise as an admin sees it). */
  async getFlavor(id: string, options: { projectId?: string } = {}): Promise<FlavorRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_flavors WHERE id = $1', [id]);
    if (!row) return undefined;
    const access = (await this.flavorAccess([id])).get(id) ?? [];
    if (options.projectId !== undefined && num(row.is_public) !== 1 && !access.includes(options.projectId)) return undefined;
    return flavorFromRow(row, access);
  }

  /**
   * Flavors ordered by id: with projectId, the public ones and the private ones it has access to;
   * without, all (an admin's view). isPublic narrows to public or private ones.
   */
  async listFlavors(options: { projectId?: string; isPublic?: boolean; limit?: number; marker?: string } = {}): Promise<FlavorRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (options.projectId !== undefined) {
      where.push(`(is_public = 1 OR id IN (SELECT flavor_id FROM compute_flavor_access WHERE project_id = ${p(options.projectId)}))`);
    }
    if (options.isPublic !== undefined) where.push(`is_public = ${p(options.isPublic ? 1 : 0)}`);
    if (options.marker) where.push(`id > ${p(options.marker)}`);
    const limit = Math.min(Math.max(1, Math.floor(options.limit ?? MAX_LIMIT)), MAX_LIMIT);
    const rows = await this.store.query<Row>(
      `SELECT * FROM compute_flavors${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${p(limit)}`,
      params,
    );
    const access = await this.flavorAccess(rows.map((r) => String(r.id)));
    return rows.map((r) => flavorFromRow(r, access.get(String(r.id)) ?? []));
  }

  // Key pairs.

  async getKeypair(id: string): Promise<KeypairRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_keypairs WHERE id = $1', [id]);
    return row ? keypairFromRow(row) : undefined;
  }

  /** A user's key pair by name (Nova names key pairs per user). */
  async getKeypairByName(userId: string, name: string): Promise<KeypairRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_keypairs WHERE user_id = $1 AND name = $2', [userId, name]);
    return row ? keypairFromRow(row) : undefined;
  }

  /** A user's key pairs by name. */
  async listKeypairs(userId: string): Promise<KeypairRecord[]> {
    const rows = await this.store.query<Row>('SELECT * FROM compute_keypairs WHERE user_id = $1 ORDER BY name, id', [userId]);
    return rows.map(keypairFromRow);
  }

  // Server groups.

  private async groupMembers(ids: string[]): Promise<Map<string, string[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.store.query<Row>(
      `SELECT group_id, instance_id FROM compute_server_group_members WHERE group_id IN (${inList(ids)}) ORDER BY group_id, instance_id`,
      ids,
    );
    return groupBy(rows, 'group_id', 'instance_id');
  }

  async getServerGroup(id: string): Promise<ServerGroupRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_server_groups WHERE id = $1', [id]);
    return row ? groupFromRow(row, (await this.groupMembers([id])).get(id) ?? []) : undefined;
  }

  /** A project's server groups (every project's when projectId is undefined), by name. */
  async listServerGroups(projectId?: string): Promise<ServerGroupRecord[]> {
    const rows =
      projectId === undefined
        ? await this.store.query<Row>('SELECT * FROM compute_server_groups ORDER BY name, id')
        : await this.store.query<Row>('SELECT * FROM compute_server_groups WHERE project_id = $1 ORDER BY name, id', [projectId]);
    const members = await this.groupMembers(rows.map((r) => String(r.id)));
    return rows.map((r) => groupFromRow(r, members.get(String(r.id)) ?? []));
  }

  // Host aggregates.

  private async aggregateHosts(ids: string[]): Promise<Map<string, string[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.store.query<Row>(
      `SELECT aggregate_id, host FROM compute_aggregate_hosts WHERE aggregate_id IN (${inList(ids)}) ORDER BY aggregate_id, host`,
      ids,
    );
    return groupBy(rows, 'aggregate_id', 'host');
  }

  async getAggregate(id: string): Promise<AggregateRecord | undefined> {
    const [row] = await this.store.query<Row>('SELECT * FROM compute_aggregates WHERE id = $1', [id]);
    return row ? aggregateFromRow(row, (await this.aggregateHosts([id])).get(id) ?? []) : undefined;
  }

  /** Every host aggregate (or those a host belongs to), by name. */
  async listAggregates(options: { host?: string } = {}): Promise<AggregateRecord[]> {
    const rows =
      options.host === undefined
        ? await this.store.query<Row>('SELECT * FROM compute_aggregates ORDER BY name, id')
        : await this.store.query<Row>(
            'SELECT * FROM compute_aggregates WHERE id IN (SELECT aggregate_id FROM compute_aggregate_hosts WHERE host = $1) ORDER BY name, id',
            [options.host],
          );
    const hosts = await this.aggregateHosts(rows.map((r) => String(r.id)));
    return rows.map((r) => aggregateFromRow(r, hosts.get(String(r.id)) ?? []));
  }

  // Hosts.

  async getHost(id: string): Promise<HostRecord | undefined> {
    const [row] = await this.store.query<Row>(`SELECT ${HOST_COLUMNS} WHERE h.id = $1`, [id]);
    return row ? hostFromRow(row) : undefined;
  }

  /** Compute hosts by id, optionally of one availability zone or enabled state. */
  async listHosts(options: { availabilityZone?: string; enabled?: boolean } = {}): Promise<HostRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (options.availabilityZone !== undefined) {
      params.push(options.availabilityZone);
      where.push(`availability_zone = $${params.length}`);
    }
    if (options.enabled !== undefined) {
      params.push(options.enabled ? 1 : 0);
      where.push(`enabled = $${params.length}`);
    }
    const rows = await this.store.query<Row>(`SELECT ${HOST_COLUMNS}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY h.id`, params);
    return rows.map(hostFromRow);
  }

  // Quotas.

  /** A project's limits (Nova's defaults where none was set) and what its servers use. */
  async getQuota(projectId: string): Promise<QuotaRecord> {
    const [row] = await this.store.query<Row>('SELECT limits, used FROM compute_quotas WHERE project_id = $1', [projectId]);
    const set = parse<Record<string, number>>(row?.limits, {});
    const used = parse<Record<string, number>>(row?.used, {});
    const limits = { ...QUOTA_DEFAULTS } as Record<QuotaName, number>;
    for (const name of Object.keys(QUOTA_DEFAULTS) as QuotaName[]) if (set[name] !== undefined) limits[name] = num(set[name]);
    return {
      projectId,
      limits,
      used: Object.fromEntries(COUNTED.map((n) => [n, num(used[n])])) as QuotaRecord['used'],
    };
  }
}
