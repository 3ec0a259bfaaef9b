// The domains the all-in-one process hosts. Each entry is a domain name and its aggregates;
// identity, compute, network, block, image, object and metering join as their issues land.
import type { AggregateDefinition } from './kernel/decider.js';

export interface DomainModule {
  name: string;
  aggregates: AggregateDefinition[];
}

export const domains: DomainModule[] = [];
