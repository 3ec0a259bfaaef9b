// The compute read models: servers as Nova's API shows them (status computed by Nova's table),
// the os-instance-actions log, flavors with their project access, key pairs, server groups with
// members, host aggregates with hosts, compute hosts with their claims and usage, and project
// quotas with what their servers use. Pure: an event in, statements out (SQL that SQLite and
// PostgreSQL share; booleans are 0/1 integers, JSON is TEXT). Every row is written by the events
// of one aggregate only, so the result does not depend on how partitions interleave.
//
// Where an event carries a change rather than the whole value (metadata items set or deleted,
// some quota limits set, a claim or reservation given back by consumer id), the parts live in a
// side table and the JSON or total column is recomputed from it in SQL: apply never reads.
import { computeCodecFor, computeEventTypes } from '../../infra/codecs/compute.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement } from '../../infra/store/store.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { instanceStatus, POWER_STATES, TASK_STATES, VM_STATES, type TaskState, type VmState } from '../../domains/compute/instance.states.js';

type Ev = Record<string, any> & { type: string };

const b = (v: unknown) => (v ? 1 : 0);
const json = (v: unknown) => JSON.stringify(v ?? null);
const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

export const COMPUTE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS compute_instances (id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
     vm_state TEXT NOT NULL, task_state TEXT, status TEXT NOT NULL, power_state INTEGER NOT NULL, action TEXT,
     flavor TEXT NOT NULL, image_id TEXT NOT NULL, key_name TEXT NOT NULL, availability_zone TEXT NOT NULL, server_group_id TEXT NOT NULL,
     host TEXT NOT NULL, node TEXT NOT NULL, metadata TEXT NOT NULL, locked INTEGER NOT NULL, locked_reason TEXT NOT NULL,
     locked_by TEXT NOT NULL, fault TEXT NOT NULL, launched INTEGER NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL,
     version BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_instance_metadata (instance_id TEXT NOT NULL, meta_key TEXT NOT NULL, meta_value TEXT NOT NULL,
     item_json TEXT NOT NULL, PRIMARY KEY (instance_id, meta_key))`,
  // A server's network interfaces (os-interface), one row per port, in the order they were asked for.
  `CREATE TABLE IF NOT EXISTS compute_instance_interfaces (instance_id TEXT NOT NULL, port_id TEXT NOT NULL, network_id TEXT NOT NULL,
     mac_address TEXT NOT NULL, fixed_ips TEXT NOT NULL, mtu INTEGER NOT NULL, state TEXT NOT NULL, preserve_on_delete INTEGER NOT NULL,
     request_id TEXT NOT NULL, fault TEXT NOT NULL, seq BIGINT NOT NULL, PRIMARY KEY (instance_id, port_id))`,
  `CREATE TABLE IF NOT EXISTS compute_instance_actions (id TEXT PRIMARY KEY, request_id TEXT NOT NULL, instance_id TEXT NOT NULL,
     action TEXT NOT NULL, user_id TEXT NOT NULL, project_id TEXT NOT NULL, seq BIGINT NOT NULL, started_at_ms BIGINT NOT NULL,
     finished_at_ms BIGINT, result TEXT, message TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_flavors (id TEXT PRIMARY KEY, name TEXT NOT NULL, vcpus INTEGER NOT NULL, ram_mb INTEGER NOT NULL,
     disk_gb INTEGER NOT NULL, ephemeral_gb INTEGER NOT NULL, swap_mb INTEGER NOT NULL, extra_specs TEXT NOT NULL, is_public INTEGER NOT NULL,
     description TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_flavor_access (flavor_id TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (flavor_id, project_id))`,
  `CREATE TABLE IF NOT EXISTS compute_keypairs (id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL, public_key TEXT NOT NULL,
     fingerprint TEXT NOT NULL, type TEXT NOT NULL, created_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_server_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
     policy TEXT NOT NULL, max_server_per_host INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_server_group_members (group_id TEXT NOT NULL, instance_id TEXT NOT NULL, PRIMARY KEY (group_id, instance_id))`,
  `CREATE TABLE IF NOT EXISTS compute_aggregates (id TEXT PRIMARY KEY, name TEXT NOT NULL, availability_zone TEXT NOT NULL, metadata TEXT NOT NULL,
     created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_aggregate_hosts (aggregate_id TEXT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (aggregate_id, host))`,
  `CREATE TABLE IF NOT EXISTS compute_hosts (id TEXT PRIMARY KEY, availability_zone TEXT NOT NULL, inventory TEXT NOT NULL,
     used_vcpus BIGINT NOT NULL, used_ram_mb BIGINT NOT NULL, used_disk_gb BIGINT NOT NULL, enabled INTEGER NOT NULL, disabled_reason TEXT NOT NULL,
     last_heartbeat_ms BIGINT NOT NULL, claim_count BIGINT NOT NULL, created_at_ms BIGINT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  // The agent endpoint of a host: a table of its own so that read models made before it existed
  // need no ALTER (hosts re-register, with their endpoint, each time their agent starts).
  `CREATE TABLE IF NOT EXISTS compute_host_endpoints (host_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_host_claims (host_id TEXT NOT NULL, consumer_id TEXT NOT NULL, vcpus BIGINT NOT NULL, ram_mb BIGINT NOT NULL,
     disk_gb BIGINT NOT NULL, group_id TEXT NOT NULL, PRIMARY KEY (host_id, consumer_id))`,
  `CREATE TABLE IF NOT EXISTS compute_quotas (project_id TEXT PRIMARY KEY, limits TEXT NOT NULL, used TEXT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS compute_quota_limits (project_id TEXT NOT NULL, quota_name TEXT NOT NULL, quota_limit BIGINT NOT NULL,
     item_json TEXT NOT NULL, PRIMARY KEY (project_id, quota_name))`,
  `CREATE TABLE IF NOT EXISTS compute_quota_reservations (project_id TEXT NOT NULL, consumer_id TEXT NOT NULL, instances BIGINT NOT NULL,
     cores BIGINT NOT NULL, ram BIGINT NOT NULL, PRIMARY KEY (project_id, consumer_id))`,
  `CREATE INDEX IF NOT EXISTS compute_instances_list ON compute_instances (project_id, created_at_ms, id)`,
  `CREATE INDEX IF NOT EXISTS compute_instances_order ON compute_instances (created_at_ms, id)`,
  `CREATE INDEX IF NOT EXISTS compute_instances_host ON compute_instances (host)`,
  `CREATE INDEX IF NOT EXISTS compute_instance_actions_instance ON compute_instance_actions (instance_id, seq)`,
  `CREATE INDEX IF NOT EXISTS compute_keypairs_user ON compute_keypairs (user_id, name)`,
  `CREATE INDEX IF NOT EXISTS compute_server_groups_project ON compute_server_groups (project_id)`,
  `CREATE INDEX IF NOT EXISTS compute_flavor_access_project ON compute_flavor_access (project_id)`,
];

export const COMPUTE_TABLES = [
  'compute_instances',
  'compute_instance_interfaces',
  'compute_instance_metadata',
  'compute_instance_actions',
  'compute_flavors',
  'compute_flavor_access',
  'compute_keypairs',
  'compute_server_groups',
  'compute_server_group_members',
  'compute_aggregates',
  'compute_aggregate_hosts',
  'compute_hosts',
  'compute_host_endpoints',
  'compute_host_claims',
  'compute_quotas',
  'compute_quota_limits',
  'compute_quota_reservations',
];

/**
 * Nova's status table (instanceStatus) as one SQL expression over vm_state and task_state, for
 * events that change task_state alone: per vm_state, the status of "no task" unless the task is
 * one of those its table maps elsewhere. Generated from instanceStatus, so the two cannot differ.
 */
export const STATUS_SQL = (() => {
  const branches = VM_STATES.map((vm) => {
    const base = instanceStatus(vm, null);
    const other = new Map<string, TaskState[]>();
    for (const t of TASK_STATES) {
      const s = instanceStatus(vm, t);
      if (s !== base) other.set(s, [...(other.get(s) ?? []), t]);
    }
    const inner =
      other.size === 0
        ? lit(base)
        : `CASE ${[...other].map(([s, ts]) => `WHEN task_state IN (${ts.map(lit).join(', ')}) THEN ${lit(s)}`).join(' ')} ELSE ${lit(base)} END`;
    return `WHEN vm_state = ${lit(vm)} THEN ${inner}`;
  });
  return `CASE ${branches.join(' ')} ELSE 'UNKNOWN' END`;
})();

const refreshStatus = (id: string): Statement => ({ sql: `UPDATE compute_instances SET status = ${STATUS_SQL} WHERE id = $1`, params: [id] });

/** An update of one instance row that also stamps its version and time. */
const updateInstance = (event: EventEnvelope, set: Record<string, unknown>): Statement => {
  const cols = Object.keys(set);
  return {
    sql: `UPDATE compute_instances SET version = $2, updated_at_ms = $3${cols.map((c, i) => `, ${c} = $${i + 4}`).join('')} WHERE id = $1`,
    params: [event.aggregateId, event.version, event.occurredAtMs, ...cols.map((c) => set[c])],
  };
};

const refreshMetadata = (id: string): Statement => ({
  sql: `UPDATE compute_instances SET metadata = '{' || COALESCE((SELECT string_agg(item_json, ',' ORDER BY meta_key) FROM compute_instance_metadata
        WHERE instance_id = $1), '') || '}' WHERE id = $1`,
  params: [id],
});

const setMetadataItem = (id: string, key: string, value: string): Statement => ({
  sql: `INSERT INTO compute_instance_metadata (instance_id, meta_key, meta_value, item_json) VALUES ($1, $2, $3, $4)
        ON CONFLICT (instance_id, meta_key) DO UPDATE SET meta_value = excluded.meta_value, item_json = excluded.item_json`,
  params: [id, key, value, `${JSON.stringify(key)}:${JSON.stringify(value)}`],
});

/** Opens an entry of the instance actions log. */
const actionStarted = (event: EventEnvelope, action: string): Statement => ({
  sql: `INSERT INTO compute_instance_actions (id, request_id, instance_id, action, user_id, project_id, seq, started_at_ms, finished_at_ms, result, message)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, '') ON CONFLICT (id) DO NOTHING`,
  params: [event.eventId, event.correlationId, event.aggregateId, action, event.actor.userId, event.actor.projectId, event.version, event.occurredAtMs],
});

/**
 * Closes the open entries of this action; an action that completed within its decision (no
 * InstanceActionStarted: confirm resize, reset state, delete of a hostless server, a power sync,
 * lock) gets an entry that starts and finishes at once.
 */
const actionFinished = (event: EventEnvelope, action: string, result: 'success' | 'error', message: string): Statement[] => [
  {
    sql: `INSERT INTO compute_instance_actions (id, request_id, instance_id, action, user_id, project_id, seq, started_at_ms, finished_at_ms, result, message)
          SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT), CAST($7 AS BIGINT),
                 CAST($8 AS BIGINT), NULL, NULL, ''
          WHERE NOT EXISTS (SELECT 1 FROM compute_instance_actions WHERE instance_id = CAST($3 AS TEXT) AND action = CAST($4 AS TEXT) AND finished_at_ms IS NULL)
          ON CONFLICT (id) DO NOTHING`,
    params: [event.eventId, event.correlationId, event.aggregateId, action, event.actor.userId, event.actor.projectId, event.version, event.occurredAtMs],
  },
  {
    sql: `UPDATE compute_instance_actions SET finished_at_ms = $3, result = $4, message = $5 WHERE instance_id = $1 AND action = $2 AND finished_at_ms IS NULL`,
    params: [event.aggregateId, action, event.occurredAtMs, result, message],
  },
];

/** A row of compute_instance_interfaces for an interface as asked for. */
const interfaceRow = (id: string, i: Ev, seq: number): Statement => ({
  sql: `INSERT INTO compute_instance_interfaces (instance_id, port_id, network_id, mac_address, fixed_ips, mtu, state, preserve_on_delete, request_id, fault, seq)
        VALUES ($1, $2, $3, '', '[]', 0, 'requested', $4, $5, '', $6)
        ON CONFLICT (instance_id, port_id) DO UPDATE SET network_id = excluded.network_id, mac_address = '', fixed_ips = '[]', mtu = 0, state = 'requested',
          preserve_on_delete = excluded.preserve_on_delete, request_id = excluded.request_id, fault = '', seq = excluded.seq`,
  params: [id, i.portId, i.networkId ?? '', b(i.preserveOnDelete), i.requestId ?? '', seq],
});

const setInterface = (id: string, portId: string, set: Record<string, unknown>): Statement => {
  const cols = Object.keys(set);
  return {
    sql: `UPDATE compute_instance_interfaces SET ${cols.map((c, i) => `${c} = $${i + 3}`).join(', ')} WHERE instance_id = $1 AND port_id = $2`,
    params: [id, portId, ...cols.map((c) => set[c])],
  };
};

/** Ends the attach_interface or detach_interface operation of a request (an interface's operations run side by side). */
const interfaceOperationFinished = (event: EventEnvelope, requestId: string, result: 'success' | 'error', message: string): Statement[] =>
  requestId
    ? [{
        sql: `UPDATE compute_instance_actions SET finished_at_ms = $3, result = $4, message = $5
              WHERE instance_id = $1 AND request_id = $2 AND action IN ('attach_interface', 'detach_interface') AND finished_at_ms IS NULL`,
        params: [event.aggregateId, requestId, event.occurredAtMs, result, message],
      }]
    : [];

/** The power state a completed action leaves (as the instance machine sets it); undefined: unchanged. */
const powerAfter = (vm: string): number | undefined =>
  vm === 'active'
    ? POWER_STATES.RUNNING
    : vm === 'paused'
      ? POWER_STATES.PAUSED
      : vm === 'suspended'
        ? POWER_STATES.SUSPENDED
        : ['stopped', 'shelved', 'shelved_offloaded', 'deleted', 'soft-delete'].includes(vm)
          ? POWER_STATES.SHUTDOWN
          : undefined;

function instanceStatements(event: EventEnvelope, e: Ev): Statement[] {
  const id = event.aggregateId;
  switch (e.type) {
    case 'InstanceCreated': {
      const metadata = (e.metadata ?? {}) as Record<string, string>;
      return [
        {
          sql: `INSERT INTO compute_instances (id, name, project_id, user_id, vm_state, task_state, status, power_state, action, flavor, image_id,
                  key_name, availability_zone, server_group_id, host, node, metadata, locked, locked_reason, locked_by, fault, launched,
                  created_at_ms, updated_at_ms, version)
                VALUES ($1, $2, $3, $4, 'building', 'scheduling', $5, $6, 'create', $7, $8, $9, $10, $11, '', '', '{}', 0, '', '', 'null', 0, $12, $12, $13)
                ON CONFLICT (id) DO NOTHING`,
          params: [
            id, e.name ?? '', e.projectId ?? '', e.userId ?? '', instanceStatus('building', 'scheduling'), POWER_STATES.NOSTATE, json(e.flavor),
            e.imageId ?? '', e.keyName ?? '', e.availabilityZone ?? '', e.serverGroupId ?? '', event.occurredAtMs, event.version,
          ],
        },
        ...Object.entries(metadata).map(([k, v]) => setMetadataItem(id, k, v)),
        refreshMetadata(id),
        actionStarted(event, 'create'),
        ...((e.interfaces ?? []) as Ev[]).map((i, n) => interfaceRow(id, i, event.version * 1000 + n)),
      ];
    }
    case 'InstanceInterfaceRequested':
      return [interfaceRow(id, e.interface, event.version * 1000), updateInstance(event, {}), actionStarted(event, 'attach_interface')];
    case 'InstanceInterfaceAllocated':
      return [
        setInterface(id, e.portId, { state: 'allocated', mac_address: e.macAddress ?? '', fixed_ips: json(e.fixedIps ?? []), mtu: Number(e.mtu ?? 0) }),
        updateInstance(event, {}),
      ];
    case 'InstanceInterfacePlugged':
      return [setInterface(id, e.portId, { state: 'attached', fault: '' }), updateInstance(event, {}), ...interfaceOperationFinished(event, e.requestId ?? '', 'success', '')];
    case 'InstanceInterfaceDetaching':
      return [setInterface(id, e.portId, { state: 'detaching', request_id: e.requestId ?? '', fault: '' }), updateInstance(event, {}), actionStarted(event, 'detach_interface')];
    case 'InstanceInterfaceUnplugged':
      return [setInterface(id, e.portId, { state: 'detached' }), updateInstance(event, {})];
    case 'InstanceInterfaceFailed':
      return [
        setInterface(id, e.portId, { state: e.detaching ? 'attached' : 'detached', fault: e.message ?? '' }),
        updateInstance(event, {}),
        ...interfaceOperationFinished(event, e.requestId ?? '', 'error', e.message ?? ''),
      ];
    case 'InstanceInterfaceRemoved':
      return [
        { sql: 'DELETE FROM compute_instance_interfaces WHERE instance_id = $1 AND port_id = $2', params: [id, e.portId] },
        updateInstance(event, {}),
        ...interfaceOperationFinished(event, e.requestId ?? '', 'success', ''),
      ];
    case 'InstanceActionStarted':
      return [
        updateInstance(event, { task_state: e.taskState ?? null, action: e.action, fault: 'null' }),
        refreshStatus(id),
        actionStarted(event, e.action),
      ];
    case 'InstanceTaskChanged':
      return [updateInstance(event, { task_state: e.taskState ?? null }), refreshStatus(id)];
    case 'InstanceRescheduled':
      return [
        updateInstance(event, { task_state: 'scheduling', host: '', node: '', fault: json({ code: 500, message: e.reason ?? '' }) }),
        refreshStatus(id),
      ];
    case 'InstanceHostAssigned':
      return [updateInstance(event, { host: e.host ?? '', node: e.node ?? '', ...(e.availabilityZone ? { availability_zone: e.availabilityZone } : {}) })];
    case 'InstanceActionCompleted': {
      const vm = e.vmState as VmState;
      const power = powerAfter(vm);
      return [
        updateInstance(event, {
          vm_state: vm,
          task_state: null,
          status: instanceStatus(vm, null),
          action: null,
          fault: 'null',
          host: e.host ?? '',
          ...(e.action === 'create' ? { launched: 1 } : {}),
          ...(e.flavor ? { flavor: json(e.flavor) } : {}),
          ...(power !== undefined ? { power_state: power } : {}),
        }),
        ...actionFinished(event, e.action, 'success', ''),
        // The boot's spawn plugged every allocated interface.
        ...(e.action === 'create' ? [{ sql: `UPDATE compute_instance_interfaces SET state = 'attached' WHERE instance_id = $1 AND state = 'allocated'`, params: [id] }] : []),
      ];
    }
    case 'InstanceActionFailed': {
      const vm = e.vmState as VmState;
      return [
        updateInstance(event, { vm_state: vm, task_state: null, status: instanceStatus(vm, null), action: null, fault: json(e.fault), ...(e.host ? { host: e.host, node: e.host } : {}) }),
        ...actionFinished(event, e.action, 'error', String(e.fault?.message ?? '')),
      ];
    }
    case 'InstanceLocked':
      return [
        updateInstance(event, { locked: 1, locked_reason: e.reason ?? '', locked_by: e.byAdmin ? 'admin' : 'owner' }),
        ...actionFinished(event, 'lock', 'success', ''),
      ];
    case 'InstanceUnlocked':
      return [updateInstance(event, { locked: 0, locked_reason: '', locked_by: '' }), ...actionFinished(event, 'unlock', 'success', '')];
    case 'InstanceMetadataSet':
      return [
        ...Object.entries((e.items ?? {}) as Record<string, string>).map(([k, v]) => setMetadataItem(id, k, v)),
        updateInstance(event, {}),
        refreshMetadata(id),
      ];
    case 'InstanceMetadataDeleted':
      return [
        { sql: 'DELETE FROM compute_instance_metadata WHERE instance_id = $1 AND meta_key = $2', params: [id, e.key] },
        updateInstance(event, {}),
        refreshMetadata(id),
      ];
    case 'InstancePowerStateObserved':
      return [updateInstance(event, { power_state: Number(e.powerState ?? 0) })];
    default:
      return [];
  }
}

const refreshHostUsage = (id: string, atMs: number): Statement => ({
  sql: `UPDATE compute_hosts SET
          used_vcpus = COALESCE((SELECT SUM(vcpus) FROM compute_host_claims WHERE host_id = $1), 0),
          used_ram_mb = COALESCE((SELECT SUM(ram_mb) FROM compute_host_claims WHERE host_id = $1), 0),
          used_disk_gb = COALESCE((SELECT SUM(disk_gb) FROM compute_host_claims WHERE host_id = $1), 0),
          claim_count = (SELECT COUNT(*) FROM compute_host_claims WHERE host_id = $1),
          updated_at_ms = $2
        WHERE id = $1`,
  params: [id, atMs],
});

const setHostEndpoint = (id: string, endpoint: string): Statement => ({
  sql: `INSERT INTO compute_host_endpoints (host_id, endpoint) VALUES ($1, $2) ON CONFLICT (host_id) DO UPDATE SET endpoint = excluded.endpoint`,
  params: [id, endpoint],
});

function hostStatements(event: EventEnvelope, e: Ev): Statement[] {
  const id = event.aggregateId;
  const at = event.occurredAtMs;
  switch (e.type) {
    case 'HostRegistered':
      return [
        setHostEndpoint(id, e.endpoint ?? ''),
        {
          sql: `INSERT INTO compute_hosts (id, availability_zone, inventory, used_vcpus, used_ram_mb, used_disk_gb, enabled, disabled_reason,
                  last_heartbeat_ms, claim_count, created_at_ms, updated_at_ms)
                VALUES ($1, $2, $3, 0, 0, 0, 1, '', 0, 0, $4, $4)
                ON CONFLICT (id) DO UPDATE SET availability_zone = excluded.availability_zone, inventory = excluded.inventory`,
          params: [id, e.availabilityZone ?? '', json(e.inventory), at],
        },
      ];
    case 'HostInventoryUpdated':
      return [
        { sql: 'UPDATE compute_hosts SET availability_zone = $2, inventory = $3, updated_at_ms = $4 WHERE id = $1', params: [id, e.availabilityZone ?? '', json(e.inventory), at] },
        setHostEndpoint(id, e.endpoint ?? ''),
      ];
    case 'HostHeartbeatRecorded':
      return [{ sql: 'UPDATE compute_hosts SET last_heartbeat_ms = $2 WHERE id = $1', params: [id, Number(e.atMs)] }];
    case 'HostDisabled':
      return [{ sql: 'UPDATE compute_hosts SET enabled = 0, disabled_reason = $2, updated_at_ms = $3 WHERE id = $1', params: [id, e.reason ?? '', at] }];
    case 'HostEnabled':
      return [{ sql: `UPDATE compute_hosts SET enabled = 1, disabled_reason = '', updated_at_ms = $2 WHERE id = $1`, params: [id, at] }];
    case 'ResourcesClaimed':
      return [
        {
          sql: `INSERT INTO compute_host_claims (host_id, consumer_id, vcpus, ram_mb, disk_gb, group_id) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (host_id, consumer_id) DO NOTHING`,
          params: [id, e.consumerId, Number(e.vcpus), Number(e.ramMb), Number(e.diskGb), e.groupId ?? ''],
        },
        refreshHostUsage(id, at),
      ];
    case 'ResourcesReleased':
      return [{ sql: 'DELETE FROM compute_host_claims WHERE host_id = $1 AND consumer_id = $2', params: [id, e.consumerId] }, refreshHostUsage(id, at)];
    default:
      return [];
  }
}

/** A project's quota row exists from its first quota event (limits and usage recomputed after). */
const ensureQuota = (projectId: string, atMs: number): Statement => ({
  sql: `INSERT INTO compute_quotas (project_id, limits, used, updated_at_ms) VALUES ($1, '{}', '{"instances":0,"cores":0,"ram":0}', $2)
        ON CONFLICT (project_id) DO UPDATE SET updated_at_ms = excluded.updated_at_ms`,
  params: [projectId, atMs],
});

const sumOf = (column: string) =>
  `CAST(COALESCE((SELECT SUM(${column}) FROM compute_quota_reservations WHERE project_id = $1), 0) AS TEXT)`;

const refreshQuotaUsed = (projectId: string): Statement => ({
  sql: `UPDATE compute_quotas SET used = '{"instances":' || ${sumOf('instances')} || ',"cores":' || ${sumOf('cores')} || ',"ram":' || ${sumOf('ram')} || '}'
        WHERE project_id = $1`,
  params: [projectId],
});

function quotaStatements(event: EventEnvelope, e: Ev): Statement[] {
  const id = event.aggregateId;
  switch (e.type) {
    case 'QuotaLimitsSet':
      return [
        ensureQuota(id, event.occurredAtMs),
        ...Object.entries((e.limits ?? {}) as Record<string, number>).map(([name, limit]) => ({
          sql: `INSERT INTO compute_quota_limits (project_id, quota_name, quota_limit, item_json) VALUES ($1, $2, $3, $4)
                ON CONFLICT (project_id, quota_name) DO UPDATE SET quota_limit = excluded.quota_limit, item_json = excluded.item_json`,
          params: [id, name, Number(limit), `${JSON.stringify(name)}:${Number(limit)}`],
        })),
        {
          sql: `UPDATE compute_quotas SET limits = '{' || COALESCE((SELECT string_agg(item_json, ',' ORDER BY quota_name) FROM compute_quota_limits
                WHERE project_id = $1), '') || '}' WHERE project_id = $1`,
          params: [id],
        },
      ];
    case 'QuotaReserved':
      return [
        ensureQuota(id, event.occurredAtMs),
        {
          sql: `INSERT INTO compute_quota_reservations (project_id, consumer_id, instances, cores, ram) VALUES ($1, $2, $3, $4, $5)
                ON CONFLICT (project_id, consumer_id) DO NOTHING`,
          params: [id, e.consumerId, Number(e.usage?.instances ?? 0), Number(e.usage?.cores ?? 0), Number(e.usage?.ram ?? 0)],
        },
        refreshQuotaUsed(id),
      ];
    case 'QuotaReleased':
      return [
        ensureQuota(id, event.occurredAtMs),
        { sql: 'DELETE FROM compute_quota_reservations WHERE project_id = $1 AND consumer_id = $2', params: [id, e.consumerId] },
        refreshQuotaUsed(id),
      ];
    default:
      return [];
  }
}

function resourceStatements(event: EventEnvelope, e: Ev): Statement[] {
  const id = event.aggregateId;
  switch (e.type) {
    case 'FlavorCreated':
    case 'FlavorUpdated': {
      const f = e.flavor ?? {};
      return [
        {
          sql: `INSERT INTO compute_flavors (id, name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, extra_specs, is_public, description)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, vcpus = excluded.vcpus, ram_mb = excluded.ram_mb, disk_gb = excluded.disk_gb,
                  ephemeral_gb = excluded.ephemeral_gb, swap_mb = excluded.swap_mb, extra_specs = excluded.extra_specs,
                  is_public = excluded.is_public, description = excluded.description`,
          params: [
            id, f.name ?? '', Number(f.vcpus ?? 0), Number(f.ramMb ?? 0), Number(f.diskGb ?? 0), Number(f.ephemeralGb ?? 0), Number(f.swapMb ?? 0),
            json(f.extraSpecs ?? {}), b(f.isPublic), f.description ?? '',
          ],
        },
      ];
    }
    case 'FlavorDeleted':
      return [
        { sql: 'DELETE FROM compute_flavors WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM compute_flavor_access WHERE flavor_id = $1', params: [id] },
      ];
    case 'FlavorAccessAdded':
      return [{ sql: 'INSERT INTO compute_flavor_access (flavor_id, project_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', params: [id, e.projectId] }];
    case 'FlavorAccessRemoved':
      return [{ sql: 'DELETE FROM compute_flavor_access WHERE flavor_id = $1 AND project_id = $2', params: [id, e.projectId] }];

    case 'KeypairCreated':
    case 'KeypairUpdated': {
      const k = e.keypair ?? {};
      return [
        {
          sql: `INSERT INTO compute_keypairs (id, name, user_id, public_key, fingerprint, type, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, user_id = excluded.user_id, public_key = excluded.public_key,
                  fingerprint = excluded.fingerprint, type = excluded.type`,
          params: [id, k.name ?? '', k.userId ?? '', k.publicKey ?? '', k.fingerprint ?? '', k.type || 'ssh', event.occurredAtMs],
        },
      ];
    }
    case 'KeypairDeleted':
      return [{ sql: 'DELETE FROM compute_keypairs WHERE id = $1', params: [id] }];

    case 'ServerGroupCreated':
    case 'ServerGroupUpdated': {
      const g = e.serverGroup ?? {};
      return [
        {
          sql: `INSERT INTO compute_server_groups (id, name, project_id, user_id, policy, max_server_per_host) VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, project_id = excluded.project_id, user_id = excluded.user_id,
                  policy = excluded.policy, max_server_per_host = excluded.max_server_per_host`,
          params: [id, g.name ?? '', g.projectId ?? '', g.userId ?? '', g.policy ?? '', Number(g.maxServerPerHost ?? 0)],
        },
      ];
    }
    case 'ServerGroupDeleted':
      return [
        { sql: 'DELETE FROM compute_server_groups WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM compute_server_group_members WHERE group_id = $1', params: [id] },
      ];
    case 'ServerGroupMemberAdded':
      return [{ sql: 'INSERT INTO compute_server_group_members (group_id, instance_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', params: [id, e.instanceId] }];
    case 'ServerGroupMemberRemoved':
      return [{ sql: 'DELETE FROM compute_server_group_members WHERE group_id = $1 AND instance_id = $2', params: [id, e.instanceId] }];

    case 'AggregateCreated':
    case 'AggregateUpdated': {
      const a = e.aggregate ?? {};
      return [
        {
          sql: `INSERT INTO compute_aggregates (id, name, availability_zone, metadata, created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $5)
                ON CONFLICT (id) DO UPDATE SET name = excluded.name, availability_zone = excluded.availability_zone, metadata = excluded.metadata,
                  updated_at_ms = excluded.updated_at_ms`,
          params: [id, a.name ?? '', a.availabilityZone ?? '', json(a.metadata ?? {}), event.occurredAtMs],
        },
      ];
    }
    case 'AggregateDeleted':
      return [
        { sql: 'DELETE FROM compute_aggregates WHERE id = $1', params: [id] },
        { sql: 'DELETE FROM compute_aggregate_hosts WHERE aggregate_id = $1', params: [id] },
      ];
    case 'AggregateHostAdded':
      return [{ sql: 'INSERT INTO compute_aggregate_hosts (aggregate_id, host) VALUES ($1, $2) ON CONFLICT DO NOTHING', params: [id, e.host] }];
    case 'AggregateHostRemoved':
      return [{ sql: 'DELETE FROM compute_aggregate_hosts WHERE aggregate_id = $1 AND host = $2', params: [id, e.host] }];
    default:
      return [];
  }
}

export function computeStatements(event: EventEnvelope): Statement[] {
  const e = computeCodecFor(event.aggregateType).decodeEvent(event.type, event.payload) as Ev;
  switch (event.aggregateType) {
    case 'instance':
      return instanceStatements(event, e);
    case 'host':
      return hostStatements(event, e);
    case 'quota':
      return quotaStatements(event, e);
    default:
      return resourceStatements(event, e);
  }
}

export const computeProjection: Projection = {
  name: 'compute',
  topics: [domainTopics(COMPUTE_DOMAIN).events],
  handles: computeEventTypes,
  schema: COMPUTE_SCHEMA,
  tables: COMPUTE_TABLES,
  apply: (event: EventEnvelope, _position: Position) => computeStatements(event),
};
