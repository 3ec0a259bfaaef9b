// The domains the all-in-one process hosts: each a name and its aggregates (decider + codec).
// Metering joins as its issue lands.
import type { AggregateDefinition } from '../domains/kernel/decider.js';
import { BLOCK_DOMAIN } from '../domains/block/block.types.js';
import { COMPUTE_DOMAIN } from '../domains/compute/compute.types.js';
import { IDENTITY_DOMAIN } from '../domains/identity/identity.types.js';
import { NETWORK_DOMAIN } from '../domains/network/network.types.js';
import { IMAGE_DOMAIN } from '../domains/image/image.types.js';
import { OBJECT_DOMAIN } from '../domains/object/object.types.js';
import { blockDefinitions } from './codecs/block.codec.js';
import { computeDefinitions } from './codecs/compute.codec.js';
import { identityDefinitions } from './codecs/identity.codec.js';
import { networkDefinitions } from './codecs/network.codec.js';
import { imageDefinitions } from './codecs/image.codec.js';
import { objectDefinitions } from './codecs/object.codec.js';

export interface HostedDomain {
  name: string;
  aggregates: AggregateDefinition[];
}

export const hostedDomains: HostedDomain[] = [
  { name: IDENTITY_DOMAIN, aggregates: identityDefinitions },
  { name: COMPUTE_DOMAIN, aggregates: computeDefinitions },
  { name: NETWORK_DOMAIN, aggregates: networkDefinitions },
  { name: BLOCK_DOMAIN, aggregates: blockDefinitions },
  { name: OBJECT_DOMAIN, aggregates: objectDefinitions },
  { name: IMAGE_DOMAIN, aggregates: imageDefinitions },
];
