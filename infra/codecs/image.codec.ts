// The image domain as the runtime hosts it: its aggregate's decider with its protobuf codec
// (proto/strata/image/v1/events.proto) and its field rules. No field is null in the image
// decider: every absent value has its proto3 default ('' for no disk_format, 0 for no size).
import type { AggregateDefinition } from '../../domains/kernel/decider.js';
import { imageAggregates } from '../../domains/image/image.deciders.js';
import { validateImageCommand } from '../../domains/image/image.validation.js';
import { protoCodec } from './proto-codec.js';

export const IMAGE_PROTO_PACKAGE = 'strata.image.v1';

export const imageDefinitions: AggregateDefinition[] = imageAggregates.map((a) => ({
  decider: a.decider as AggregateDefinition['decider'],
  codec: protoCodec({
    protoPackage: IMAGE_PROTO_PACKAGE,
    commandTypes: a.commandTypes,
    eventTypes: a.eventTypes,
    validate: validateImageCommand,
  }) as AggregateDefinition['codec'],
}));

/** Every image event type, for projections. */
export const imageEventTypes = imageAggregates.flatMap((a) => a.eventTypes);

export const imageCodecFor = (aggregateType: string) => {
  const i = imageAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no image aggregate ${aggregateType}`);
  return imageDefinitions[i].codec;
};
