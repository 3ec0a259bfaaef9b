// A router: created without a gateway, then given one (SetRouterGateway, once the API has made
// its port on the external network), attached to subnets through interface ports, deleted once it
// has no interface (Neutron's RouterInUse). The router is the single writer of its interfaces, so
// two concurrent attachments of one subnet, or of overlapping subnets, cannot both succeed.
// Ports are made and deleted by the API's sagas; the router records which are its own.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { inCidr, parseCidr } from './ip.js';
import type { Router } from './network.types.js';
import { fieldProblem } from './network.validation.js';

export interface RouterInterfaceSubnet {
  subnetId: string;
  cidr: string;
}

export interface RouterInterface {
  portId: string;
  subnets: RouterInterfaceSubnet[];
}

export interface RouterContext {
  router: Router | null;
  interfaces: RouterInterface[];
  /** The gateway port; '' without a gateway. */
  gatewayPortId: string;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

/** Whether two CIDRs share an address (one contains the other's network address). */
export function cidrsOverlap(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  if (!x || !y || x.version !== y.version) return false;
  return inCidr(x, { version: y.version, value: y.network }) || inCidr(y, { version: x.version, value: x.network });
}

const badRouter = (field: string, message: string): Rejection => ({ code: 'INVALID_ARGUMENT', field, message: `Bad router request: ${message}` });

/** The interface RemoveRouterInterface names: by its port, else by its subnet. */
export function namedInterface(context: RouterContext, event: Ev): RouterInterface | undefined {
  if (event.portId) return context.interfaces.find((i) => i.portId === event.portId);
  return context.interfaces.find((i) => i.subnets.some((s) => s.subnetId === event.subnetId));
}

/** Why this command may not run on this router (undefined: it may). */
export function routerRefusal(context: RouterContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'DeleteRouter' && context.interfaces.length > 0) {
    return { code: 'FAILED_PRECONDITION', state: 'in use', message: `Router ${id} still has ports` };
  }
  if (event.type === 'AddRouterInterface') {
    // A retried attachment of the same port: nothing new.
    if (context.interfaces.some((i) => i.portId === event.portId)) return undefined;
    for (const s of event.subnets as RouterInterfaceSubnet[]) {
      for (const i of context.interfaces) {
        for (const t of i.subnets) {
          if (t.subnetId === s.subnetId) return badRouter('subnet_id', `Router already has a port on subnet ${s.subnetId}.`);
          if (cidrsOverlap(s.cidr, t.cidr)) {
            return badRouter('subnet_id', `Cidr ${s.cidr} of subnet ${s.subnetId} overlaps with cidr ${t.cidr} of subnet ${t.subnetId}.`);
          }
        }
      }
    }
  }
  if (event.type === 'RemoveRouterInterface' && !namedInterface(context, event)) {
    return event.portId
      ? { code: 'NOT_FOUND', field: 'port_id', message: `Router ${id} does not have an interface with id ${event.portId}` }
      : { code: 'NOT_FOUND', field: 'subnet_id', message: `Router ${id} has no interface on subnet ${event.subnetId}` };
  }
  return undefined;
}

const allowed = ({ context, event }: { context: RouterContext; event: Ev }) => routerRefusal(context, event) === undefined;
const emit = (make: (c: RouterContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: RouterContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });
const withRouter = assign(({ event }: { event: Ev }) => ({ router: event.router as Router }));

export const routerMachine = setup({}).createMachine({
  id: 'router',
  initial: 'absent',
  context: { router: null, interfaces: [], gatewayPortId: '' } as RouterContext,
  states: {
    absent: {
      on: {
        CreateRouter: { guard: allowed, actions: emit((_c, e) => [{ type: 'RouterCreated', router: { ...e.router, externalGatewayInfo: null } }]) },
        RouterCreated: { target: 'active', actions: assign(({ event }: { event: Ev }) => ({ router: event.router as Router, interfaces: [], gatewayPortId: '' })) },
      },
    },
    active: {
      on: {
        UpdateRouter: { guard: allowed, actions: emit((c, e) => [{ type: 'RouterUpdated', router: applyMask(c.router as never, e.router, e.updateMask) }]) },
        RouterUpdated: { actions: withRouter },
        SetRouterGateway: {
          guard: allowed,
          actions: emit((c, e) => {
            const router = { ...c.router!, externalGatewayInfo: e.externalGatewayInfo };
            // A retry (same port, same gateway): nothing new.
            if (e.portId === c.gatewayPortId && JSON.stringify(router) === JSON.stringify(c.router)) return [];
            return [{ type: 'RouterGatewaySet', router, portId: e.portId, replacedPortId: c.gatewayPortId === e.portId ? '' : c.gatewayPortId }];
          }),
        },
        RouterGatewaySet: { actions: assign(({ event }: { event: Ev }) => ({ router: event.router as Router, gatewayPortId: event.portId as string })) },
        ClearRouterGateway: {
          guard: allowed,
          actions: emit((c) => (c.gatewayPortId ? [{ type: 'RouterGatewayCleared', router: { ...c.router!, externalGatewayInfo: null }, portId: c.gatewayPortId }] : [])),
        },
        RouterGatewayCleared: { actions: assign(({ event }: { event: Ev }) => ({ router: event.router as Router, gatewayPortId: '' })) },
        AddRouterInterface: {
          guard: allowed,
          actions: emit((c, e) => (c.interfaces.some((i) => i.portId === e.portId) ? [] : [{ type: 'RouterInterfaceAdded', portId: e.portId, subnets: e.subnets }])),
        },
        RouterInterfaceAdded: {
          actions: assign(({ context, event }: { context: RouterContext; event: Ev }) => ({ interfaces: [...context.interfaces, { portId: event.portId, subnets: event.subnets }] })),
        },
        RemoveRouterInterface: {
          guard: allowed,
          actions: emit((c, e) => {
            const i = namedInterface(c, e)!;
            return [{ type: 'RouterInterfaceRemoved', portId: i.portId, subnets: i.subnets }];
          }),
        },
        RouterInterfaceRemoved: {
          actions: assign(({ context, event }: { context: RouterContext; event: Ev }) => ({ interfaces: context.interfaces.filter((i) => i.portId !== event.portId) })),
        },
        DeleteRouter: { guard: allowed, actions: emit((c) => [{ type: 'RouterDeleted', router: c.router, gatewayPortId: c.gatewayPortId }]) },
        RouterDeleted: { target: 'deleted' },
      },
    },
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const ROUTER_COMMANDS = ['CreateRouter', 'UpdateRouter', 'SetRouterGateway', 'ClearRouterGateway', 'AddRouterInterface', 'RemoveRouterInterface', 'DeleteRouter'] as const;
export const ROUTER_EVENTS = ['RouterCreated', 'RouterUpdated', 'RouterGatewaySet', 'RouterGatewayCleared', 'RouterInterfaceAdded', 'RouterInterfaceRemoved', 'RouterDeleted'] as const;
