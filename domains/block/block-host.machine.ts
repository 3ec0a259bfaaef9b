// A storage host as the block domain records it (Cinder's cinder-volume service and its pool
// stats): its backend name, availability zone, capacity, where it keeps volume files, and whether
// it also stores backups; then its reported capacity. Each host registers itself at start and
// reports its capacity now and then; a registration or report that changes nothing writes
// nothing, so an agent restarting or polling adds no events. No absent state, like a network agent.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Rejection } from '../kernel/rejection.js';
import type { BlockHost } from './block.types.js';
import { fieldProblem } from './block.validation.js';
import type { Ev } from './status-rules.js';

export interface BlockHostContext {
  /** null: not registered (or removed). */
  host: BlockHost | null;
  /** The last reported capacity; null until the host reports. */
  capacity: { totalGb: number; freeGb: number } | null;
}

const record = (e: Ev): BlockHost => ({
  hostId: e.hostId,
  backend: e.backend,
  availabilityZone: e.availabilityZone,
  totalGb: e.totalGb,
  ...(e.stateDir !== undefined && e.stateDir !== null ? { stateDir: e.stateDir } : {}),
  backupStore: Boolean(e.backupStore),
});

const same = (a: BlockHost | null, b: BlockHost) =>
  a !== null && a.backend === b.backend && a.availabilityZone === b.availabilityZone && a.totalGb === b.totalGb && a.stateDir === b.stateDir && a.backupStore === b.backupStore;

/** Why this command may not run on this host (undefined: it may). */
export function blockHostRefusal(context: BlockHostContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if ((event.type === 'RegisterBlockHost' || event.type === 'ReportBlockCapacity') && event.meta && event.hostId !== id) {
    return { code: 'INVALID_ARGUMENT', field: 'host_id', message: `host_id "${event.hostId}" is not the storage host's id "${id}"` };
  }
  if ((event.type === 'ReportBlockCapacity' || event.type === 'RemoveBlockHost') && !context.host) return { code: 'NOT_FOUND', message: `no storage host ${id}` };
  return undefined;
}

const allowed = ({ context, event }: { context: BlockHostContext; event: Ev }) => blockHostRefusal(context, event) === undefined;
const emit = (make: (c: BlockHostContext, e: Ev) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: BlockHostContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});

export const blockHostMachine = setup({}).createMachine({
  id: 'block_host',
  initial: 'tracking',
  context: { host: null, capacity: null } as BlockHostContext,
  states: {
    tracking: {
      on: {
        RegisterBlockHost: emit((c, e) => (same(c.host, record(e)) ? [] : [{ type: 'BlockHostRegistered', ...record(e) }])),
        BlockHostRegistered: {
          actions: assign(({ event }: { event: Ev }) => ({ host: record(event) })),
        },
        // Every report is an event, unchanged figures too: it is the host's heartbeat (the API gives
        // no new volumes to a host silent for a minute, as Cinder's service_down_time).
        ReportBlockCapacity: emit((_c, e) => [{ type: 'BlockCapacityReported', hostId: e.hostId, totalGb: e.totalGb, freeGb: e.freeGb }]),
        BlockCapacityReported: { actions: assign(({ event }: { event: Ev }) => ({ capacity: { totalGb: event.totalGb as number, freeGb: event.freeGb as number } })) },
        RemoveBlockHost: emit((_c, e) => [{ type: 'BlockHostRemoved', hostId: e.meta!.aggregateId }]),
        BlockHostRemoved: { actions: assign(() => ({ host: null, capacity: null })) },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const BLOCK_HOST_COMMANDS = ['RegisterBlockHost', 'ReportBlockCapacity', 'RemoveBlockHost'] as const;
export const BLOCK_HOST_EVENTS = ['BlockHostRegistered', 'BlockCapacityReported', 'BlockHostRemoved'] as const;
