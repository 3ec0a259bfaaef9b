// The ring of a storage policy as an aggregate (Swift's ring builder): devices are added,
// re-weighted and removed in the builder, and a rebalance computes the new assignment here, in
// the decider, so that every proxy and object server reads the same table from RingRebalanced.
// The event carries the table itself: a change to the placement algorithm never changes history.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { RefusalInput } from '../kernel/aggregate.js';
import { failedPrecondition, type Rejection } from '../kernel/rejection.js';
import { fieldProblem } from './object.validation.js';
import { decodeAssignment, emptyRing, encodeAssignment, rebalance, ringProblem, type RingDevice } from './ring.js';

export interface RingContext {
  partPower: number;
  replicas: number;
  /** The builder's devices: what the next rebalance assigns. */
  builder: RingDevice[];
  /** The current assignment (RingRebalanced), the table encoded as in the event. */
  version: number;
  devices: RingDevice[];
  assignment: string;
}

export const RING_COMMANDS = ['CreateRing', 'AddRingDevice', 'RemoveRingDevice', 'SetRingDeviceWeight', 'SetRingDeviceAddress', 'RebalanceRing'] as const;
export const RING_EVENTS = ['RingCreated', 'RingDeviceAdded', 'RingDeviceRemoved', 'RingDeviceWeightSet', 'RingDeviceAddressSet', 'RingRebalanced'] as const;

const sameDevices = (a: RingDevice[], b: RingDevice[]) =>
  a.length === b.length && a.every((d, i) => d.id === b[i].id && d.weight === b[i].weight && d.zone === b[i].zone && d.region === b[i].region && d.host === b[i].host);
const byId = (devices: RingDevice[]) => [...devices].sort((x, y) => x.id - y.id);

/** Why this command may not run on this ring (undefined: it may). */
export function ringRefusal(state: string, context: RingContext, event: RefusalInput): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  if (state !== 'active') return undefined;
  const known = (id: number) => context.builder.some((d) => d.id === id);
  switch (event.type) {
    case 'AddRingDevice': {
      const d = event.device as RingDevice;
      if (known(d.id)) return { code: 'ALREADY_EXISTS', message: `ring device ${d.id} exists` };
      // Swift never reuses a device id: the old assignment may still name it.
      if (context.devices.some((x) => x.id === d.id)) return { code: 'ALREADY_EXISTS', message: `ring device id ${d.id} is still in the current assignment; rebalance first or use another id` };
      if (context.builder.some((x) => x.host === d.host && x.device === d.device)) return { code: 'ALREADY_EXISTS', message: `device ${d.device} on ${d.host} is in the ring as ${context.builder.find((x) => x.host === d.host)!.id}` };
      return undefined;
    }
    case 'RemoveRingDevice':
    case 'SetRingDeviceWeight':
    case 'SetRingDeviceAddress':
      return known(event.deviceId) ? undefined : { code: 'NOT_FOUND', message: `ring device ${event.deviceId} not found` };
    case 'RebalanceRing': {
      const problem = ringProblem(context.partPower, context.replicas, context.builder);
      return problem ? failedPrecondition(state, `RebalanceRing is not possible: ${problem}`) : undefined;
    }
  }
  return undefined;
}

const allowedIn =
  (state: string) =>
  ({ context, event }: { context: RingContext; event: RefusalInput }) =>
    ringRefusal(state, context, event) === undefined;
const command = (state: string, make: (c: RingContext, e: RefusalInput) => Record<string, unknown>[]) => ({
  guard: allowedIn(state),
  actions: enqueueActions(({ context, event, enqueue }: { context: RingContext; event: RefusalInput; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});

function rebalanced(c: RingContext): Record<string, unknown>[] {
  const builder = byId(c.builder);
  // Nothing changed: Swift's "no partitions could be reassigned". A drained device (weight 0) that
  // still holds partitions is a change still owed (one rebalance moves one replica of a partition).
  const draining = new Set(c.devices.filter((d) => d.weight === 0).map((d) => d.id));
  const stillHeld = draining.size > 0 && c.assignment !== '' && decodeAssignment(c.assignment, c.replicas, c.partPower).some((row) => row.some((d) => draining.has(d)));
  if (c.version > 0 && sameDevices(builder, byId(c.devices)) && !stillHeld) return [];
  const current =
    c.version === 0
      ? emptyRing(c.partPower, c.replicas)
      : { partPower: c.partPower, replicas: c.replicas, devices: c.devices, assignment: decodeAssignment(c.assignment, c.replicas, c.partPower), version: c.version };
  const { ring, moved } = rebalance(current, builder);
  return [
    { type: 'RingRebalanced', ringVersion: ring.version, devices: ring.devices, assignment: encodeAssignment(ring.assignment), moved, partPower: ring.partPower, replicas: ring.replicas },
  ];
}

export const ringMachine = setup({}).createMachine({
  id: 'object_ring',
  initial: 'absent',
  context: { partPower: 0, replicas: 0, builder: [], version: 0, devices: [], assignment: '' } as RingContext,
  states: {
    absent: {
      on: {
        CreateRing: command('absent', (_c, e) => [{ type: 'RingCreated', partPower: e.partPower, replicas: e.replicas }]),
        RingCreated: { target: 'active', actions: assign(({ event }: { event: RefusalInput }) => ({ partPower: event.partPower as number, replicas: event.replicas as number })) },
      },
    },
    active: {
      on: {
        AddRingDevice: command('active', (_c, e) => [{ type: 'RingDeviceAdded', device: e.device }]),
        RingDeviceAdded: { actions: assign(({ context, event }: { context: RingContext; event: RefusalInput }) => ({ builder: byId([...context.builder, event.device as RingDevice]) })) },
        RemoveRingDevice: command('active', (_c, e) => [{ type: 'RingDeviceRemoved', deviceId: e.deviceId }]),
        RingDeviceRemoved: { actions: assign(({ context, event }: { context: RingContext; event: RefusalInput }) => ({ builder: context.builder.filter((d) => d.id !== event.deviceId) })) },
        SetRingDeviceWeight: command('active', (_c, e) => [{ type: 'RingDeviceWeightSet', deviceId: e.deviceId, weight: e.weight }]),
        RingDeviceWeightSet: {
          actions: assign(({ context, event }: { context: RingContext; event: RefusalInput }) => ({
            builder: context.builder.map((d) => (d.id === event.deviceId ? { ...d, weight: event.weight as number } : d)),
          })),
        },
        SetRingDeviceAddress: command('active', (_c, e) => [{ type: 'RingDeviceAddressSet', deviceId: e.deviceId, host: e.host }]),
        RingDeviceAddressSet: {
          actions: assign(({ context, event }: { context: RingContext; event: RefusalInput }) => ({
            builder: context.builder.map((d) => (d.id === event.deviceId ? { ...d, host: event.host as string } : d)),
            devices: context.devices.map((d) => (d.id === event.deviceId ? { ...d, host: event.host as string } : d)),
          })),
        },
        RebalanceRing: command('active', rebalanced),
        RingRebalanced: {
          actions: assign(({ event }: { event: RefusalInput }) => ({ version: event.ringVersion as number, devices: event.devices as RingDevice[], assignment: event.assignment as string })),
        },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;
