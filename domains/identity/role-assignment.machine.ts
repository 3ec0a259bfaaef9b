// A role assignment: absent -> granted -> revoked -> granted ... Granting a role already held
// changes nothing (Keystone's PUT is idempotent); revoking one not held is NOT_FOUND.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';
import type { RoleAssignment } from './identity.types.js';

type Ev = Message & { assignment?: RoleAssignment };

const grant = {
  actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'RoleGranted', assignment: event.assignment })),
};
const granted = { target: 'granted', actions: assign(({ event }: { event: Ev }) => ({ assignment: event.assignment ?? null })) };

export const roleAssignmentMachine = setup({}).createMachine({
  id: 'roleAssignment',
  initial: 'absent',
  context: { assignment: null as RoleAssignment | null },
  states: {
    absent: { on: { GrantRole: grant, RoleGranted: granted } },
    granted: {
      on: {
        // Already granted: no change (xstate's can() needs an action to call it allowed).
        GrantRole: { actions: () => undefined },
        RevokeRole: {
          actions: enqueueActions(({ context, enqueue }: { context: { assignment: RoleAssignment | null }; enqueue: any }) =>
            enqueue.emit({ type: 'RoleRevoked', assignment: context.assignment }),
          ),
        },
        RoleRevoked: { target: 'revoked' },
      },
    },
    revoked: { on: { GrantRole: grant, RoleGranted: granted } },
  } as never,
}) as unknown as AnyStateMachine;

export const roleAssignmentCommands = ['GrantRole', 'RevokeRole'] as const;
export const roleAssignmentEvents = ['RoleGranted', 'RoleRevoked'] as const;
