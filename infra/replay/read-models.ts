// Every read model the cloud keeps, as projections: what `strata admin replay` rebuilds and
// compares, and what bench:replay rebuilds. A read model that is not listed here is not verified.
import type { Projection } from '../runtime/projection-runner.js';
import type { MeteringPolicy } from '../../domains/metering/usage.js';
import { domainTopics } from '../runtime/topology.js';
import { IDENTITY_DOMAIN } from '../../domains/identity/identity.types.js';
import { blockProjection } from '../../projections/block/block.projection.js';
import { computeProjection } from '../../projections/compute/compute.projection.js';
import { identityProjection } from '../../projections/identity/identity.projection.js';
import { imageProjection } from '../../projections/image/image.projection.js';
import { usageProjection } from '../../projections/metering/usage.projection.js';
import { networkProjection } from '../../projections/network/network.projection.js';
import { objectProjection } from '../../projections/object/object.projection.js';
import { auditProjection } from '../../projections/audit/audit.projection.js';

export interface ReadModelOptions {
  /** The cloud's metering policy: the usage read model is a fold of it (STRATA_METERING_BILL). */
  metering?: Partial<MeteringPolicy>;
}

/** Fresh projections (stateful ones are made per runner). */
export function allReadModels(o: ReadModelOptions = {}): Projection[] {
  return [
    identityProjection(domainTopics(IDENTITY_DOMAIN).events),
    computeProjection,
    networkProjection,
    blockProjection,
    objectProjection,
    imageProjection,
    usageProjection(o.metering),
    auditProjection(),
  ];
}

/**
 * allReadModels() reading topics that carry `prefix` before their usual names (bench:replay's own
 * topics); allReadModels() itself when no prefix. Some read models learn an event's domain from
 * its topic (audit, metering): they are handed the position under the topic's usual name.
 */
export function readModelsOnTopics(prefix?: string, o: ReadModelOptions = {}): Projection[] {
  if (!prefix) return allReadModels(o);
  const usual = (topic: string) => topic.slice(prefix.length + 1);
  return allReadModels(o).map((p) => {
    const clone = Object.assign(Object.create(Object.getPrototypeOf(p) as object) as Projection, p);
    clone.topics = p.topics.map((t) => `${prefix}.${t}`);
    clone.apply = (event, position) => p.apply(event, { ...position, topic: usual(position.topic) });
    if (p.restore) clone.restore = (store) => p.restore!(store);
    return clone;
  });
}
