// The snapshot lifecycle with Cinder's statuses: creating until the volume's storage host reports
// it made (error if it fails), available, deleting -> deleted (error_deleting if it fails). The
// status is the machine's state; SnapshotStatusChanged moves it. SNAPSHOT_RULES says which command
// runs in which status; snapshotRefusal states the other rules for the guard and the explanation.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import { failedPrecondition, invalidArgument, type Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { SNAPSHOT_STATUSES, type Snapshot, type SnapshotStatus } from './block.types.js';
import { clipReason, fieldProblem } from './block.validation.js';
import { commandsAllowed, liveStates, statusRefusal, statusTransitions, type Ev, type StatusRules } from './status-rules.js';

export interface SnapshotContext {
  snapshot: Snapshot | null;
  status: SnapshotStatus;
  /** The storage host holding it (its volume's). */
  hostId: string;
}

const LIVE = SNAPSHOT_STATUSES;

export const SNAPSHOT_RULES: StatusRules<SnapshotStatus> = {
  statuses: LIVE,
  allowed: {
    ReportSnapshotCreated: ['creating'],
    ReportSnapshotFailed: ['creating', 'deleting'],
    // Cinder does not check a snapshot's status on update; a snapshot being deleted is left alone here.
    UpdateSnapshot: LIVE.filter((s) => s !== 'deleting'),
    DeleteSnapshot: ['available', 'error'],
    ReportSnapshotDeleted: ['deleting'],
    ResetSnapshotStatus: LIVE,
  },
  // An admin's force delete skips the status check (Cinder: any status).
  forced: { DeleteSnapshot: LIVE },
};

/** The commands a user may send a snapshot in this status (force: an admin's forced ones too). */
export const snapshotCommandsAllowed = (status: SnapshotStatus, options: { force?: boolean } = {}): string[] => commandsAllowed(SNAPSHOT_RULES, status, options);

const FAILED: Partial<Record<SnapshotStatus, SnapshotStatus>> = { creating: 'error', deleting: 'error_deleting' };
const HOST_REPORTS = new Set(['ReportSnapshotCreated', 'ReportSnapshotFailed', 'ReportSnapshotDeleted']);

/** Why this command may not run on this snapshot (undefined: it may). */
export function snapshotRefusal(context: SnapshotContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'CreateSnapshot') {
    if (event.meta && event.snapshot.id !== id) return invalidArgument('snapshot.id', `"${event.snapshot.id}" is not the snapshot's id "${id}"`);
    return undefined;
  }
  const byStatus = statusRefusal(SNAPSHOT_RULES, 'snapshot', context.status, event);
  if (byStatus) return byStatus;
  if (HOST_REPORTS.has(event.type) && event.hostId !== context.hostId) {
    return failedPrecondition(context.status, `${event.type} is not allowed: snapshot ${id} is held by storage host ${context.hostId}, not ${event.hostId}`);
  }
  return undefined;
}

const allowed = ({ context, event }: { context: SnapshotContext; event: Ev }) => snapshotRefusal(context, event) === undefined;
const command = (make: (c: SnapshotContext, e: Ev) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: SnapshotContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});
const moveTo = (c: SnapshotContext, status: SnapshotStatus, reason = '') => (c.status === status ? [] : [{ type: 'SnapshotStatusChanged', status, reason }]);

const COMMANDS: Record<string, unknown> = {
  ReportSnapshotCreated: command((c) => moveTo(c, 'available')),
  ReportSnapshotFailed: command((c, e) => moveTo(c, FAILED[c.status]!, clipReason(e.reason))),
  UpdateSnapshot: command((c, e) => [{ type: 'SnapshotUpdated', snapshot: applyMask(c.snapshot as never, e.snapshot, e.updateMask) }]),
  DeleteSnapshot: command((c, e) => [{ type: 'SnapshotDeleting', force: Boolean(e.force) }, ...moveTo(c, 'deleting')]),
  ReportSnapshotDeleted: command((c) => [{ type: 'SnapshotDeleted', snapshot: c.snapshot }]),
  ResetSnapshotStatus: command((c, e) => moveTo(c, e.status, clipReason(e.reason))),
};

const EVENTS: Record<string, unknown> = {
  SnapshotStatusChanged: statusTransitions(LIVE, (status) => assign({ status })),
  SnapshotUpdated: { actions: assign(({ event }: { event: Ev }) => ({ snapshot: event.snapshot as Snapshot })) },
  SnapshotDeleting: {},
  SnapshotDeleted: { target: 'deleted' },
};

export const snapshotMachine = setup({}).createMachine({
  id: 'snapshot',
  initial: 'absent',
  context: { snapshot: null, status: 'creating', hostId: '' } as SnapshotContext,
  states: {
    absent: {
      on: {
        CreateSnapshot: command((_c, e) => [{ type: 'SnapshotCreated', snapshot: { ...e.snapshot, createdAtMs: e.meta!.issuedAtMs }, hostId: e.hostId }]),
        SnapshotCreated: {
          target: 'creating',
          actions: assign(({ event }: { event: Ev }) => ({ snapshot: event.snapshot as Snapshot, status: 'creating' as SnapshotStatus, hostId: event.hostId as string })),
        },
      },
    },
    ...liveStates(SNAPSHOT_RULES, COMMANDS, EVENTS),
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const SNAPSHOT_COMMANDS = ['CreateSnapshot', ...Object.keys(SNAPSHOT_RULES.allowed)] as const;
export const SNAPSHOT_EVENTS = ['SnapshotCreated', 'SnapshotStatusChanged', 'SnapshotUpdated', 'SnapshotDeleting', 'SnapshotDeleted'] as const;
