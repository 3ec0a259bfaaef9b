// The deciders of the object domain (Swift): containers, objects' recorded versions and the ring.
// Accounts are implicit (one per project, AUTH_<project id>); their figures are the listing's.
import { defineAggregate, type DomainAggregate, type Refusal } from '../kernel/aggregate.js';
import { CONTAINER_COMMANDS, CONTAINER_EVENTS, containerMachine, containerRefusal, type ContainerContext } from './container.machine.js';
import { OBJECT_COMMANDS, OBJECT_EVENTS, objectMachine, objectRefusal, type ObjectContext } from './object.machine.js';
import { RING_COMMANDS, RING_EVENTS, ringMachine, ringRefusal, type RingContext } from './ring.machine.js';

const containerRefusals: Refusal = (state, e) => {
  const name = String(state.value);
  // The kernel answers NOT_FOUND (absent) and ALREADY_EXISTS (a second create) itself.
  if ((name === 'absent') !== (e.type === 'CreateContainer')) return undefined;
  return containerRefusal(state.context as unknown as ContainerContext, e);
};

export const objectAggregates: DomainAggregate[] = [
  defineAggregate('container', containerMachine, CONTAINER_COMMANDS, CONTAINER_EVENTS, containerRefusals, { creation: 'CreateContainer', absentState: 'absent' }),
  defineAggregate('object', objectMachine, OBJECT_COMMANDS, OBJECT_EVENTS, (state, e) => objectRefusal(String(state.value), state.context as unknown as ObjectContext, e)),
  defineAggregate('object_ring', ringMachine, RING_COMMANDS, RING_EVENTS, (state, e) => {
    if (String(state.value) === 'absent' && e.type !== 'CreateRing') return undefined;
    return ringRefusal(String(state.value), state.context as unknown as RingContext, e);
  }, { creation: 'CreateRing' }),
];

export const objectAggregate = (aggregateType: string): DomainAggregate => {
  const a = objectAggregates.find((x) => x.aggregateType === aggregateType);
  if (!a) throw new Error(`no object aggregate ${aggregateType}`);
  return a;
};
