// The usage read model (Ceilometer's job): the usage meter (domains/metering/usage.ts) folded over
// the events of compute, block, network, object and image, its segments kept as rows
// (usage_segments: one metric of one resource over [start_ms, end_ms), end_ms NULL while open) and
// its per-resource state beside them (usage_resources), written in the same transaction as the
// rows and the checkpoint: a restart, a rebuild or a failed batch reloads the meter from the
// store (restore), so each event counts exactly once. The meter keeps state in memory, so this
// projection is made per runner (usageProjection()), never shared. SQL that SQLite and PostgreSQL
// share. The metering policy is part of the fold: a changed policy needs a rebuild of this model.
import { blockCodecFor } from '../../infra/codecs/block.codec.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import { imageCodecFor } from '../../infra/codecs/image.codec.js';
import { networkCodecFor } from '../../infra/codecs/network.codec.js';
import { objectCodecFor } from '../../infra/codecs/object.codec.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Statement, Store } from '../../infra/store/store.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import { METERED_EVENTS, UsageMeter, type MeteredEvent, type MeteredResource, type MeteringPolicy, type UsageChange } from '../../domains/metering/usage.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';

export const USAGE_PROJECTION = 'metering_usage';

export const USAGE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS usage_segments (resource_id TEXT NOT NULL, metric TEXT NOT NULL, seq BIGINT NOT NULL, metric_key TEXT NOT NULL,
     project_id TEXT NOT NULL, quantity BIGINT NOT NULL, start_ms BIGINT NOT NULL, end_ms BIGINT, PRIMARY KEY (resource_id, metric, seq))`,
  `CREATE INDEX IF NOT EXISTS usage_segments_project ON usage_segments (project_id, start_ms)`,
  `CREATE INDEX IF NOT EXISTS usage_segments_start ON usage_segments (start_ms)`,
  `CREATE TABLE IF NOT EXISTS usage_resources (resource_id TEXT PRIMARY KEY, kind TEXT NOT NULL, project_id TEXT NOT NULL, version BIGINT NOT NULL, state TEXT NOT NULL)`,
];

export const USAGE_TABLES = ['usage_segments', 'usage_resources'];

/** Each metered domain's events topic and the codec of its payloads. */
const DOMAINS: { domain: string; codecFor: (aggregateType: string) => { decodeEvent(type: string, payload: Uint8Array): unknown }; events: readonly string[] }[] = [
  { domain: COMPUTE_DOMAIN, codecFor: computeCodecFor, events: METERED_EVENTS.compute },
  { domain: BLOCK_DOMAIN, codecFor: blockCodecFor, events: METERED_EVENTS.block },
  { domain: NETWORK_DOMAIN, codecFor: networkCodecFor, events: METERED_EVENTS.network },
  { domain: OBJECT_DOMAIN, codecFor: objectCodecFor, events: METERED_EVENTS.object },
  { domain: IMAGE_DOMAIN, codecFor: imageCodecFor, events: METERED_EVENTS.image },
];
const CODEC_BY_TOPIC = new Map(DOMAINS.map((d) => [domainTopics(d.domain).events, d.codecFor]));

export const USAGE_TOPICS = DOMAINS.map((d) => domainTopics(d.domain).events);
export const USAGE_HANDLED_EVENTS: readonly string[] = DOMAINS.flatMap((d) => d.events);

/** The statements of a meter's changes. */
export function usageStatements(changes: UsageChange[]): Statement[] {
  return changes.map((c) =>
    c.kind === 'close'
      ? { sql: 'UPDATE usage_segments SET end_ms = $2 WHERE resource_id = $1 AND end_ms IS NULL', params: [c.resourceId, c.endMs] }
      : {
          sql: `INSERT INTO usage_segments (resource_id, metric, seq, metric_key, project_id, quantity, start_ms, end_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)
                ON CONFLICT (resource_id, metric, seq) DO NOTHING`,
          params: [c.segment.resourceId, c.segment.metric, c.segment.seq, c.segment.key, c.segment.projectId, c.segment.quantity, c.segment.startMs],
        },
  );
}

const saveResource = (r: MeteredResource): Statement => ({
  sql: `INSERT INTO usage_resources (resource_id, kind, project_id, version, state) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (resource_id) DO UPDATE SET project_id = excluded.project_id, version = excluded.version, state = excluded.state`,
  params: [r.resourceId, r.kind, r.projectId, r.version, JSON.stringify({ lastMs: r.lastMs, attrs: r.attrs, open: r.open })],
});

export interface UsageProjection extends Projection {
  readonly meter: UsageMeter;
}

/** A usage projection with a meter of its own (one per runner). */
export function usageProjection(policy: Partial<MeteringPolicy> = {}): UsageProjection {
  let meter = new UsageMeter(policy);
  return {
    name: USAGE_PROJECTION,
    topics: USAGE_TOPICS,
    handles: USAGE_HANDLED_EVENTS,
    schema: USAGE_SCHEMA,
    tables: USAGE_TABLES,
    get meter() {
      return meter;
    },
    apply(event: EventEnvelope, position: Position): Statement[] {
      const codecFor = CODEC_BY_TOPIC.get(position.topic);
      if (!codecFor) return [];
      // A redelivered event (at or below the folded version) writes nothing, and is not decoded.
      if (event.version <= (meter.resource(event.aggregateId)?.version ?? 0)) return [];
      // The codec's object is this call's own: the envelope's fields go onto it rather than into a copy.
      const decoded = codecFor(event.aggregateType).decodeEvent(event.type, event.payload) as unknown as MeteredEvent;
      Object.assign(decoded, { type: event.type, aggregateType: event.aggregateType, aggregateId: event.aggregateId, version: event.version, occurredAtMs: event.occurredAtMs });
      const changes = meter.apply(decoded);
      const r = meter.resource(event.aggregateId);
      if (!r) return [];
      const out = usageStatements(changes);
      out.push(saveResource(r));
      return out;
    },
    async restore(store: Store): Promise<void> {
      const rows = await store.query<{ resource_id: string; kind: string; project_id: string; version: number | string; state: string }>(
        'SELECT resource_id, kind, project_id, version, state FROM usage_resources',
      );
      const fresh = new UsageMeter(meter.policy);
      fresh.import(
        rows.map((row) => {
          const s = JSON.parse(row.state) as Pick<MeteredResource, 'lastMs' | 'attrs' | 'open'>;
          return { resourceId: row.resource_id, kind: row.kind as MeteredResource['kind'], projectId: row.project_id, version: Number(row.version), lastMs: s.lastMs, attrs: s.attrs, open: s.open };
        }),
      );
      meter = fresh;
    },
  };
}
