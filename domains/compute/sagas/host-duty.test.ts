// What a host owes a server's interfaces: a boot spawns once its ports are made and bound; between
// actions the agent plugs allocated interfaces and unplugs detaching ones; during an action it waits.
import { describe, expect, it } from 'vitest';
import type { InstanceView } from '../compute.view.js';
import { requestedInterface, type InstanceInterface } from '../instance.interfaces.js';
import { hostDuty } from './host-duty.js';

const iface = (portId: string, state: InstanceInterface['state']): InstanceInterface => ({ ...requestedInterface({ portId, networkId: 'n1', preserveOnDelete: false }), state });
const view = (over: Partial<InstanceView>): InstanceView =>
  ({ instanceId: 'i1', vm: 'active', task: null, action: null, host: 'h1', assigned: false, sourceHost: '', migrationUri: '', interfaces: [], ...over }) as InstanceView;

describe('host duties for interfaces', () => {
  it.each([
    ['a boot with a port still to make waits', view({ vm: 'building', task: 'scheduling', action: 'create', assigned: true, interfaces: [iface('p1', 'allocated'), iface('p2', 'requested')] }), { kind: 'none' }],
    ['a boot whose ports are ready spawns', view({ vm: 'building', task: 'scheduling', action: 'create', assigned: true, interfaces: [iface('p1', 'allocated')] }), { kind: 'spawn' }],
    ['an allocated interface of a running server is plugged', view({ interfaces: [iface('p1', 'attached'), iface('p2', 'allocated')] }), { kind: 'plug', portId: 'p2' }],
    ['so is one of a stopped server (recorded for its next start)', view({ vm: 'stopped', interfaces: [iface('p2', 'allocated')] }), { kind: 'plug', portId: 'p2' }],
    ['a detaching interface is unplugged first', view({ interfaces: [iface('p2', 'allocated'), iface('p1', 'detaching')] }), { kind: 'unplug', portId: 'p1' }],
    ['nothing while an action runs (the action takes its interfaces along)', view({ action: 'stop', task: 'powering-off', interfaces: [iface('p2', 'allocated')] }), { kind: 'act', action: 'stop' }],
    ['nothing for a suspended guest (its saved machine keeps its devices)', view({ vm: 'suspended', interfaces: [iface('p2', 'allocated')] }), { kind: 'none' }],
    ['nothing on another host', view({ host: 'h2', interfaces: [iface('p2', 'allocated')] }), { kind: 'none' }],
    ['nothing to do: none', view({ interfaces: [iface('p1', 'attached'), iface('p3', 'requested'), iface('p4', 'detached')] }), { kind: 'none' }],
  ] as const)('%s', (_name, v, duty) => {
    expect(hostDuty(v as InstanceView, 'h1')).toEqual(duty);
  });
});
