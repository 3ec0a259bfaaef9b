// A network: ACTIVE (admin_state_up) or DOWN, then deleted. Provider attributes, shared and
// router:external are the admins' (Neutron's default policy); the tenant segment a non-admin's
// network gets is allocated by the segment pool first and comes with segmentAllocated set. The
// network is also the registry of its ports' MAC addresses: one writer per network, so two ports
// can never share a MAC on it, and a network with ports cannot be deleted (NetworkInUse).
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { defaultMtu, type Network } from './network.types.js';
import { ADMIN_FLAGS, fieldProblem, PROVIDER_FIELDS } from './network.validation.js';

export interface NetworkContext {
  network: Network | null;
  /** MAC address -> the port holding it. */
  macs: Record<string, string>;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

export const isAdmin = (e: Ev) => Boolean(e.meta?.actor.roles.includes('admin'));

const denied = (field: string, id: string): Rejection => ({
  code: 'PERMISSION_DENIED',
  field,
  message: `${field}: only an admin may set ${field} on network ${id}`,
});

/** Why this command may not run on this network (undefined: it may). */
export function networkRefusal(context: NetworkContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'CreateNetwork') {
    const n = event.network as Network;
    if (!isAdmin(event)) {
      if (!event.segmentAllocated) {
        for (const [f, name] of Object.entries(PROVIDER_FIELDS)) if ((n as never)[f]) return denied(name, id);
      }
      for (const [f, name] of Object.entries(ADMIN_FLAGS)) if ((n as never)[f]) return denied(name, id);
    }
  }
  if (event.type === 'UpdateNetwork' && !isAdmin(event)) {
    for (const [f, name] of Object.entries(ADMIN_FLAGS)) {
      if ((event.updateMask as string[]).includes(f) && event.network[f] !== (context.network as never as Record<string, unknown>)[f]) return denied(name, id);
    }
  }
  if (event.type === 'DeleteNetwork' && Object.keys(context.macs).length > 0) {
    const n = Object.keys(context.macs).length;
    return { code: 'FAILED_PRECONDITION', state: 'in use', message: `Unable to complete operation on network ${id}. There are ${n} port(s) still in use on the network.` };
  }
  if (event.type === 'AddNetworkPort') {
    const holder = context.macs[event.macAddress];
    if (holder !== undefined && holder !== event.portId) {
      return { code: 'ALREADY_EXISTS', field: 'mac_address', message: `Unable to complete operation for network ${id}. The mac address ${event.macAddress} is in use.` };
    }
  }
  return undefined;
}

const allowed = ({ context, event }: { context: NetworkContext; event: Ev }) => networkRefusal(context, event) === undefined;
const emit = (make: (c: NetworkContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: NetworkContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });
const byAdminState = (assignment: (c: NetworkContext, e: Ev) => Partial<NetworkContext>) => [
  { guard: ({ event }: { event: Ev }) => event.network.adminStateUp, target: 'ACTIVE', actions: assign(({ context, event }: { context: NetworkContext; event: Ev }) => assignment(context, event)) },
  { target: 'DOWN', actions: assign(({ context, event }: { context: NetworkContext; event: Ev }) => assignment(context, event)) },
];

const live = {
  UpdateNetwork: {
    guard: allowed,
    actions: emit((c, e) => {
      const network = applyMask(c.network as never, e.network, e.updateMask) as unknown as Network;
      if (network.mtu === 0) network.mtu = defaultMtu(network.networkType);
      return [{ type: 'NetworkUpdated', network }];
    }),
  },
  NetworkUpdated: byAdminState((_c, e) => ({ network: e.network })),
  DeleteNetwork: { guard: allowed, actions: emit((c) => [{ type: 'NetworkDeleted', network: c.network }]) },
  NetworkDeleted: { target: 'deleted' },
  AddNetworkPort: {
    guard: allowed,
    actions: emit((c, e) => (c.macs[e.macAddress] === e.portId ? [] : [{ type: 'NetworkPortAdded', portId: e.portId, macAddress: e.macAddress }])),
  },
  NetworkPortAdded: { actions: assign(({ context, event }: { context: NetworkContext; event: Ev }) => ({ macs: { ...context.macs, [event.macAddress]: event.portId } })) },
  RemoveNetworkPort: {
    guard: allowed,
    actions: emit((c, e) => (c.macs[e.macAddress] === e.portId ? [{ type: 'NetworkPortRemoved', portId: e.portId, macAddress: e.macAddress }] : [])),
  },
  NetworkPortRemoved: {
    actions: assign(({ context, event }: { context: NetworkContext; event: Ev }) => {
      const { [event.macAddress]: _gone, ...macs } = context.macs;
      return { macs };
    }),
  },
};

export const networkMachine = setup({}).createMachine({
  id: 'network',
  initial: 'absent',
  context: { network: null, macs: {} } as NetworkContext,
  states: {
    absent: {
      on: {
        CreateNetwork: {
          guard: allowed,
          actions: emit((_c, e) => [{ type: 'NetworkCreated', network: { ...e.network, mtu: e.network.mtu || defaultMtu(e.network.networkType) } }]),
        },
        NetworkCreated: byAdminState((_c, e) => ({ network: e.network })),
      },
    },
    ACTIVE: { on: live },
    DOWN: { on: live },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const NETWORK_COMMANDS = ['CreateNetwork', 'UpdateNetwork', 'DeleteNetwork', 'AddNetworkPort', 'RemoveNetworkPort'] as const;
export const NETWORK_EVENTS = ['NetworkCreated', 'NetworkUpdated', 'NetworkDeleted', 'NetworkPortAdded', 'NetworkPortRemoved'] as const;
