// The token lifecycle: issued, then expired or revoked. The aggregate id is the audit id; the
// token itself (a secret) never enters the log. Expiry is judged by the command's time.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { TokenRecord } from './identity.types.js';

type Ev = Message & { token?: TokenRecord; meta?: CommandContext };
interface Ctx {
  token: TokenRecord | null;
}

const unexpired = ({ context, event }: { context: Ctx; event: Ev }) => event.meta!.issuedAtMs < context.token!.expiresAtMs;

export const tokenMachine = setup({}).createMachine({
  id: 'token',
  initial: 'absent',
  context: { token: null } as Ctx,
  states: {
    absent: {
      on: {
        IssueToken: { actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'TokenIssued', token: event.token })) },
        TokenIssued: { target: 'issued', actions: assign(({ event }: { event: Ev }) => ({ token: event.token ?? null })) },
      },
    },
    issued: {
      on: {
        RevokeToken: {
          guard: unexpired,
          actions: enqueueActions(({ context, enqueue }: { context: Ctx; enqueue: any }) => enqueue.emit({ type: 'TokenRevoked', token: context.token })),
        },
        TokenRevoked: { target: 'revoked' },
        ExpireToken: {
          guard: (args: { context: Ctx; event: Ev }) => !unexpired(args),
          actions: enqueueActions(({ enqueue }: { enqueue: any }) => enqueue.emit({ type: 'TokenExpired' })),
        },
        TokenExpired: { target: 'expired' },
      },
    },
    revoked: {},
    expired: {},
  } as never,
}) as unknown as AnyStateMachine;

export const tokenCommands = ['IssueToken', 'RevokeToken', 'ExpireToken'] as const;
export const tokenEvents = ['TokenIssued', 'TokenRevoked', 'TokenExpired'] as const;
