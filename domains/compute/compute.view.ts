// What the conductor (boot saga, scheduler) and the host agents know of compute: a fold of the
// compute events into instances, hosts with their claims, server groups and aggregates. Pure and
// deterministic: the same events give the same view, so a process that restarts folds the log
// again and knows what it knew. Kept mutable and indexed for speed (thousands of hosts).
import type { Message } from '../kernel/decider.js';
import type { FlavorRef } from './instance.actions.js';
import { applyInterfaceEvent, INTERFACE_EVENTS, type InstanceInterface } from './instance.interfaces.js';
import { POWER_STATES, type TaskState, type VmState } from './instance.states.js';
import type { BootView } from './sagas/boot.saga.js';
import type { GroupPolicy, HostState } from './scheduling/host-state.js';

/** A decoded compute event with where it came from. */
export type ComputeEvent = Message &
  Record<string, any> & { aggregateType: string; aggregateId: string; version: number; occurredAtMs: number };

export interface InstanceView extends BootView {
  claimHosts: string[];
  name: string;
  projectId: string;
  userId: string;
  flavor: FlavorRef | null;
  newFlavor: FlavorRef | null;
  imageId: string;
  availabilityZone: string;
  serverGroupId: string;
  powerState: number;
  /** Version of the event that started the current action: agents key their reports on it. */
  actionVersion: number;
  /** The host a move left, until it is confirmed or reverted. */
  sourceHost: string;
  /** A host was assigned during the current action (a boot's or a move's destination). */
  assigned: boolean;
  /** Of the current action: its task_state at the start, the image it names, whether a shelve offloads. */
  startTask: TaskState | null;
  actionImageId: string;
  offload: boolean;
  /** Of the current action: the vm_state it ends in (revert resize: the one before the resize). */
  resultVm: VmState | null;
  /** Of a live migration: where the destination listens for the guest ('' until it does). */
  migrationUri: string;
  /** Why the last action failed or the boot was rescheduled (Nova's fault message). */
  fault: string;
  /** Its network interfaces (instance.interfaces.ts). */
  interfaces: InstanceInterface[];
  version: number;
}

const INTERFACE_EVENT_TYPES = new Set<string>(INTERFACE_EVENTS);

export interface HostView extends HostState {
  /** Where the host's agent serves ComputeAgentService; '' when it serves nothing. */
  endpoint: string;
  lastHeartbeatMs: number;
  disabledReason: string;
  registered: boolean;
  claims: Map<string, { vcpus: number; ramMb: number; diskGb: number; groupId: string }>;
}

export interface ServerGroupView {
  id: string;
  name: string;
  projectId: string;
  policy: GroupPolicy;
  maxServerPerHost: number;
  members: Set<string>;
}

export interface AggregateView {
  id: string;
  availabilityZone: string;
  metadata: Record<string, string>;
  hosts: Set<string>;
}

const emptyInventory = () => ({ total: 0, reserved: 0, allocationRatio: 1, used: 0 });

export class ComputeView {
  readonly instances = new Map<string, InstanceView>();
  readonly hosts = new Map<string, HostView>();
  readonly serverGroups = new Map<string, ServerGroupView>();
  readonly aggregates = new Map<string, AggregateView>();
  /** The server each port of an interface belongs to (kept after the server is deleted: its ports may still be let go). */
  readonly portInstances = new Map<string, string>();
  /** Consumers (instance ids) holding a quota reservation, by project. */
  private readonly quotaHeld = new Set<string>();

  host(id: string): HostView {
    let h = this.hosts.get(id);
    if (!h) {
      h = {
        id, availabilityZone: '', endpoint: '', enabled: true, up: false, registered: false,
        vcpus: emptyInventory(), ramMb: emptyInventory(), diskGb: emptyInventory(),
        aggregateMetadata: {}, groupMembers: {}, buildFailures: 0, lastHeartbeatMs: 0, disabledReason: '', claims: new Map(),
      };
      this.hosts.set(id, h);
    }
    return h;
  }

  /** Folds one event; returns the id of the instance it concerns, if any. */
  apply(e: ComputeEvent): string | undefined {
    switch (e.aggregateType) {
      case 'instance':
        this.applyInstance(e);
        return e.aggregateId;
      case 'host':
        return this.applyHost(e);
      case 'quota':
        if (e.type === 'QuotaReserved') this.quotaHeld.add(e.consumerId);
        if (e.type === 'QuotaReleased') this.quotaHeld.delete(e.consumerId);
        if (e.type === 'QuotaReserved' || e.type === 'QuotaReleased') {
          const i = this.instances.get(e.consumerId);
          if (i) i.quotaHeld = this.quotaHeld.has(e.consumerId);
          return e.consumerId;
        }
        return undefined;
      case 'server_group':
        this.applyGroup(e);
        return undefined;
      case 'aggregate':
        this.applyAggregate(e);
        return undefined;
      default:
        return undefined;
    }
  }

