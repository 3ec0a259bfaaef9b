// The compute domain as the runtime hosts it: each aggregate's decider with its protobuf codec
// (proto/strata/compute/v1/events.proto) and its field rules. task_state is null in the
// deciders where Nova says None: on the wire it is an absent proto3 `optional` field.
import type { AggregateDefinition } from '../../domains/kernel/decider.js';
import { computeAggregates } from '../../domains/compute/compute.deciders.js';
import { validateComputeCommand } from '../../domains/compute/compute.validation.js';
import { protoCodec } from './proto-codec.js';

export const COMPUTE_PROTO_PACKAGE = 'strata.compute.v1';

/** Fields the deciders hold as null when absent (the others decode to their proto3 defaults). */
const NULLABLE: Record<string, readonly string[]> = {
  AdvanceInstanceTask: ['taskState'],
  InstanceActionStarted: ['taskState'],
  InstanceTaskChanged: ['taskState'],
};

export const computeDefinitions: AggregateDefinition[] = computeAggregates.map((a) => {
  const types = new Set([...a.commandTypes, ...a.eventTypes]);
  return {
    decider: a.decider as AggregateDefinition['decider'],
    codec: protoCodec({
      protoPackage: COMPUTE_PROTO_PACKAGE,
      commandTypes: a.commandTypes,
      eventTypes: a.eventTypes,
      validate: validateComputeCommand,
      nullable: Object.fromEntries(Object.entries(NULLABLE).filter(([type]) => types.has(type))),
    }) as AggregateDefinition['codec'],
  };
});

/** Every compute event type, for projections. */
export const computeEventTypes = computeAggregates.flatMap((a) => a.eventTypes);

export const computeCodecFor = (aggregateType: string) => {
  const i = computeAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no compute aggregate ${aggregateType}`);
  return computeDefinitions[i].codec;
};
