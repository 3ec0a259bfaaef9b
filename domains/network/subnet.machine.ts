// A subnet: created with Neutron's defaults filled in (gateway, allocation pools), updated, deleted
// once no port holds one of its addresses (SubnetInUse). It is also its own IPAM: AllocateIp and
// ReleaseIp are commands to it, so it is the single writer of its allocations and no address is
// ever handed out twice, however many ports are created at once (subnet.ipam.ts decides which).
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import type { Subnet } from './network.types.js';
import { fieldProblem } from './network.validation.js';
import { allocate, releasable, resolveSubnet, type Allocations } from './subnet.ipam.js';

export interface SubnetContext {
  subnet: Subnet | null;
  allocations: Allocations;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

/** Why this command may not run on this subnet (undefined: it may). */
export function subnetRefusal(context: SubnetContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'DeleteSubnet') {
    // Neutron's SubnetInUse, whether the holder is a VM's port or a router interface.
    if (Object.keys(context.allocations).length > 0) return { code: 'FAILED_PRECONDITION', state: 'in use', message: `Unable to complete operation on subnet ${id}: One or more ports have an IP allocation from this subnet.` };
  }
  if (event.type === 'AllocateIp') {
    const out = allocate(id, context.subnet!, context.allocations, event.portId, event.ipAddress ?? '', event.deviceOwner ?? '');
    if ('code' in out) return { code: out.code, message: out.message, ...(out.field ? { field: out.field } : {}) };
  }
  return undefined;
}

const allowed = ({ context, event }: { context: SubnetContext; event: Ev }) => subnetRefusal(context, event) === undefined;
const emit = (make: (c: SubnetContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: SubnetContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });

export const subnetMachine = setup({}).createMachine({
  id: 'subnet',
  initial: 'absent',
  context: { subnet: null, allocations: {} } as SubnetContext,
  states: {
    absent: {
      on: {
        CreateSubnet: { guard: allowed, actions: emit((_c, e) => [{ type: 'SubnetCreated', subnet: resolveSubnet(e.subnet, Boolean(e.noGateway)) }]) },
        SubnetCreated: { target: 'active', actions: assign(({ event }: { event: Ev }) => ({ subnet: event.subnet })) },
      },
    },
    active: {
      on: {
        UpdateSubnet: { guard: allowed, actions: emit((c, e) => [{ type: 'SubnetUpdated', subnet: applyMask(c.subnet as never, e.subnet, e.updateMask) }]) },
        SubnetUpdated: { actions: assign(({ event }: { event: Ev }) => ({ subnet: event.subnet })) },
        DeleteSubnet: { guard: allowed, actions: emit((c) => [{ type: 'SubnetDeleted', subnet: c.subnet }]) },
        SubnetDeleted: { target: 'deleted' },
        AllocateIp: {
          guard: allowed,
          actions: emit((c, e) => {
            const out = allocate(e.meta!.aggregateId, c.subnet!, c.allocations, e.portId, e.ipAddress ?? '', e.deviceOwner ?? '');
            // A retried request for an address the port holds already: nothing new.
            return 'ipAddress' in out ? [{ type: 'IpAllocated', portId: e.portId, ipAddress: out.ipAddress }] : [];
          }),
        },
        IpAllocated: { actions: assign(({ context, event }: { context: SubnetContext; event: Ev }) => ({ allocations: { ...context.allocations, [event.ipAddress]: event.portId } })) },
        ReleaseIp: {
          guard: allowed,
          actions: emit((c, e) => releasable(c.allocations, e.portId, e.ipAddress ?? '').map((ipAddress) => ({ type: 'IpReleased', portId: e.portId, ipAddress }))),
        },
        IpReleased: {
          actions: assign(({ context, event }: { context: SubnetContext; event: Ev }) => {
            const { [event.ipAddress]: _gone, ...allocations } = context.allocations;
            return { allocations };
          }),
        },
      },
    },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const SUBNET_COMMANDS = ['CreateSubnet', 'UpdateSubnet', 'DeleteSubnet', 'AllocateIp', 'ReleaseIp'] as const;
export const SUBNET_EVENTS = ['SubnetCreated', 'SubnetUpdated', 'SubnetDeleted', 'IpAllocated', 'IpReleased'] as const;
