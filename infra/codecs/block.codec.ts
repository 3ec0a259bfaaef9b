// The block domain as the runtime hosts it: each aggregate's decider with its protobuf codec
// (proto/strata/block/v1/events.proto) and its field rules. No field is null in the block
// deciders: a storage host's state_dir is a proto3 `optional` that decodes as an absent key, as
// the deciders hold it; every other absent value has its proto3 default ('' for no source).
import type { AggregateDefinition } from '../../domains/kernel/decider.js';
import { blockAggregates } from '../../domains/block/block.deciders.js';
import { validateBlockCommand } from '../../domains/block/block.validation.js';
import { protoCodec } from './proto-codec.js';

export const BLOCK_PROTO_PACKAGE = 'strata.block.v1';

export const blockDefinitions: AggregateDefinition[] = blockAggregates.map((a) => ({
  decider: a.decider as AggregateDefinition['decider'],
  codec: protoCodec({
    protoPackage: BLOCK_PROTO_PACKAGE,
    commandTypes: a.commandTypes,
    eventTypes: a.eventTypes,
    validate: validateBlockCommand,
  }) as AggregateDefinition['codec'],
}));

/** Every block event type, for projections. */
export const blockEventTypes = blockAggregates.flatMap((a) => a.eventTypes);

export const blockCodecFor = (aggregateType: string) => {
  const i = blockAggregates.findIndex((a) => a.aggregateType === aggregateType);
  if (i < 0) throw new Error(`no block aggregate ${aggregateType}`);
  return blockDefinitions[i].codec;
};
