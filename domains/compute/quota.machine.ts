// A project's compute quotas with Nova's names and defaults (shared/reference §3), and what its
// servers use. A boot reserves before it schedules and gives back on failure or delete; one
// writer per project, so concurrent boots cannot overrun a limit. -1 means unlimited.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';

export const QUOTA_DEFAULTS = {
  instances: 10,
  cores: 20,
  ram: 51200,
  metadata_items: 128,
  key_pairs: 100,
  server_groups: 10,
  server_group_members: 10,
} as const;
export type QuotaName = keyof typeof QUOTA_DEFAULTS;
/** The quotas a server's reservation counts. */
export const COUNTED = ['instances', 'cores', 'ram'] as const;

export interface QuotaContext {
  limits: Record<QuotaName, number>;
  used: Record<(typeof COUNTED)[number], number>;
  /** consumer (instance id) -> what it holds */
  reservations: Record<string, Record<(typeof COUNTED)[number], number>>;
}

type Ev = Message & Record<string, any>;

/** The first quota the request would exceed: name, asked, used, limit. */
export function exceeded(c: QuotaContext, usage: Record<string, number>): { name: string; asked: number; used: number; limit: number } | undefined {
  for (const name of COUNTED) {
    const limit = c.limits[name];
    const asked = usage[name] ?? 0;
    if (limit >= 0 && c.used[name] + asked > limit) return { name, asked, used: c.used[name], limit };
  }
  return undefined;
}

export const quotaMachine = setup({}).createMachine({
  id: 'quota',
  initial: 'tracking',
  context: { limits: { ...QUOTA_DEFAULTS }, used: { instances: 0, cores: 0, ram: 0 }, reservations: {} } as QuotaContext,
  states: {
    tracking: {
      on: {
        SetQuotaLimits: {
          actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'QuotaLimitsSet', limits: event.limits })),
        },
        QuotaLimitsSet: { actions: assign(({ context, event }: { context: QuotaContext; event: Ev }) => ({ limits: { ...context.limits, ...event.limits } })) },
        ReserveQuota: {
          guard: ({ context, event }: { context: QuotaContext; event: Ev }) => context.reservations[event.consumerId] !== undefined || !exceeded(context, event.usage),
          actions: enqueueActions(({ context, event, enqueue }: { context: QuotaContext; event: Ev; enqueue: any }) => {
            if (!context.reservations[event.consumerId]) enqueue.emit({ type: 'QuotaReserved', consumerId: event.consumerId, usage: event.usage });
          }),
        },
        QuotaReserved: {
          actions: assign(({ context, event }: { context: QuotaContext; event: Ev }) => {
            const usage = Object.fromEntries(COUNTED.map((n) => [n, Number(event.usage[n] ?? 0)])) as QuotaContext['used'];
            return {
              reservations: { ...context.reservations, [event.consumerId]: usage },
              used: Object.fromEntries(COUNTED.map((n) => [n, context.used[n] + usage[n]])) as QuotaContext['used'],
            };
          }),
        },
        ReleaseQuota: {
          actions: enqueueActions(({ context, event, enqueue }: { context: QuotaContext; event: Ev; enqueue: any }) => {
            if (context.reservations[event.consumerId]) enqueue.emit({ type: 'QuotaReleased', consumerId: event.consumerId });
          }),
        },
        QuotaReleased: {
          actions: assign(({ context, event }: { context: QuotaContext; event: Ev }) => {
            const held = context.reservations[event.consumerId];
            const { [event.consumerId]: _gone, ...reservations } = context.reservations;
            return { reservations, used: Object.fromEntries(COUNTED.map((n) => [n, context.used[n] - held[n]])) as QuotaContext['used'] };
          }),
        },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const QUOTA_COMMANDS = ['SetQuotaLimits', 'ReserveQuota', 'ReleaseQuota'] as const;
export const QUOTA_EVENTS = ['QuotaLimitsSet', 'QuotaReserved', 'QuotaReleased'] as const;