  private applyInstance(e: ComputeEvent): void {
    let i = this.instances.get(e.aggregateId);
    if (e.type === 'InstanceCreated') {
      i = {
        instanceId: e.aggregateId, vm: 'building', task: 'scheduling', action: 'create', host: '', failedHosts: [], claimHosts: [], quotaHeld: this.quotaHeld.has(e.aggregateId), lastProgressMs: e.occurredAtMs,
        name: e.name, projectId: e.projectId, userId: e.userId, flavor: e.flavor ?? null, newFlavor: null, imageId: e.imageId,
        availabilityZone: e.availabilityZone ?? '', serverGroupId: e.serverGroupId ?? '', powerState: POWER_STATES.NOSTATE,
        actionVersion: e.version, sourceHost: '', assigned: false, startTask: 'scheduling', actionImageId: '', offload: false, resultVm: 'active', migrationUri: '', fault: '',
        interfaces: (e.interfaces ?? []) as InstanceInterface[], version: e.version,
      };
      for (const x of i.interfaces) this.portInstances.set(x.portId, i.instanceId);
      // Claims may precede the instance in the fold (other partitions): pick them up.
      for (const h of this.hosts.values()) if (h.claims.has(i.instanceId)) i.claimHosts.push(h.id);
      this.instances.set(e.aggregateId, i);
      return;
    }
    if (!i) return;
    i.version = e.version;
    if (INTERFACE_EVENT_TYPES.has(e.type) || e.type === 'InstanceActionCompleted') {
      i.interfaces = applyInterfaceEvent(i.interfaces, e);
      if (e.type === 'InstanceInterfaceRequested') this.portInstances.set(e.interface.portId, i.instanceId);
    }
    switch (e.type) {
      case 'InstanceActionStarted':
        i.action = e.action;
        i.task = (e.taskState || null) as TaskState | null;
        i.newFlavor = e.newFlavor ?? null;
        i.actionVersion = e.version;
        i.assigned = false;
        i.startTask = i.task;
        i.actionImageId = e.imageId ?? '';
        i.offload = Boolean(e.offload);
        i.resultVm = (e.resultVm || null) as VmState | null;
        i.migrationUri = '';
        i.lastProgressMs = e.occurredAtMs;
        if (e.action === 'create' || e.action === 'unshelve') i.failedHosts = [];
        break;
      case 'InstanceTaskChanged':
        i.task = (e.taskState || null) as TaskState | null;
        i.lastProgressMs = e.occurredAtMs;
        break;
      case 'InstanceRescheduled':
        i.failedHosts = [...i.failedHosts, e.failedHost];
        i.fault = e.reason ?? '';
        i.host = '';
        i.assigned = false;
        i.task = 'scheduling';
        i.lastProgressMs = e.occurredAtMs;
        break;
      case 'InstanceHostAssigned':
        if (i.host && i.host !== e.host) i.sourceHost = i.host;
        i.host = e.host;
        i.assigned = true;
        i.migrationUri = '';
        if (e.availabilityZone) i.availabilityZone = e.availabilityZone;
        i.lastProgressMs = e.occurredAtMs;
        break;
      case 'InstanceActionCompleted':
        i.vm = e.vmState as VmState;
        i.task = null;
        i.action = null;
        i.assigned = false;
        if (e.flavor) i.flavor = e.flavor;
        i.newFlavor = null;
        i.host = e.host ?? i.host;
        if (e.action !== 'resize' && e.action !== 'migrate') i.sourceHost = '';
        i.powerState = e.vmState === 'active' ? POWER_STATES.RUNNING : e.vmState === 'paused' ? POWER_STATES.PAUSED : e.vmState === 'suspended' ? POWER_STATES.SUSPENDED : e.vmState === 'building' || e.vmState === 'error' ? i.powerState : POWER_STATES.SHUTDOWN;
        i.lastProgressMs = e.occurredAtMs;
        break;
      case 'InstanceActionFailed':
        i.vm = e.vmState as VmState;
        i.task = null;
        i.action = null;
        i.assigned = false;
        i.newFlavor = null;
        i.fault = e.fault?.message ?? '';
        if (e.host && e.host !== i.host) {
          // A failed move: the server stays where it was.
          i.host = e.host;
          i.sourceHost = '';
        }
        i.lastProgressMs = e.occurredAtMs;
        break;
      case 'InstancePowerStateObserved':
        i.powerState = e.powerState;
        break;
      case 'InstanceMigrationTargetReady':
        i.migrationUri = e.uri;
        i.lastProgressMs = e.occurredAtMs;
        break;
    }
  }

