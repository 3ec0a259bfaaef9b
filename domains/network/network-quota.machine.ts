// A project's network quotas with Neutron's names and defaults (shared/reference §4.4), and what its
// resources use. A create reserves before it writes and gives back on failure or delete; one
// writer per project, so concurrent creates cannot overrun a limit. -1 means unlimited.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Message } from '../kernel/decider.js';

export const NETWORK_QUOTA_DEFAULTS = {
  network: 100,
  subnet: 100,
  port: 500,
  router: 10,
  floatingip: 50,
  security_group: 10,
  security_group_rule: 100,
} as const;
export type NetworkQuotaName = keyof typeof NETWORK_QUOTA_DEFAULTS;
const NAMES = Object.keys(NETWORK_QUOTA_DEFAULTS) as NetworkQuotaName[];
type Counts = Record<NetworkQuotaName, number>;

export interface NetworkQuotaContext {
  limits: Counts;
  used: Counts;
  /** consumer (a network, port, group, ... id) -> what it holds */
  reservations: Record<string, Partial<Counts>>;
}

type Ev = Message & Record<string, any>;

const zero = (): Counts => Object.fromEntries(NAMES.map((n) => [n, 0])) as Counts;

/** The first quota the request would exceed: name, asked, used, limit. */
export function exceededNetworkQuota(c: NetworkQuotaContext, usage: Record<string, number>): { name: string; asked: number; used: number; limit: number } | undefined {
  for (const name of NAMES) {
    const limit = c.limits[name];
    const asked = usage[name] ?? 0;
    if (asked > 0 && limit >= 0 && c.used[name] + asked > limit) return { name, asked, used: c.used[name], limit };
  }
  return undefined;
}

export const networkQuotaMachine = setup({}).createMachine({
  id: 'network_quota',
  initial: 'tracking',
  context: { limits: { ...NETWORK_QUOTA_DEFAULTS }, used: zero(), reservations: {} } as NetworkQuotaContext,
  states: {
    tracking: {
      on: {
        SetNetworkQuotaLimits: {
          actions: enqueueActions(({ event, enqueue }: { event: Ev; enqueue: any }) => enqueue.emit({ type: 'NetworkQuotaLimitsSet', limits: event.limits })),
        },
        NetworkQuotaLimitsSet: { actions: assign(({ context, event }: { context: NetworkQuotaContext; event: Ev }) => ({ limits: { ...context.limits, ...event.limits } })) },
        ReserveNetworkQuota: {
          guard: ({ context, event }: { context: NetworkQuotaContext; event: Ev }) => context.reservations[event.consumerId] !== undefined || !exceededNetworkQuota(context, event.usage),
          actions: enqueueActions(({ context, event, enqueue }: { context: NetworkQuotaContext; event: Ev; enqueue: any }) => {
            // A retried reservation: the consumer holds it already.
            if (!context.reservations[event.consumerId]) enqueue.emit({ type: 'NetworkQuotaReserved', consumerId: event.consumerId, usage: event.usage });
          }),
        },
        NetworkQuotaReserved: {
          actions: assign(({ context, event }: { context: NetworkQuotaContext; event: Ev }) => {
            const usage = Object.fromEntries(Object.entries(event.usage as Record<string, number>).filter(([, n]) => n > 0)) as Partial<Counts>;
            return {
              reservations: { ...context.reservations, [event.consumerId]: usage },
              used: Object.fromEntries(NAMES.map((n) => [n, context.used[n] + (usage[n] ?? 0)])) as Counts,
            };
          }),
        },
        ReleaseNetworkQuota: {
          actions: enqueueActions(({ context, event, enqueue }: { context: NetworkQuotaContext; event: Ev; enqueue: any }) => {
            if (context.reservations[event.consumerId]) enqueue.emit({ type: 'NetworkQuotaReleased', consumerId: event.consumerId });
          }),
        },
        NetworkQuotaReleased: {
          actions: assign(({ context, event }: { context: NetworkQuotaContext; event: Ev }) => {
            const held = context.reservations[event.consumerId] ?? {};
            const { [event.consumerId]: _gone, ...reservations } = context.reservations;
            return { reservations, used: Object.fromEntries(NAMES.map((n) => [n, context.used[n] - (held[n] ?? 0)])) as Counts };
          }),
        },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const NETWORK_QUOTA_COMMANDS = ['SetNetworkQuotaLimits', 'ReserveNetworkQuota', 'ReleaseNetworkQuota'] as const;
export const NETWORK_QUOTA_EVENTS = ['NetworkQuotaLimitsSet', 'NetworkQuotaReserved', 'NetworkQuotaReleased'] as const;
