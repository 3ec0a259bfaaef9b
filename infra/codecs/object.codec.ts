// The object domain as the runtime hosts it: each aggregate's decider with its protobuf codec
// (proto/strata/object/v1/events.proto) and its field rules. No field is null in the object
// deciders: absent values have their proto3 defaults.
import type { AggregateDefinition } from '../../domains/kernel/decider.js';
import { objectAggregates } from '../../domains/object/object.deciders.js';
import { validateObjectCommand } from '../../domains/object/object.validation.js';
import { protoCodec } from './proto-codec.js';

export const OBJECT_PROTO_PACKAGE = 'strata.object.v1';

export const objectDefinitions: AggregateDefinition[] = objectAggregates.map((a) => ({
  decider: a.decider as AggregateDefinition['decider'],
  codec: protoCodec({
    protoPackage: OBJECT_PROTO_PACKAGE,
    commandTypes: a.commandTypes,
    eventTypes: a.eventTypes,
    validate: validateObjectCommand,
  }) as AggregateDefinition['codec'],
}));

/** Every object event type, for projections. */
export const objectEventTypes = objectAggregates.flatMap((a) => a.eventTypes);

export const objectCodecFor = (aggregateType: string) => {
  const i = objectAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no object aggregate ${aggregateType}`);
  return objectDefinitions[i].codec;
};
