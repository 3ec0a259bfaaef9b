// Read-model records as ComputeService returns them (proto/strata/compute/v1/compute_service.proto,
// camelCase objects for protobufjs): timestamps, hosts hidden from non-admins, the actions the
// caller may take, operations from the instance actions log.
import type { AggregateRecord, HostRecord, InstanceActionRecord, QuotaRecord, Server, ServerGroupRecord, ServerInterfaceRecord } from '../../projections/compute/compute.queries.js';
import { allowedActions } from './server.actions.js';

type Obj = Record<string, unknown>;

export const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

/** Nova's service_down_time: a host whose agent was silent this long is down. */
export const HOST_DOWN_AFTER_MS = 60_000;

/** A server's interface (Nova's interfaceAttachment, with its fixed IPs' subnets). */
export const interfaceView = (i: Pick<ServerInterfaceRecord, 'portId' | 'networkId' | 'macAddress' | 'fixedIps' | 'mtu' | 'state' | 'preserveOnDelete' | 'fault'>): Obj => ({
  portId: i.portId,
  networkId: i.networkId,
  macAddress: i.macAddress,
  fixedIps: i.fixedIps,
  mtu: i.mtu,
  state: i.state,
  preserveOnDelete: i.preserveOnDelete,
  fault: i.fault,
});

export function serverView(s: Server, admin: boolean, interfaces: ServerInterfaceRecord[] = []): Obj {
  return {
    id: s.id,
    name: s.name,
    projectId: s.projectId,
    userId: s.userId,
    status: s.status,
    vmState: s.vmState,
    ...(s.taskState !== null ? { taskState: s.taskState } : {}),
    powerState: s.powerState,
    flavor: s.flavor ?? undefined,
    imageId: s.imageId,
    keyName: s.keyName,
    availabilityZone: s.availabilityZone,
    serverGroupId: s.serverGroupId,
    // Nova shows OS-EXT-SRV-ATTR:host to admins only.
    host: admin ? s.host : '',
    node: admin ? s.node : '',
    metadata: s.metadata,
    locked: s.locked,
    lockedReason: s.lockedReason,
    fault: s.fault ?? undefined,
    createdAt: timestamp(s.createdAtMs),
    updatedAt: timestamp(s.updatedAtMs),
    action: s.action ?? '',
    allowedActions: allowedActions(s, admin),
    interfaces: interfaces.map(interfaceView),
  };
}

export function operationView(a: InstanceActionRecord): Obj {
  return {
    name: a.requestId,
    serverId: a.instanceId,
    action: a.action,
    done: a.result !== null,
    result: a.result ?? '',
    error: a.result === 'error' ? a.message || 'the action failed' : '',
    userId: a.userId,
    startedAt: timestamp(a.startedAtMs),
    ...(a.finishedAtMs !== null ? { finishedAt: timestamp(a.finishedAtMs) } : {}),
  };
}

export const serverGroupView = (g: ServerGroupRecord): Obj => ({ ...g });

export const aggregateView = (a: AggregateRecord): Obj => ({
  id: a.id,
  name: a.name,
  availabilityZone: a.availabilityZone,
  metadata: a.metadata,
  hosts: a.hosts,
  createdAt: timestamp(a.createdAtMs),
  updatedAt: timestamp(a.updatedAtMs),
});

export const hostView = (h: HostRecord, aggregates: string[], nowMs: number): Obj => ({
  id: h.id,
  availabilityZone: h.availabilityZone,
  inventory: h.inventory ?? undefined,
  used: h.used,
  enabled: h.enabled,
  disabledReason: h.disabledReason,
  up: h.lastHeartbeatMs > 0 && nowMs - h.lastHeartbeatMs <= HOST_DOWN_AFTER_MS,
  ...(h.lastHeartbeatMs > 0 ? { lastHeartbeat: timestamp(h.lastHeartbeatMs) } : {}),
  servers: h.claims,
  aggregates,
  endpoint: h.endpoint,
});

export const quotaView = (q: QuotaRecord, inUse: Record<string, number>): Obj => ({
  projectId: q.projectId,
  limits: q.limits,
  inUse: { ...q.used, ...inUse },
});
