// Recomputes placement and quota from the compute events alone and reports every breach: a host
// over its allocation ratio at any moment, an anti-affinity group with too many members on one
// host at any moment, and at the end claims or quota that do not match what the servers are
// (a deleted server holding anything, a running one without exactly one claim on its host, a
// project's quota usage that is not the sum of its servers). Pure: tests and operators feed it
// the log, and it answers from nothing else.
import type { ComputeEvent } from './compute.view.js';
import { capacity } from './scheduling/host-state.js';

export interface AuditReport {
  events: number;
  hosts: number;
  servers: Record<string, number>;
  problems: string[];
}

type Resource = 'vcpus' | 'ramMb' | 'diskGb';
const RESOURCES: Resource[] = ['vcpus', 'ramMb', 'diskGb'];

interface HostAudit {
  inventory: Record<Resource, { total: number; reserved: number; allocationRatio: number }> | null;
  used: Record<Resource, number>;
  claims: Map<string, { vcpus: number; ramMb: number; diskGb: number; groupId: string }>;
  groupCount: Map<string, number>;
}

/**
 * `events` in log order per aggregate (each aggregate's events sit in one partition, in order;
 * partitions may follow one another); the breaches found while folding and at the end.
 */
export function auditCompute(events: Iterable<ComputeEvent>): AuditReport {
  const problems: string[] = [];
  const hosts = new Map<string, HostAudit>();
  const groups = new Map<string, { policy: string; maxServerPerHost: number }>();
  const servers = new Map<string, { vm: string; host: string; projectId: string; usage?: { instances: number; cores: number; ram: number } }>();
  const reservations = new Map<string, Map<string, { instances: number; cores: number; ram: number }>>();
  let count = 0;
  const all = [...events];
  // Groups first: a group's events sit in another partition than the hosts' claims.
  for (const e of all) {
    if (e.type === 'ServerGroupCreated') groups.set(e.aggregateId, { policy: e.serverGroup?.policy ?? '', maxServerPerHost: Number(e.serverGroup?.maxServerPerHost) || 1 });
  }
  const host = (id: string) => {
    let h = hosts.get(id);
    if (!h) {
      h = { inventory: null, used: { vcpus: 0, ramMb: 0, diskGb: 0 }, claims: new Map(), groupCount: new Map() };
      hosts.set(id, h);
    }
    return h;
  };
  for (const e of all) {
    count++;
    switch (e.type) {
      case 'HostRegistered':
      case 'HostInventoryUpdated':
        host(e.aggregateId).inventory = e.inventory;
        break;
      case 'ResourcesClaimed': {
        const h = host(e.aggregateId);
        if (h.claims.has(e.consumerId)) problems.push(`host ${e.aggregateId}: ${e.consumerId} claimed twice`);
        const c = { vcpus: Number(e.vcpus), ramMb: Number(e.ramMb), diskGb: Number(e.diskGb), groupId: e.groupId ?? '' };
        h.claims.set(e.consumerId, c);
        for (const r of RESOURCES) {
          h.used[r] += c[r];
          const inv = h.inventory?.[r];
          if (!inv || h.used[r] > capacity({ ...inv, used: 0 })) problems.push(`host ${e.aggregateId} over its ${r} capacity after claiming for ${e.consumerId}: ${h.used[r]} used`);
        }
        if (c.groupId) {
          const n = (h.groupCount.get(c.groupId) ?? 0) + 1;
          h.groupCount.set(c.groupId, n);
          const g = groups.get(c.groupId);
          if (g?.policy === 'anti-affinity' && n > g.maxServerPerHost) problems.push(`anti-affinity group ${c.groupId} has ${n} members on host ${e.aggregateId}`);
        }
        break;
      }
      case 'ResourcesReleased': {
        const h = host(e.aggregateId);
        const c = h.claims.get(e.consumerId);
        if (!c) {
          problems.push(`host ${e.aggregateId}: released ${e.consumerId}, which held no claim`);
          break;
        }
        h.claims.delete(e.consumerId);
        for (const r of RESOURCES) h.used[r] -= c[r];
        if (c.groupId) h.groupCount.set(c.groupId, (h.groupCount.get(c.groupId) ?? 1) - 1);
        break;
      }
      case 'QuotaReserved': {
        const u = { instances: Number(e.usage?.instances ?? 0), cores: Number(e.usage?.cores ?? 0), ram: Number(e.usage?.ram ?? 0) };
        const held = reservations.get(e.aggregateId) ?? new Map();
        held.set(e.consumerId, u);
        reservations.set(e.aggregateId, held);
        break;
      }
      case 'QuotaReleased':
        reservations.get(e.aggregateId)?.delete(e.consumerId);
        break;
      case 'InstanceCreated':
        servers.set(e.aggregateId, { vm: 'building', host: '', projectId: e.projectId });
        break;
      case 'InstanceHostAssigned': {
        const s = servers.get(e.aggregateId);
        if (s) s.host = e.host;
        break;
      }
      case 'InstanceRescheduled': {
        const s = servers.get(e.aggregateId);
        if (s) s.host = '';
        break;
      }
      case 'InstanceActionCompleted':
      case 'InstanceActionFailed': {
        const s = servers.get(e.aggregateId);
        if (!s) break;
        s.vm = e.vmState;
        if (e.type === 'InstanceActionCompleted' && e.host !== undefined) s.host = e.host;
        if (e.type === 'InstanceActionFailed' && e.host) s.host = e.host; // a failed move: back where it was
        break;
      }
    }
  }
  // Where each server holds claims, at the end.
  const claimsOf = new Map<string, string[]>();
  for (const [id, h] of hosts) for (const consumer of h.claims.keys()) claimsOf.set(consumer, [...(claimsOf.get(consumer) ?? []), id]);
  const tally: Record<string, number> = {};
  for (const [id, s] of servers) {
    tally[s.vm] = (tally[s.vm] ?? 0) + 1;
    const claims = claimsOf.get(id) ?? [];
    const quota = reservations.get(s.projectId)?.has(id) ?? false;
    if (s.vm === 'deleted') {
      if (claims.length > 0) problems.push(`deleted server ${id} still claims ${claims.join(', ')}`);
      if (quota) problems.push(`deleted server ${id} still holds quota in project ${s.projectId}`);
    } else {
      if (!quota) problems.push(`server ${id} (${s.vm}) holds no quota`);
      // A resized server keeps its source host's claim until the resize is confirmed or reverted.
      const allowed = s.vm === 'resized' ? 2 : 1;
      if (s.host ? !claims.includes(s.host) || claims.length > allowed : claims.length > 0) {
        problems.push(`server ${id} (${s.vm}) on host '${s.host}' claims [${claims.join(', ')}]`);
      }
    }
  }
  for (const [project, held] of reservations) {
    for (const consumer of held.keys()) if (!servers.has(consumer)) problems.push(`project ${project}: quota held for ${consumer}, which is no server`);
  }
  for (const [id, h] of hosts) {
    for (const r of RESOURCES) if (h.used[r] < 0) problems.push(`host ${id}: negative ${r} usage`);
  }
  return { events: count, hosts: hosts.size, servers: tally, problems };
}
