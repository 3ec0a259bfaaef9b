// The port lifecycle with Neutron's statuses: DOWN when created (unbound), BUILD once bound to a
// host (binding:host_id) and admin up, ACTIVE when that host's agent reports it wired, DOWN again
// on unbind, admin down or the agent's report that the device is gone; deleted from any of them.
// The status is the machine's state; PortStatusChanged moves it. Its MAC address and fixed IPs were
// claimed before creation (the network's MAC registry, the subnets' IPAM): the port records them.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { FLOATING_IP_OWNER, ROUTER_GATEWAY_OWNER, ROUTER_INTERFACE_OWNER, type Port } from './network.types.js';
import { fieldProblem } from './network.validation.js';

export const PORT_STATUSES = ['DOWN', 'BUILD', 'ACTIVE'] as const;
export type PortStatus = (typeof PORT_STATUSES)[number];

export interface PortContext {
  port: Port | null;
  status: PortStatus;
  /** binding:host_id; '' when unbound. */
  hostId: string;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

/** The device owners whose ports only their router or floating IP deletes. */
const L3_OWNERS = [ROUTER_INTERFACE_OWNER, ROUTER_GATEWAY_OWNER, FLOATING_IP_OWNER];

/** The status a bound (or not) port with this admin state should have before its agent reports. */
const settled = (hostId: string, adminUp: boolean): PortStatus => (hostId && adminUp ? 'BUILD' : 'DOWN');

/** Why this command may not run on this port (undefined: it may). */
export function portRefusal(context: PortContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  const status = context.status;
  // Neutron's prevent_l3_port_deletion: a router's or floating IP's port goes with its owner.
  if (event.type === 'DeletePort' && !event.byOwner && L3_OWNERS.includes(context.port!.deviceOwner)) {
    return { code: 'FAILED_PRECONDITION', state: 'in use', message: `Port ${id} cannot be deleted directly via the port API: has device owner ${context.port!.deviceOwner}.` };
  }
  if (event.type === 'UnbindPort' && !context.hostId) return { code: 'FAILED_PRECONDITION', state: status, message: `port ${id} is ${status} and not bound to a host` };
  if (event.type === 'ReportPortUp' || event.type === 'ReportPortDown') {
    if (!context.hostId) return { code: 'FAILED_PRECONDITION', state: status, message: `port ${id} is ${status} and not bound to a host` };
    if (event.hostId !== context.hostId) return { code: 'FAILED_PRECONDITION', state: status, message: `port ${id} is bound to host ${context.hostId}, not ${event.hostId}` };
    if (event.type === 'ReportPortUp' && !context.port!.adminStateUp) return { code: 'FAILED_PRECONDITION', state: status, message: `port ${id} is ${status}: admin_state_up is false` };
  }
  return undefined;
}

const allowed = ({ context, event }: { context: PortContext; event: Ev }) => portRefusal(context, event) === undefined;
const emit = (make: (c: PortContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: PortContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });
const moveTo = (c: PortContext, status: PortStatus) => (c.status === status ? [] : [{ type: 'PortStatusChanged', status }]);

const live = {
  UpdatePort: {
    guard: allowed,
    actions: emit((c, e) => {
      const port = applyMask(c.port as never, e.port, e.updateMask) as unknown as Port;
      // Admin down takes a port DOWN at once; admin up puts a bound port back to BUILD for its agent.
      const status = c.status === 'ACTIVE' && port.adminStateUp ? 'ACTIVE' : settled(c.hostId, port.adminStateUp);
      return [{ type: 'PortUpdated', port }, ...moveTo(c, status)];
    }),
  },
  PortUpdated: { actions: assign(({ event }: { event: Ev }) => ({ port: event.port })) },
  DeletePort: { guard: allowed, actions: emit((c) => [{ type: 'PortDeleted', port: c.port }]) },
  PortDeleted: { target: 'deleted' },
  BindPort: {
    guard: allowed,
    // Another host is a new binding: the new host's agent has to wire it (Neutron unbinds, then binds).
    actions: emit((c, e) => (e.hostId === c.hostId ? [] : [{ type: 'PortBound', hostId: e.hostId }, ...moveTo(c, settled(e.hostId, c.port!.adminStateUp))])),
  },
  PortBound: { actions: assign(({ event }: { event: Ev }) => ({ hostId: event.hostId })) },
  UnbindPort: { guard: allowed, actions: emit((c) => [{ type: 'PortUnbound', hostId: c.hostId }, ...moveTo(c, 'DOWN')]) },
  PortUnbound: { actions: assign({ hostId: '' }) },
  ReportPortUp: { guard: allowed, actions: emit((c) => moveTo(c, 'ACTIVE')) },
  ReportPortDown: { guard: allowed, actions: emit((c) => (c.status === 'ACTIVE' ? moveTo(c, 'DOWN') : [])) },
  PortStatusChanged: PORT_STATUSES.map((status) => ({
    guard: ({ event }: { event: Ev }) => event.status === status,
    target: status,
    actions: assign({ status }),
  })),
};

export const portMachine = setup({}).createMachine({
  id: 'port',
  initial: 'absent',
  context: { port: null, status: 'DOWN', hostId: '' } as PortContext,
  states: {
    absent: {
      on: {
        CreatePort: { guard: allowed, actions: emit((_c, e) => [{ type: 'PortCreated', port: e.port }]) },
        PortCreated: { target: 'DOWN', actions: assign(({ event }: { event: Ev }) => ({ port: event.port, status: 'DOWN' as PortStatus, hostId: '' })) },
      },
    },
    DOWN: { on: live },
    BUILD: { on: live },
    ACTIVE: { on: live },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const PORT_COMMANDS = ['CreatePort', 'UpdatePort', 'DeletePort', 'BindPort', 'UnbindPort', 'ReportPortUp', 'ReportPortDown'] as const;
export const PORT_EVENTS = ['PortCreated', 'PortUpdated', 'PortDeleted', 'PortBound', 'PortUnbound', 'PortStatusChanged'] as const;