  private applyHost(e: ComputeEvent): string | undefined {
    const h = this.host(e.aggregateId);
    switch (e.type) {
      case 'HostRegistered':
      case 'HostInventoryUpdated':
        h.registered = true;
        h.availabilityZone = e.availabilityZone ?? '';
        h.endpoint = e.endpoint ?? '';
        // Built field by field: decoded messages have no prototype, and the scheduler reads these in its hot loop.
        for (const r of ['vcpus', 'ramMb', 'diskGb'] as const) {
          const i = e.inventory?.[r] ?? {};
          h[r] = { total: Number(i.total ?? 0), reserved: Number(i.reserved ?? 0), allocationRatio: Number(i.allocationRatio ?? 1), used: h[r].used };
        }
        this.refreshAggregates(h);
        return undefined;
      case 'HostHeartbeatRecorded':
        h.lastHeartbeatMs = e.atMs;
        return undefined;
      case 'HostDisabled':
        h.enabled = false;
        h.disabledReason = e.reason ?? '';
        return undefined;
      case 'HostEnabled':
        h.enabled = true;
        h.disabledReason = '';
        return undefined;
      case 'ResourcesClaimed':
        this.claim(h, e.consumerId, { vcpus: e.vcpus, ramMb: e.ramMb, diskGb: e.diskGb, groupId: e.groupId ?? '' });
        return e.consumerId;
      case 'ResourcesReleased':
        this.release(h, e.consumerId);
        return e.consumerId;
    }
    return undefined;
  }

  /** Records a claim (idempotent per host and consumer); also used optimistically by the conductor. */
  claim(h: HostView, consumerId: string, c: { vcpus: number; ramMb: number; diskGb: number; groupId: string }): void {
    if (h.claims.has(consumerId)) return;
    h.claims.set(consumerId, c);
    h.vcpus.used += c.vcpus;
    h.ramMb.used += c.ramMb;
    h.diskGb.used += c.diskGb;
    if (c.groupId) h.groupMembers[c.groupId] = (h.groupMembers[c.groupId] ?? 0) + 1;
    const i = this.instances.get(consumerId);
    if (i && !i.claimHosts.includes(h.id)) i.claimHosts.push(h.id);
  }

  release(h: HostView, consumerId: string): void {
    const c = h.claims.get(consumerId);
    if (!c) return;
    h.claims.delete(consumerId);
    h.vcpus.used -= c.vcpus;
    h.ramMb.used -= c.ramMb;
    h.diskGb.used -= c.diskGb;
    if (c.groupId) h.groupMembers[c.groupId] = Math.max(0, (h.groupMembers[c.groupId] ?? 0) - 1);
    const i = this.instances.get(consumerId);
    if (i) i.claimHosts = i.claimHosts.filter((x) => x !== h.id);
  }

  private applyGroup(e: ComputeEvent): void {
    if (e.type === 'ServerGroupCreated') {
      const g = e.serverGroup ?? {};
      this.serverGroups.set(e.aggregateId, {
        id: e.aggregateId, name: g.name ?? '', projectId: g.projectId ?? '', policy: g.policy as GroupPolicy,
        maxServerPerHost: Number(g.maxServerPerHost) > 0 ? Number(g.maxServerPerHost) : 1, members: new Set(),
      });
      return;
    }
    const g = this.serverGroups.get(e.aggregateId);
    if (!g) return;
    if (e.type === 'ServerGroupMemberAdded') g.members.add(e.instanceId);
    if (e.type === 'ServerGroupMemberRemoved') g.members.delete(e.instanceId);
    if (e.type === 'ServerGroupDeleted') this.serverGroups.delete(e.aggregateId);
  }

  private applyAggregate(e: ComputeEvent): void {
    let a = this.aggregates.get(e.aggregateId);
    const touched = new Set<string>(a?.hosts ?? []);
    if (e.type === 'AggregateCreated' || e.type === 'AggregateUpdated') {
      const r = e.aggregate ?? {};
      a = { id: e.aggregateId, availabilityZone: r.availabilityZone ?? '', metadata: { ...(r.metadata ?? {}) }, hosts: a?.hosts ?? new Set() };
      this.aggregates.set(e.aggregateId, a);
    } else if (!a) return;
    else if (e.type === 'AggregateHostAdded') {
      a.hosts.add(e.host);
      touched.add(e.host);
    } else if (e.type === 'AggregateHostRemoved') a.hosts.delete(e.host);
    else if (e.type === 'AggregateDeleted') this.aggregates.delete(e.aggregateId);
    for (const id of touched) this.refreshAggregates(this.host(id));
  }

  /** A host's aggregate metadata (key -> every value) and its zone, when an aggregate names one. */
  private refreshAggregates(h: HostView): void {
    const md: Record<string, string[]> = {};
    for (const a of this.aggregates.values()) {
      if (!a.hosts.has(h.id)) continue;
      for (const [k, v] of Object.entries(a.metadata)) (md[k] ??= []).push(v);
    }
    h.aggregateMetadata = md;
  }

  /** Hosts as the scheduler sees them at `nowMs`: registered ones, `up` by heartbeat age. */
  schedulable(nowMs: number, serviceDownMs: number): HostView[] {
    const out: HostView[] = [];
    for (const h of this.hosts.values()) {
      if (!h.registered) continue;
      h.up = nowMs - h.lastHeartbeatMs <= serviceDownMs;
      out.push(h);
    }
    return out;
  }
}
