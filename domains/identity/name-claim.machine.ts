// Names unique within a scope (a project name in its domain, a user name in its domain, a role
// name in the cloud): one aggregate per name, id "<kind>/<scope>/<lowercased name>". The API
// claims the name before it creates the resource and releases it after a delete or rename.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';

type Ev = Message & { ownerId: string };
interface Ctx {
  ownerId: string;
}

// xstate's can() counts a transition without target or actions as refused: a no-op needs an action.
const noChange = () => undefined;

const claim = {
  actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'NameClaimed', ownerId: event.ownerId })),
};

export const nameClaimMachine = setup({}).createMachine({
  id: 'nameClaim',
  initial: 'free',
  context: { ownerId: '' } as Ctx,
  states: {
    free: {
      on: {
        ClaimName: claim,
        NameClaimed: { target: 'claimed', actions: assign(({ event }: { event: Ev }) => ({ ownerId: event.ownerId })) },
        // Releasing a free name changes nothing: a retried release must not fail.
        ReleaseName: { actions: noChange },
      },
    },
    claimed: {
      on: {
        // Claimed again by its holder: a retry, no change. Another holder is refused (explained by the decider).
        ClaimName: { guard: ({ context, event }: { context: Ctx; event: Ev }) => context.ownerId === event.ownerId, actions: noChange },
        ReleaseName: [
          {
            guard: ({ context, event }: { context: Ctx; event: Ev }) => context.ownerId === event.ownerId,
            actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'NameReleased', ownerId: event.ownerId })),
          },
          { actions: noChange },
        ],
        NameReleased: { target: 'free', actions: assign({ ownerId: '' }) },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const nameClaimCommands = ['ClaimName', 'ReleaseName'] as const;
export const nameClaimEvents = ['NameClaimed', 'NameReleased'] as const;
