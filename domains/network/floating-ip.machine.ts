// A floating IP with Neutron's statuses: DOWN when created and whenever its association changes,
// ACTIVE once the L3 agent reports its NAT set up (ReportFloatingIpStatus), ERROR when the agent
// could not; deleted from any of them. The status is the machine's state. Its address was taken
// before creation by a port on the external network (the subnet's IPAM), which the API's saga
// makes and deletes; the association (port, fixed IP, router) is resolved by the API from the
// read models and recorded here.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { FLOATING_IP_STATUSES, type FloatingIp, type FloatingIpStatus } from './network.types.js';
import { fieldProblem } from './network.validation.js';

export interface FloatingIpContext {
  floatingIp: FloatingIp | null;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

const association = (f: Pick<FloatingIp, 'portId' | 'fixedIpAddress' | 'routerId'>) => `${f.portId}/${f.fixedIpAddress}/${f.routerId}`;

/** Why this command may not run on this floating IP (undefined: it may). */
export function floatingIpRefusal(context: FloatingIpContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  const f = context.floatingIp;
  if (event.type === 'ReportFloatingIpStatus' && f) {
    if (event.status === 'ACTIVE' && !f.portId) return { code: 'FAILED_PRECONDITION', state: f.status, message: `floating IP ${id} is ${f.status} and not associated with a port` };
    if (event.portId && event.portId !== f.portId) {
      return { code: 'FAILED_PRECONDITION', state: f.status, message: `floating IP ${id} is associated with ${f.portId ? `port ${f.portId}` : 'no port'}, not ${event.portId}` };
    }
  }
  return undefined;
}

const allowed = ({ context, event }: { context: FloatingIpContext; event: Ev }) => floatingIpRefusal(context, event) === undefined;
const emit = (make: (c: FloatingIpContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: FloatingIpContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });
const moveTo = (c: FloatingIpContext, status: FloatingIpStatus) => (c.floatingIp!.status === status ? [] : [{ type: 'FloatingIpStatusChanged', status }]);

const live = {
  UpdateFloatingIp: {
    guard: allowed,
    actions: emit((c, e) => {
      const before = c.floatingIp!;
      const next = { ...before, portId: e.floatingIp.portId, fixedIpAddress: e.floatingIp.fixedIpAddress, routerId: e.floatingIp.routerId };
      if (association(next) === association(before)) return [];
      // A new association is not set up until the agent says so.
      return [{ type: 'FloatingIpUpdated', floatingIp: next }, ...moveTo(c, 'DOWN')];
    }),
  },
  FloatingIpUpdated: { actions: assign(({ context, event }: { context: FloatingIpContext; event: Ev }) => ({ floatingIp: { ...event.floatingIp, status: context.floatingIp!.status } })) },
  ReportFloatingIpStatus: { guard: allowed, actions: emit((c, e) => moveTo(c, e.status)) },
  DeleteFloatingIp: { guard: allowed, actions: emit((c) => [{ type: 'FloatingIpDeleted', floatingIp: c.floatingIp }]) },
  FloatingIpDeleted: { target: 'deleted' },
  FloatingIpStatusChanged: FLOATING_IP_STATUSES.map((status) => ({
    guard: ({ event }: { event: Ev }) => event.status === status,
    target: status,
    actions: assign(({ context }: { context: FloatingIpContext }) => ({ floatingIp: { ...context.floatingIp!, status } })),
  })),
};

export const floatingIpMachine = setup({}).createMachine({
  id: 'floating_ip',
  initial: 'absent',
  context: { floatingIp: null } as FloatingIpContext,
  states: {
    absent: {
      on: {
        CreateFloatingIp: { guard: allowed, actions: emit((_c, e) => [{ type: 'FloatingIpCreated', floatingIp: { ...e.floatingIp, status: 'DOWN' } }]) },
        FloatingIpCreated: { target: 'DOWN', actions: assign(({ event }: { event: Ev }) => ({ floatingIp: { ...event.floatingIp, status: 'DOWN' } })) },
      },
    },
    DOWN: { on: live },
    ACTIVE: { on: live },
    ERROR: { on: live },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const FLOATING_IP_COMMANDS = ['CreateFloatingIp', 'UpdateFloatingIp', 'ReportFloatingIpStatus', 'DeleteFloatingIp'] as const;
export const FLOATING_IP_EVENTS = ['FloatingIpCreated', 'FloatingIpUpdated', 'FloatingIpStatusChanged', 'FloatingIpDeleted'] as const;
