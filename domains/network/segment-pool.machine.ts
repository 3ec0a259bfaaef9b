// The segmentation ids of one network type (aggregate id "vxlan", or "vlan:<physical network>"):
// the pool hands out the lowest free id of the configured range (Neutron's vni_ranges /
// network_vlan_ranges, carried by each request from configuration) and takes it back when the
// network goes. One writer per pool, so no id is ever given to two networks. An admin may ask for
// a specific id (inside the type's limits, in the range or not): it is recorded too.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { CommandContext, Message } from '../kernel/decider.js';
import type { Rejection } from '../kernel/rejection.js';
import { fieldProblem } from './network.validation.js';

export interface SegmentPoolContext {
  /** network id -> its segmentation id */
  allocations: Record<string, number>;
}

type Ev = Message & Record<string, any> & { meta?: CommandContext };

/** The segmentation id AllocateSegment gives this network, or why none. */
export function segmentFor(c: SegmentPoolContext, e: Ev): { segmentationId: number; held: boolean } | { rejection: Rejection } {
  const problem = fieldProblem(e);
  if (problem) return { rejection: problem };
  const pool = e.meta?.aggregateId ?? '';
  const held = c.allocations[e.networkId];
  if (held !== undefined && (!e.segmentationId || e.segmentationId === held)) return { segmentationId: held, held: true };
  if (held !== undefined) {
    return { rejection: { code: 'FAILED_PRECONDITION', state: 'allocated', message: `network ${e.networkId} already holds segmentation id ${held} of ${pool}` } };
  }
  const taken = new Set(Object.values(c.allocations));
  if (e.segmentationId) {
    if (taken.has(e.segmentationId)) {
      const owner = Object.entries(c.allocations).find(([, s]) => s === e.segmentationId)![0];
      return { rejection: { code: 'ALREADY_EXISTS', field: 'segmentation_id', message: `segmentation id ${e.segmentationId} of ${pool} is in use by network ${owner}` } };
    }
    return { segmentationId: e.segmentationId, held: false };
  }
  // Walks only past taken ids: bounded by the allocations, not by the range.
  for (let s = e.rangeMin; s <= e.rangeMax; s++) if (!taken.has(s)) return { segmentationId: s, held: false };
  return { rejection: { code: 'RESOURCE_EXHAUSTED', message: `no free segmentation id of ${pool} in the range ${e.rangeMin}:${e.rangeMax}` } };
}

export const segmentPoolMachine = setup({}).createMachine({
  id: 'segment_pool',
  initial: 'tracking',
  context: { allocations: {} } as SegmentPoolContext,
  states: {
    tracking: {
      on: {
        AllocateSegment: {
          guard: ({ context, event }: { context: SegmentPoolContext; event: Ev }) => !('rejection' in segmentFor(context, event)),
          actions: enqueueActions(({ context, event, enqueue }: { context: SegmentPoolContext; event: Ev; enqueue: any }) => {
            const got = segmentFor(context, event) as { segmentationId: number; held: boolean };
            if (!got.held) enqueue.emit({ type: 'SegmentAllocated', networkId: event.networkId, segmentationId: got.segmentationId });
          }),
        },
        SegmentAllocated: {
          actions: assign(({ context, event }: { context: SegmentPoolContext; event: Ev }) => ({ allocations: { ...context.allocations, [event.networkId]: event.segmentationId } })),
        },
        ReleaseSegment: {
          actions: enqueueActions(({ context, event, enqueue }: { context: SegmentPoolContext; event: Ev; enqueue: any }) => {
            const held = context.allocations[event.networkId];
            if (held !== undefined) enqueue.emit({ type: 'SegmentReleased', networkId: event.networkId, segmentationId: held });
          }),
        },
        SegmentReleased: {
          actions: assign(({ context, event }: { context: SegmentPoolContext; event: Ev }) => {
            const { [event.networkId]: _gone, ...allocations } = context.allocations;
            return { allocations };
          }),
        },
      },
    },
  } as never,
}) as unknown as AnyStateMachine;

export const SEGMENT_POOL_COMMANDS = ['AllocateSegment', 'ReleaseSegment'] as const;
export const SEGMENT_POOL_EVENTS = ['SegmentAllocated', 'SegmentReleased'] as const;
