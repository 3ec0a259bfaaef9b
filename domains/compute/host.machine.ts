// A compute host as Placement sees it: registered by its agent with an inventory, enabled or
// disabled by admins (with a reason), beating its heart, and holding claims. Claims are commands
// to this aggregate, so all boots landing on one host pass through one writer: a claim beyond
// capacity ((total - reserved) * allocation_ratio) or against an anti-affinity group is refused,
// however many schedulers raced for the host.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import { capacity, type Inventory } from './scheduling/host-state.js';

export interface HostInventory {
  vcpus: Omit<Inventory, 'used'>;
  ramMb: Omit<Inventory, 'used'>;
  diskGb: Omit<Inventory, 'used'>;
}

export interface Claim {
  vcpus: number;
  ramMb: number;
  diskGb: number;
  /** The consumer's server group, when it has one with a hard policy. */
  groupId: string;
}

export interface HostContext {
  availabilityZone: string;
  /** Where the host's agent serves ComputeAgentService ("host:port"); '' when it serves nothing. */
  endpoint: string;
  inventory: HostInventory | null;
  disabledReason: string;
  lastHeartbeatMs: number;
  claims: Record<string, Claim>;
  used: { vcpus: number; ramMb: number; diskGb: number };
  /** Server group id -> consumers of that group on this host. */
  groupMembers: Record<string, string[]>;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

const RESOURCES = ['vcpus', 'ramMb', 'diskGb'] as const;

/** The first resource a claim does not fit, or undefined. */
export function shortfall(c: HostContext, claim: Claim): string | undefined {
  for (const r of RESOURCES) {
    const cap = capacity({ ...c.inventory![r], used: 0 });
    if (c.used[r] + claim[r] > cap) return `${r} (asked ${claim[r]}, ${c.used[r]} used of ${cap})`;
  }
  return undefined;
}

/** An anti-affinity group with max_server_per_host members here already. */
export const groupFull = (c: HostContext, e: Ev) =>
  e.policy === 'anti-affinity' && (c.groupMembers[e.groupId]?.length ?? 0) >= (e.maxServerPerHost ?? 1);

const claimable = ({ context, event }: { context: HostContext; event: Ev }) =>
  context.claims[event.consumerId] !== undefined || (!shortfall(context, event as unknown as Claim) && !groupFull(context, event));

const live = {
  RegisterHost: {
    actions: enqueueActions(({ context, event, enqueue }: { context: HostContext; event: Ev; enqueue: any }) => {
      // Another inventory, zone or agent endpoint (an agent restarted on another port) is an update.
      if (
        JSON.stringify(context.inventory) !== JSON.stringify(event.inventory) ||
        context.availabilityZone !== event.availabilityZone ||
        context.endpoint !== (event.endpoint ?? '')
      ) {
        enqueue.emit({ type: 'HostInventoryUpdated', inventory: event.inventory, availabilityZone: event.availabilityZone, endpoint: event.endpoint ?? '' });
      }
    }),
  },
  HostInventoryUpdated: {
    actions: assign(({ event }: { event: Ev }) => ({ inventory: event.inventory, availabilityZone: event.availabilityZone, endpoint: event.endpoint ?? '' })),
  },
  RecordHostHeartbeat: { actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'HostHeartbeatRecorded', atMs: event.meta!.issuedAtMs })) },
  HostHeartbeatRecorded: { actions: assign(({ event }: { event: Ev }) => ({ lastHeartbeatMs: event.atMs })) },
  ClaimResources: {
    guard: claimable,
    actions: enqueueActions(({ context, event, enqueue }: { context: HostContext; event: Ev; enqueue: any }) => {
      if (context.claims[event.consumerId]) return; // a retried claim: already held
      enqueue.emit({
        type: 'ResourcesClaimed',
        consumerId: event.consumerId,
        vcpus: event.vcpus,
        ramMb: event.ramMb,
        diskGb: event.diskGb,
        groupId: event.policy === 'anti-affinity' || event.policy === 'affinity' ? event.groupId : (event.groupId ?? ''),
      });
    }),
  },
  ResourcesClaimed: {
    actions: assign(({ context, event }: { context: HostContext; event: Ev }) => ({
      claims: { ...context.claims, [event.consumerId]: { vcpus: event.vcpus, ramMb: event.ramMb, diskGb: event.diskGb, groupId: event.groupId ?? '' } },
      used: { vcpus: context.used.vcpus + event.vcpus, ramMb: context.used.ramMb + event.ramMb, diskGb: context.used.diskGb + event.diskGb },
      groupMembers: event.groupId ? { ...context.groupMembers, [event.groupId]: [...(context.groupMembers[event.groupId] ?? []), event.consumerId] } : context.groupMembers,
    })),
  },
  ReleaseResources: {
    actions: enqueueActions(({ context, event, enqueue }: { context: HostContext; event: Ev; enqueue: any }) => {
      if (context.claims[event.consumerId]) enqueue.emit({ type: 'ResourcesReleased', consumerId: event.consumerId });
    }),
  },
  ResourcesReleased: {
    actions: assign(({ context, event }: { context: HostContext; event: Ev }) => {
      const claim = context.claims[event.consumerId];
      const { [event.consumerId]: _gone, ...claims } = context.claims;
      const groupMembers = claim.groupId
        ? { ...context.groupMembers, [claim.groupId]: (context.groupMembers[claim.groupId] ?? []).filter((c) => c !== event.consumerId) }
        : context.groupMembers;
      return {
        claims,
        used: { vcpus: context.used.vcpus - claim.vcpus, ramMb: context.used.ramMb - claim.ramMb, diskGb: context.used.diskGb - claim.diskGb },
        groupMembers,
      };
    }),
  },
};

export const hostMachine = setup({}).createMachine({
  id: 'host',
  initial: 'absent',
  context: { availabilityZone: '', endpoint: '', inventory: null, disabledReason: '', lastHeartbeatMs: 0, claims: {}, used: { vcpus: 0, ramMb: 0, diskGb: 0 }, groupMembers: {} } as HostContext,
  states: {
    absent: {
      on: {
        RegisterHost: {
          actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) =>
            enqueue.emit({ type: 'HostRegistered', inventory: event.inventory, availabilityZone: event.availabilityZone ?? '', endpoint: event.endpoint ?? '' }),
          ),
        },
        HostRegistered: {
          target: 'enabled',
          actions: assign(({ event }: { event: Ev }) => ({ inventory: event.inventory, availabilityZone: event.availabilityZone, endpoint: event.endpoint ?? '' })),
        },
      },
    },
    enabled: {
      on: {
        ...live,
        DisableHost: { actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'HostDisabled', reason: event.reason ?? '' })) },
        HostDisabled: { target: 'disabled', actions: assign(({ event }: { event: Ev }) => ({ disabledReason: event.reason })) },
      },
    },
    // A disabled host takes no new claims; what runs there keeps running and may release.
    disabled: {
      on: {
        ...live,
        ClaimResources: { guard: () => false },
        EnableHost: { actions: enqueueActions(({ enqueue }: { enqueue: any }) => enqueue.emit({ type: 'HostEnabled' })) },
        HostEnabled: { target: 'enabled', actions: assign({ disabledReason: '' }) },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const HOST_COMMANDS = ['RegisterHost', 'RecordHostHeartbeat', 'ClaimResources', 'ReleaseResources', 'DisableHost', 'EnableHost'] as const;
export const HOST_EVENTS = ['HostRegistered', 'HostInventoryUpdated', 'HostHeartbeatRecorded', 'ResourcesClaimed', 'ResourcesReleased', 'HostDisabled', 'HostEnabled'] as const;
