// A container's lifecycle: absent -> active -> absent again on delete (Swift lets a deleted
// container's name be created again). Whether it is empty is the API's check against the
// listing, as in Swift (eventually consistent: a container delete can race an object PUT).
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { RefusalInput } from '../kernel/aggregate.js';
import { invalidArgument, type Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { containerId, type Container } from './object.types.js';
import { fieldProblem } from './object.validation.js';

export interface ContainerContext {
  container: Container | null;
}

export const CONTAINER_COMMANDS = ['CreateContainer', 'UpdateContainer', 'DeleteContainer'] as const;
export const CONTAINER_EVENTS = ['ContainerCreated', 'ContainerUpdated', 'ContainerDeleted'] as const;

/** Why this command may not run on this container (undefined: it may). Absent/exists are the kernel's NOT_FOUND / ALREADY_EXISTS. */
export function containerRefusal(context: ContainerContext, event: RefusalInput): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  if (event.type === 'CreateContainer' && event.meta) {
    const id = containerId(event.container.account, event.container.name);
    if (id !== event.meta.aggregateId) return invalidArgument('container.name', `"${id}" is not the container's id "${event.meta.aggregateId}"`);
  }
  return undefined;
}

const allowed = ({ context, event }: { context: ContainerContext; event: RefusalInput }) => containerRefusal(context, event) === undefined;
const command = (make: (c: ContainerContext, e: RefusalInput) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: ContainerContext; event: RefusalInput; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});

export const containerMachine = setup({}).createMachine({
  id: 'container',
  initial: 'absent',
  context: { container: null } as ContainerContext,
  states: {
    absent: {
      on: {
        CreateContainer: command((_c, e) => [{ type: 'ContainerCreated', container: { ...e.container, createdAtMs: e.meta!.issuedAtMs } }]),
        ContainerCreated: { target: 'active', actions: assign(({ event }: { event: RefusalInput }) => ({ container: event.container as Container })) },
      },
    },
    active: {
      on: {
        UpdateContainer: command((c, e) => [{ type: 'ContainerUpdated', container: applyMask(c.container as never, e.container, e.updateMask ?? []) }]),
        ContainerUpdated: { actions: assign(({ event }: { event: RefusalInput }) => ({ container: event.container as Container })) },
        DeleteContainer: command((c) => [{ type: 'ContainerDeleted', container: c.container }]),
        ContainerDeleted: { target: 'absent', actions: assign({ container: null }) },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;
