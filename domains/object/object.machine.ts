// An object's recorded version: absent <-> stored. Swift's consistency model restated on the log:
// the newest timestamp wins, a delete is a tombstone (its timestamp kept, so an older write that
// arrives late cannot bring the object back), and If-None-Match: * is exact here because one
// writer decides each object.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { RefusalInput } from '../kernel/aggregate.js';
import { failedPrecondition, invalidArgument, type Rejection } from '../kernel/rejection.js';
import { objectId, type ObjectVersion } from './object.types.js';
import { fieldProblem } from './object.validation.js';

export interface ObjectContext {
  object: ObjectVersion | null;
  /** The newest timestamp the log holds for this name (a version's or a tombstone's). */
  newest: string;
}

export const OBJECT_COMMANDS = ['RecordObject', 'UpdateObjectMetadata', 'RecordObjectDeleted', 'ReportReplicaQuarantined'] as const;
export const OBJECT_EVENTS = ['ObjectRecorded', 'ObjectMetadataUpdated', 'ObjectDeleted', 'ReplicaQuarantined'] as const;

const timestampOfCommand = (e: RefusalInput): string | undefined => (e.type === 'RecordObject' ? e.object?.timestamp : e.type === 'ReportReplicaQuarantined' ? undefined : e.timestamp);

/** Why this command may not run on this object (undefined: it may). */
export function objectRefusal(state: string, context: ObjectContext, event: RefusalInput): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'RecordObject' && event.meta) {
    const own = objectId(event.object.account, event.object.container, event.object.name);
    if (own !== id) return invalidArgument('object.name', `"${own}" is not the object's id "${id}"`);
  }
  if (event.type === 'RecordObject' && event.ifNoneMatch && state === 'stored') {
    return failedPrecondition(state, `object ${id} exists (If-None-Match: *), recorded at ${context.object!.timestamp}`);
  }
  const ts = timestampOfCommand(event);
  if (ts !== undefined && context.newest && ts <= context.newest && (state === 'stored' || event.type === 'RecordObject')) {
    return failedPrecondition(state, `${event.type} at ${ts} is older than object ${id}'s newest record (${context.newest})`);
  }
  return undefined;
}

const allowedIn =
  (state: string) =>
  ({ context, event }: { context: ObjectContext; event: RefusalInput }) =>
    objectRefusal(state, context, event) === undefined;
const command = (state: string, make: (c: ObjectContext, e: RefusalInput) => Record<string, unknown>[]) => ({
  guard: allowedIn(state),
  actions: enqueueActions(({ context, event, enqueue }: { context: ObjectContext; event: RefusalInput; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});

const record = (c: ObjectContext, e: RefusalInput) => [
  { type: 'ObjectRecorded', object: e.object, replaced: c.object !== null, replacedSize: c.object?.size ?? 0 },
];
const recorded = assign(({ event }: { event: RefusalInput }) => ({ object: event.object as ObjectVersion, newest: event.object.timestamp as string }));
const quarantine = (_c: ObjectContext, e: RefusalInput) => [{ type: 'ReplicaQuarantined', deviceId: e.deviceId, timestamp: e.timestamp, reason: e.reason }];

export const objectMachine = setup({}).createMachine({
  id: 'object',
  initial: 'absent',
  context: { object: null, newest: '' } as ObjectContext,
  states: {
    absent: {
      on: {
        RecordObject: command('absent', record),
        ObjectRecorded: { target: 'stored', actions: recorded },
        // An auditor may find a replica of a version deleted meanwhile: still worth recording.
        ReportReplicaQuarantined: command('absent', quarantine),
        ReplicaQuarantined: {},
      },
    },
    stored: {
      on: {
        RecordObject: command('stored', record),
        ObjectRecorded: { actions: recorded },
        UpdateObjectMetadata: command('stored', (c, e) => [
          { type: 'ObjectMetadataUpdated', object: { ...c.object, metadata: e.metadata ?? {}, contentType: e.contentType || c.object!.contentType } },
        ]),
        ObjectMetadataUpdated: { actions: assign(({ event }: { event: RefusalInput }) => ({ object: event.object as ObjectVersion })) },
        RecordObjectDeleted: command('stored', (c, e) => [{ type: 'ObjectDeleted', object: c.object, timestamp: e.timestamp }]),
        ObjectDeleted: { target: 'absent', actions: assign(({ event }: { event: RefusalInput }) => ({ object: null, newest: event.timestamp as string })) },
        ReportReplicaQuarantined: command('stored', quarantine),
        ReplicaQuarantined: {},
      },
    },
  } as never,
}) as unknown as AnyStateMachine;
