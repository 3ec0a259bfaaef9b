// The user: the plain resource lifecycle (enabled, disabled, deleted) plus password changes and
// the lockout count. The lockout policy (attempts, duration) travels in the command, so the
// decider stays pure and operators configure it at the API.
import { assign, enqueueActions } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import { resourceMachine, type ResourceContext, type ResourceMachineSpec } from '../kernel/resource.machine.js';

type Ev = Message & Record<string, unknown> & { meta: CommandContext };

export interface UserContext extends ResourceContext {
  passwordHash: string;
  failedAttempts: number;
  lockedUntilMs: number;
}

export const userSpec: ResourceMachineSpec = {
  noun: 'User',
  field: 'user',
  toggles: true,
  context: { passwordHash: '', failedAttempts: 0, lockedUntilMs: 0 },
  onCreated: (event) => ({ passwordHash: event.passwordHash, failedAttempts: 0, lockedUntilMs: 0 }),
  live: {
    ChangeUserPassword: {
      actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) =>
        enqueue.emit({ type: 'UserPasswordChanged', passwordHash: event.passwordHash }),
      ),
    },
    UserPasswordChanged: {
      actions: assign(({ event }: { event: Ev }) => ({ passwordHash: event.passwordHash as string, failedAttempts: 0, lockedUntilMs: 0 })),
    },
  },
  // A disabled user cannot authenticate, so neither failures nor successes are recorded then.
  enabledOnly: {
    RecordAuthenticationFailure: {
      actions: enqueueActions(({ context, event, enqueue }: { context: UserContext; event: Ev; enqueue: any }) => {
        // A lock that has run out starts a fresh count.
        const lockOver = context.lockedUntilMs > 0 && event.meta.issuedAtMs >= context.lockedUntilMs;
        const attempts = (lockOver ? 0 : context.failedAttempts) + 1;
        enqueue.emit({ type: 'UserAuthenticationFailed', attempts });
        const max = event.maxAttempts as number;
        if (max > 0 && attempts >= max) {
          enqueue.emit({ type: 'UserLockedOut', lockedUntilMs: event.meta.issuedAtMs + (event.lockoutDurationMs as number) });
        }
      }),
    },
    UserAuthenticationFailed: {
      actions: assign(({ context, event }: { context: UserContext; event: Ev }) => ({
        failedAttempts: event.attempts as number,
        lockedUntilMs: (event.attempts as number) === 1 ? 0 : context.lockedUntilMs,
      })),
    },
    UserLockedOut: {
      actions: assign(({ context, event }: { context: UserContext; event: Ev }) => ({
        lockedUntilMs: event.lockedUntilMs as number,
        resource: { ...context.resource, lockedUntilMs: event.lockedUntilMs },
      })),
    },
    RecordAuthenticationSuccess: {
      actions: enqueueActions(({ context, enqueue }: { context: UserContext; enqueue: any }) => {
        if (context.failedAttempts > 0 || context.lockedUntilMs > 0) enqueue.emit({ type: 'UserAuthenticationReset' });
      }),
    },
    UserAuthenticationReset: {
      actions: assign(({ context }: { context: UserContext }) => ({
        failedAttempts: 0,
        lockedUntilMs: 0,
        resource: { ...context.resource, lockedUntilMs: 0 },
      })),
    },
  },
};

export const userMachine = resourceMachine(userSpec);
export const userExtraCommands = ['ChangeUserPassword', 'RecordAuthenticationFailure', 'RecordAuthenticationSuccess'] as const;
export const userExtraEvents = ['UserPasswordChanged', 'UserAuthenticationFailed', 'UserLockedOut', 'UserAuthenticationReset'] as const;
