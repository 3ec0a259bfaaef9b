// The conductor's network step as a table: each situation a crash could leave behind (a port made
// but not bound, bound but not recorded, a move, a delete half done) has one next step.
import { describe, expect, it } from 'vitest';
import { requestedInterface, type InstanceInterface } from '../instance.interfaces.js';
import { nextNetworkStep, type PortFacts, type ServerNetworkView } from './network.saga.js';

const made = requestedInterface({ portId: 'p-made', networkId: 'n1', preserveOnDelete: false });
const given = requestedInterface({ portId: 'p-given', networkId: 'n1', preserveOnDelete: true });
const as = (i: InstanceInterface, state: InstanceInterface['state']): InstanceInterface => ({ ...i, state, macAddress: 'fa:16:3e:00:00:01' });
const view = (over: Partial<ServerNetworkView> = {}): ServerNetworkView => ({
  instanceId: 'i1', vm: 'active', action: null, host: 'h1', assigned: false, interfaces: [], ...over,
});
const ports = (facts: Record<string, PortFacts>) => (id: string) => facts[id];
const none = ports({});

describe('the network saga', () => {
  it.each([
    ['a boot not yet assigned waits', view({ vm: 'building', action: 'create', host: '', interfaces: [made] }), none, { kind: 'wait' }],
    ['an assigned boot gets its first requested port', view({ vm: 'building', action: 'create', host: 'h1', assigned: true, interfaces: [made, given] }), none, { kind: 'allocate', iface: made, host: 'h1' }],
    ['then the next one', view({ vm: 'building', action: 'create', assigned: true, interfaces: [as(made, 'allocated'), given] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'allocate', iface: given, host: 'h1' }],
    ['a port made but not yet recorded is allocated again (the saga finds it)', view({ vm: 'building', action: 'create', assigned: true, interfaces: [made] }), ports({ 'p-made': { hostId: '', deviceId: 'i1' } }), { kind: 'allocate', iface: made, host: 'h1' }],
    ['a rescheduled boot waits for its next host', view({ vm: 'building', action: 'create', host: '', interfaces: [as(made, 'allocated')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'wait' }],
    ['the next host gets the binding', view({ vm: 'building', action: 'create', host: 'h2', assigned: true, interfaces: [as(made, 'allocated')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'bind', portId: 'p-made', host: 'h2' }],
    ['an attach on a running server', view({ interfaces: [as(made, 'attached'), given] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'allocate', iface: given, host: 'h1' }],
    ['an attach waits while an action runs', view({ action: 'stop', interfaces: [given] }), none, { kind: 'wait' }],
    ['an ERROR server gets no ports', view({ vm: 'error', interfaces: [given] }), none, { kind: 'wait' }],
    ['a moved server takes its bindings along', view({ vm: 'resized', interfaces: [as(made, 'attached')], host: 'h3' }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'bind', portId: 'p-made', host: 'h3' }],
    ['a live migration in flight keeps the binding on its source', view({ action: 'live-migration', assigned: true, host: 'h2', sourceHost: 'h1', interfaces: [as(made, 'attached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'wait' }],
    ['a live migration done binds the destination', view({ host: 'h2', interfaces: [as(made, 'attached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'bind', portId: 'p-made', host: 'h2' }],
    ['a failed live migration stays on its source', view({ host: 'h1', interfaces: [as(made, 'attached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'wait' }],
    ['an offloaded server is unbound', view({ vm: 'shelved_offloaded', host: '', interfaces: [as(made, 'attached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'unbind', portId: 'p-made' }],
    ['an offloaded server, unbound, needs nothing', view({ vm: 'shelved_offloaded', host: '', interfaces: [as(made, 'attached')] }), ports({ 'p-made': { hostId: '', deviceId: 'i1' } }), { kind: 'wait' }],
    ['a port deleted under the server is left alone', view({ interfaces: [as(made, 'attached')] }), none, { kind: 'wait' }],
    ['a detached interface: let its port go, then forget it', view({ interfaces: [as(made, 'attached'), as(given, 'detached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'release', iface: as(given, 'detached'), forget: true }],
    ['a deleted server lets its ports go: the one it made', view({ vm: 'deleted', host: '', interfaces: [as(made, 'attached'), as(given, 'attached')] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' }, 'p-given': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'release', iface: as(made, 'attached'), forget: false }],
    ['then the one the user gave', view({ vm: 'deleted', host: '', interfaces: [as(made, 'attached'), as(given, 'attached')] }), ports({ 'p-given': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'release', iface: as(given, 'attached'), forget: false }],
    ['a deleted server whose given port is freed and made port gone needs nothing', view({ vm: 'deleted', host: '', interfaces: [as(made, 'attached'), as(given, 'attached')] }), ports({ 'p-given': { hostId: '', deviceId: '' } }), { kind: 'wait' }],
    ['a deleted server whose given port was never claimed leaves it alone', view({ vm: 'deleted', host: '', interfaces: [given] }), ports({ 'p-given': { hostId: '', deviceId: 'other' } }), { kind: 'wait' }],
    ['a deleted server lets go of a port made before the allocation was recorded', view({ vm: 'deleted', host: '', interfaces: [made] }), ports({ 'p-made': { hostId: 'h1', deviceId: 'i1' } }), { kind: 'release', iface: made, forget: false }],
  ] as const)('%s', (_name, v, port, step) => {
    expect(nextNetworkStep(v as ServerNetworkView, port)).toEqual(step);
  });
});
