// The router lifecycle: created without a gateway, given one and another, interfaces attached and
// detached with Neutron's refusals (a subnet twice, overlapping CIDRs, an interface it lacks),
// deleted only without interfaces (RouterInUse); and the port decider's refusal to delete a
// router's port behind its back.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given, testContext } from '../kernel/specification.js';
import { networkAggregate } from './network.deciders.js';

type M = Message & Record<string, any>;
const router = networkAggregate('router').decider;
const r = { id: 'r1', projectId: 'pr1', name: 'edge', adminStateUp: true, externalGatewayInfo: null };
const created: M = { type: 'RouterCreated', router: r };
const gateway = { networkId: 'ext', enableSnat: true, externalFixedIps: [{ subnetId: 'ext-s', ipAddress: '203.0.113.2' }] };
const s1 = { subnetId: 's1', cidr: '10.0.0.0/24' };
const s2 = { subnetId: 's2', cidr: '10.0.1.0/24' };

function run(start: M[], commands: M[]) {
  const events = [...start];
  const refusals: any[] = [];
  for (const c of commands) {
    const d = router.decide(fold(router, events), c, testContext({ aggregateId: 'r1', version: events.length }));
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(router, events), events: events.slice(start.length), refusals };
}

describe('router lifecycle', () => {
  it('is created without a gateway, renamed and switched off', () => {
    const { state, events, refusals } = run([], [
      { type: 'CreateRouter', router: r },
      { type: 'UpdateRouter', router: { name: 'core', adminStateUp: false }, updateMask: ['name', 'adminStateUp'] },
    ]);
    expect(refusals).toEqual([]);
    expect(events).toEqual([created, { type: 'RouterUpdated', router: { ...r, name: 'core', adminStateUp: false } }]);
    expect(state.value).toBe('active');
  });

  it('refuses a gateway on creation, an unchangeable field and a second creation', () => {
    expect(given(router, []).when({ type: 'CreateRouter', router: { ...r, externalGatewayInfo: gateway } } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'router.external_gateway_info' } });
    expect(given(router, [created]).when({ type: 'UpdateRouter', router: { projectId: 'x' }, updateMask: ['projectId'] } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'router.project_id' } });
    expect(given(router, [created]).when({ type: 'CreateRouter', router: r } as M)).toMatchObject({ rejection: { code: 'ALREADY_EXISTS' } });
    expect(given(router, []).when({ type: 'DeleteRouter' } as M, { aggregateId: 'r1' })).toMatchObject({ rejection: { code: 'NOT_FOUND' } });
  });

  it('sets, changes and clears its gateway, naming the port each replaced', () => {
    const { events, state } = run([created], [
      { type: 'SetRouterGateway', externalGatewayInfo: gateway, portId: 'gw1' },
      { type: 'SetRouterGateway', externalGatewayInfo: gateway, portId: 'gw1' },
      { type: 'SetRouterGateway', externalGatewayInfo: { ...gateway, enableSnat: false }, portId: 'gw1' },
      { type: 'SetRouterGateway', externalGatewayInfo: { ...gateway, networkId: 'ext2' }, portId: 'gw2' },
      { type: 'ClearRouterGateway' },
      { type: 'ClearRouterGateway' },
    ]);
    expect(events).toEqual([
      { type: 'RouterGatewaySet', router: { ...r, externalGatewayInfo: gateway }, portId: 'gw1', replacedPortId: '' },
      { type: 'RouterGatewaySet', router: { ...r, externalGatewayInfo: { ...gateway, enableSnat: false } }, portId: 'gw1', replacedPortId: '' },
      { type: 'RouterGatewaySet', router: { ...r, externalGatewayInfo: { ...gateway, networkId: 'ext2' } }, portId: 'gw2', replacedPortId: 'gw1' },
      { type: 'RouterGatewayCleared', router: r, portId: 'gw2' },
    ]);
    expect(state.context).toMatchObject({ gatewayPortId: '', router: r });
    expect(given(router, [created]).when({ type: 'SetRouterGateway', externalGatewayInfo: { ...gateway, enableSnat: undefined }, portId: 'gw1' } as M)).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'external_gateway_info.enable_snat' } });
  });

  it('attaches interfaces once per subnet, refusing a subnet twice and overlapping CIDRs with Neutron\'s messages', () => {
    const first = run([created], [{ type: 'AddRouterInterface', portId: 'p1', subnets: [s1] }, { type: 'AddRouterInterface', portId: 'p1', subnets: [s1] }]);
    expect(first.events).toEqual([{ type: 'RouterInterfaceAdded', portId: 'p1', subnets: [s1] }]);
    const after = [created, ...first.events];
    expect(run(after, [{ type: 'AddRouterInterface', portId: 'p2', subnets: [s1] }]).refusals).toEqual([
      { code: 'INVALID_ARGUMENT', field: 'subnet_id', message: 'Bad router request: Router already has a port on subnet s1.' },
    ]);
    expect(run(after, [{ type: 'AddRouterInterface', portId: 'p3', subnets: [{ subnetId: 's9', cidr: '10.0.0.128/25' }] }]).refusals).toEqual([
      { code: 'INVALID_ARGUMENT', field: 'subnet_id', message: 'Bad router request: Cidr 10.0.0.128/25 of subnet s9 overlaps with cidr 10.0.0.0/24 of subnet s1.' },
    ]);
    const two = run(after, [{ type: 'AddRouterInterface', portId: 'p2', subnets: [s2] }]);
    expect(two.refusals).toEqual([]);
    expect(two.state.context.interfaces).toEqual([{ portId: 'p1', subnets: [s1] }, { portId: 'p2', subnets: [s2] }]);
  });

  it('detaches an interface by subnet or port, NOT_FOUND for one it lacks', () => {
    const start = [created, { type: 'RouterInterfaceAdded', portId: 'p1', subnets: [s1] }, { type: 'RouterInterfaceAdded', portId: 'p2', subnets: [s2] }];
    const { events, refusals, state } = run(start, [
      { type: 'RemoveRouterInterface', subnetId: 's1' },
      { type: 'RemoveRouterInterface', portId: 'p2' },
      { type: 'RemoveRouterInterface', portId: 'p2' },
      { type: 'RemoveRouterInterface', subnetId: 's1' },
      { type: 'RemoveRouterInterface' },
    ]);
    expect(events).toEqual([{ type: 'RouterInterfaceRemoved', portId: 'p1', subnets: [s1] }, { type: 'RouterInterfaceRemoved', portId: 'p2', subnets: [s2] }]);
    expect(refusals).toEqual([
      { code: 'NOT_FOUND', field: 'port_id', message: 'Router r1 does not have an interface with id p2' },
      { code: 'NOT_FOUND', field: 'subnet_id', message: 'Router r1 has no interface on subnet s1' },
      { code: 'INVALID_ARGUMENT', field: 'subnet_id', message: 'subnet_id: give subnet_id or port_id' },
    ]);
    expect(state.context.interfaces).toEqual([]);
  });

  it('is not deleted while it has interfaces (RouterInUse); deleted, it names its gateway port', () => {
    const withInterface = [created, { type: 'RouterGatewaySet', router: { ...r, externalGatewayInfo: gateway }, portId: 'gw1', replacedPortId: '' }, { type: 'RouterInterfaceAdded', portId: 'p1', subnets: [s1] }];
    expect(run(withInterface, [{ type: 'DeleteRouter' }]).refusals).toEqual([{ code: 'FAILED_PRECONDITION', state: 'in use', message: 'Router r1 still has ports' }]);
    const gone = run(withInterface, [{ type: 'RemoveRouterInterface', portId: 'p1' }, { type: 'DeleteRouter' }, { type: 'UpdateRouter', router: { name: 'x' }, updateMask: ['name'] }]);
    expect(gone.events.at(-1)).toEqual({ type: 'RouterDeleted', router: { ...r, externalGatewayInfo: gateway }, gatewayPortId: 'gw1' });
    expect(gone.state.value).toBe('deleted');
    expect(gone.refusals).toMatchObject([{ code: 'NOT_FOUND' }]);
  });

  it('lists the commands allowed before and after creation', () => {
    expect(router.allowedCommands(fold(router, [])).sort()).toEqual(['CreateRouter']);
    expect(router.allowedCommands(fold(router, [created]))).toContain('AddRouterInterface');
  });
});

describe("a router's ports", () => {
  const port = networkAggregate('port').decider;
  const p = {
    id: 'p1', networkId: 'n1', projectId: 'pr1', name: '', macAddress: 'fa:16:3e:00:00:01', fixedIps: [{ subnetId: 's1', ipAddress: '10.0.0.1' }],
    deviceOwner: 'network:router_interface', deviceId: 'r1', securityGroups: [], portSecurityEnabled: false, allowedAddressPairs: [], adminStateUp: true,
  };
  it.each(['network:router_interface', 'network:router_gateway', 'network:floatingip'])('a %s port is deleted only by its owner (ServicePortInUse)', (owner) => {
    const events = [{ type: 'PortCreated', port: { ...p, deviceOwner: owner } }] as M[];
    expect(given(port, events).when({ type: 'DeletePort' } as M, { aggregateId: 'p1' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in use', message: `Port p1 cannot be deleted directly via the port API: has device owner ${owner}.` },
    });
    expect(given(port, events).when({ type: 'DeletePort', byOwner: true } as M, { aggregateId: 'p1' })).toMatchObject({ events: [{ type: 'PortDeleted' }] });
  });
});
