// The audit trail: every event of every hosted domain, one row each, with who (the actor of the
// command that caused it), when (its decided time), from which request (causation = command id,
// correlation = the request or saga), its trace, the project that owns the resource, and what
// changed (the payload: its protobuf bytes as the log holds them, decoded to JSON when read, in
// audit.queries.ts; decoding and serialising every payload on the way in was a third of the
// trail's cost in a rebuild). Keyed by the event's place in the log, so a replay writes the same
// rows whatever order partitions come in. The owner is fixed by an aggregate's first event (a
// resource never changes project); later events find it in audit_owners, written in the same
// transaction as the rows that need it.
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import { domainOfTopic, eventsTopics, payloadOf } from '../../infra/events/catalog.js';
import { hostedDomains } from '../../infra/domains.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import type { Statement } from '../../infra/store/store.js';
import { IDENTITY_DOMAIN } from '../../domains/identity/identity.types.js';
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';

export const AUDIT_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS audit_events (log_topic TEXT NOT NULL, log_partition INTEGER NOT NULL, log_offset BIGINT NOT NULL,
     event_id TEXT NOT NULL, domain TEXT NOT NULL, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, version BIGINT NOT NULL,
     type TEXT NOT NULL, occurred_at_ms BIGINT NOT NULL, user_id TEXT NOT NULL, actor_project_id TEXT NOT NULL, roles TEXT NOT NULL,
     causation_id TEXT NOT NULL, correlation_id TEXT NOT NULL, traceparent TEXT NOT NULL, project_id TEXT NOT NULL, payload BYTEA NOT NULL,
     PRIMARY KEY (log_topic, log_partition, log_offset))`,
  `CREATE TABLE IF NOT EXISTS audit_owners (aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, project_id TEXT NOT NULL,
     PRIMARY KEY (aggregate_type, aggregate_id))`,
  `CREATE INDEX IF NOT EXISTS audit_events_resource ON audit_events (aggregate_id, version)`,
  `CREATE INDEX IF NOT EXISTS audit_events_user ON audit_events (user_id, occurred_at_ms)`,
  `CREATE INDEX IF NOT EXISTS audit_events_project ON audit_events (project_id, occurred_at_ms)`,
  `CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (occurred_at_ms)`,
];

export const AUDIT_TABLES = ['audit_events', 'audit_owners'];

/** Object storage's service account (the image service's data): no tenant's. */
const SERVICE_ACCOUNTS = new Set(['AUTH_glance']);

const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/**
 * The project that owns the resource an aggregate's first event creates: its `projectId` (at the
 * top or in the resource message it carries), an image's `owner`, an identity project itself, an
 * object storage account's project. '' when the resource belongs to no project (hosts, flavors,
 * users, the ring): only cloud admins see those.
 */
export function ownerOfCreated(domain: string, event: EventEnvelope, payload: Record<string, unknown>): string {
  if (domain === IDENTITY_DOMAIN && event.aggregateType === 'project') return event.aggregateId;
  const direct = text(payload.projectId);
  if (direct) return direct;
  for (const value of Object.values(payload)) {
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    const nested = value as Record<string, unknown>;
    const owner = text(nested.projectId) || text(nested.owner);
    if (owner) return owner;
  }
  return '';
}

/** The owner known from the aggregate id alone (object storage: AUTH_<project>/...), or undefined. */
export function ownerFromId(domain: string, aggregateId: string): string | undefined {
  if (domain !== OBJECT_DOMAIN) return undefined;
  const account = aggregateId.split('/')[0];
  if (!account.startsWith('AUTH_') || SERVICE_ACCOUNTS.has(account)) return '';
  return account.slice('AUTH_'.length);
}

const COLUMNS =
  'log_topic, log_partition, log_offset, event_id, domain, aggregate_type, aggregate_id, version, type, occurred_at_ms, ' +
  'user_id, actor_project_id, roles, causation_id, correlation_id, traceparent, payload, project_id';
const INSERT_KNOWN = `INSERT INTO audit_events (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
  ON CONFLICT (log_topic, log_partition, log_offset) DO NOTHING`;
const INSERT_LOOKED_UP = `INSERT INTO audit_events (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
  COALESCE((SELECT o.project_id FROM audit_owners o WHERE o.aggregate_type = $6 AND o.aggregate_id = $7), ''))
  ON CONFLICT (log_topic, log_partition, log_offset) DO NOTHING`;
const UPSERT_OWNER = `INSERT INTO audit_owners (aggregate_type, aggregate_id, project_id) VALUES ($1, $2, $3)
  ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET project_id = excluded.project_id`;

export const auditProjection = (): Projection => ({
  name: 'audit',
  topics: eventsTopics(),
  handles: hostedDomains.flatMap((d) => d.eventTypes),
  schema: AUDIT_SCHEMA,
  tables: AUDIT_TABLES,
  apply(event: EventEnvelope, position: Position): Statement[] {
    const domain = domainOfTopic(position.topic)!;
    const fromId = ownerFromId(domain.name, event.aggregateId);
    const owner = fromId ?? (event.version === 1 ? ownerOfCreated(domain.name, event, payloadOf(domain, event)) : undefined);
    const p = event.payload;
    const params = [
      position.topic, position.partition, position.offset, event.eventId, domain.name, event.aggregateType, event.aggregateId, event.version,
      event.type, event.occurredAtMs, event.actor.userId, event.actor.projectId, rolesJson(event.actor.roles), event.causationId,
      event.correlationId, event.traceparent, Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength),
    ];
    if (owner === undefined) return [{ sql: INSERT_LOOKED_UP, params }];
    params.push(owner);
    const insert = { sql: INSERT_KNOWN, params };
    return fromId !== undefined ? [insert] : [{ sql: UPSERT_OWNER, params: [event.aggregateType, event.aggregateId, owner] }, insert];
  },
});

/** The roles as JSON text; the few sets of roles there are, serialised once each. */
const rolesText = new Map<string, string>();
function rolesJson(roles: string[]): string {
  if (roles.length === 0) return '[]';
  const key = roles.join('\u0000');
  let text = rolesText.get(key);
  if (text === undefined) {
    text = JSON.stringify(roles);
    if (rolesText.size < 1000) rolesText.set(key, text);
  }
  return text;
}
