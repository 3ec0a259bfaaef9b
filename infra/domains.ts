// The domains the all-in-one process hosts: each a name and its aggregates (decider + codec).
// Each with its event types and payload codecs, for what reads every domain's events (audit,
// subscriptions, metering, replay).
import type { AggregateDefinition } from '../domains/kernel/decider.js';
import { BLOCK_DOMAIN } from '../domains/block/block.types.js';
import { COMPUTE_DOMAIN } from '../domains/compute/compute.types.js';
import { IDENTITY_DOMAIN } from '../domains/identity/identity.types.js';
import { NETWORK_DOMAIN } from '../domains/network/network.types.js';
import { IMAGE_DOMAIN } from '../domains/image/image.types.js';
import { OBJECT_DOMAIN } from '../domains/object/object.types.js';
import { blockCodecFor, blockDefinitions, blockEventTypes } from './codecs/block.codec.js';
import { computeCodecFor, computeDefinitions, computeEventTypes } from './codecs/compute.codec.js';
import { identityCodecFor, identityDefinitions, identityEventTypes } from './codecs/identity.codec.js';
import { networkCodecFor, networkDefinitions, networkEventTypes } from './codecs/network.codec.js';
import { imageCodecFor, imageDefinitions, imageEventTypes } from './codecs/image.codec.js';
import { objectCodecFor, objectDefinitions, objectEventTypes } from './codecs/object.codec.js';

export interface HostedDomain {
  name: string;
  aggregates: AggregateDefinition[];
  /** Every event type its aggregates emit. */
  eventTypes: readonly string[];
  /** The payload codec of one of its aggregate types (throws for a type it does not have). */
  codecFor(aggregateType: string): AggregateDefinition['codec'];
}

export const hostedDomains: HostedDomain[] = [
  { name: IDENTITY_DOMAIN, aggregates: identityDefinitions, eventTypes: identityEventTypes, codecFor: identityCodecFor },
  { name: COMPUTE_DOMAIN, aggregates: computeDefinitions, eventTypes: computeEventTypes, codecFor: computeCodecFor },
  { name: NETWORK_DOMAIN, aggregates: networkDefinitions, eventTypes: networkEventTypes, codecFor: networkCodecFor },
  { name: BLOCK_DOMAIN, aggregates: blockDefinitions, eventTypes: blockEventTypes, codecFor: blockCodecFor },
  { name: OBJECT_DOMAIN, aggregates: objectDefinitions, eventTypes: objectEventTypes, codecFor: objectCodecFor },
  { name: IMAGE_DOMAIN, aggregates: imageDefinitions, eventTypes: imageEventTypes, codecFor: imageCodecFor },
];
