// Reads of the audit trail: a resource's history, a user's actions, the owner project of events
// at log positions (for subscriptions' tenancy), and the positions of a resource's events up to a
// point (for time travel). Times are the events' decided times (ms since the epoch).
import type { EventEnvelope } from '../../infra/envelope/envelope.js';
import { domainOfTopic, payloadJson, payloadOf } from '../../infra/events/catalog.js';
import type { Store } from '../../infra/store/store.js';

export interface AuditEvent {
  topic: string;
  partition: number;
  offset: number;
  eventId: string;
  domain: string;
  aggregateType: string;
  aggregateId: string;
  version: number;
  type: string;
  occurredAtMs: number;
  userId: string;
  actorProjectId: string;
  roles: string[];
  causationId: string;
  correlationId: string;
  traceparent: string;
  /** The project owning the resource ('' for none). */
  projectId: string;
  /** The payload as JSON (deterministic: infra/events/catalog.ts payloadJson): what changed. */
  payload: string;
}

export interface AuditRange {
  fromMs?: number;
  /** Exclusive. */
  toMs?: number;
  /** Only events of resources this project owns. */
  projectId?: string;
  limit: number;
  /** Rows to skip (the page token). */
  skip?: number;
}

type Row = Record<string, unknown>;

const toEvent = (r: Row): AuditEvent => ({
  topic: String(r.log_topic),
  partition: Number(r.log_partition),
  offset: Number(r.log_offset),
  eventId: String(r.event_id),
  domain: String(r.domain),
  aggregateType: String(r.aggregate_type),
  aggregateId: String(r.aggregate_id),
  version: Number(r.version),
  type: String(r.type),
  occurredAtMs: Number(r.occurred_at_ms),
  userId: String(r.user_id),
  actorProjectId: String(r.actor_project_id),
  roles: JSON.parse(String(r.roles)) as string[],
  causationId: String(r.causation_id),
  correlationId: String(r.correlation_id),
  traceparent: String(r.traceparent),
  projectId: String(r.project_id),
  payload: payloadText(r),
});

/**
 * The stored payload (the event's protobuf bytes) as JSON, decoded by its domain's codec. A row
 * holding text (written as JSON by an older audit projection into SQLite) is that text.
 */
function payloadText(r: Row): string {
  const bytes = r.payload;
  if (!(bytes instanceof Uint8Array)) return String(bytes);
  const domain = domainOfTopic(String(r.log_topic));
  if (!domain) return '{}';
  const event = { aggregateType: String(r.aggregate_type), type: String(r.type), payload: bytes } as EventEnvelope;
  return payloadJson(payloadOf(domain, event));
}

export class AuditQueries {
  constructor(private readonly store: Store) {}

  /** The time and project filters as AND clauses, their values pushed onto `params`. */
  private range(r: AuditRange, params: unknown[]): string {
    const where: string[] = [];
    if (r.fromMs !== undefined) where.push(`occurred_at_ms >= $${params.push(r.fromMs)}`);
    if (r.toMs !== undefined) where.push(`occurred_at_ms < $${params.push(r.toMs)}`);
    if (r.projectId !== undefined) where.push(`project_id = $${params.push(r.projectId)}`);
    return where.map((w) => ` AND ${w}`).join('');
  }

  private page(r: AuditRange, params: unknown[]): string {
    return ` LIMIT $${params.push(r.limit)} OFFSET $${params.push(r.skip ?? 0)}`;
  }

  /** The aggregate type and owner of each resource with this id in the audit trail (none: it has no event). */
  async ownerOf(aggregateId: string, aggregateType?: string): Promise<{ aggregateType: string; projectId: string }[]> {
    const params: unknown[] = [aggregateId];
    const type = aggregateType ? ` AND aggregate_type = $${params.push(aggregateType)}` : '';
    const rows = await this.store.query<Row>(
      `SELECT DISTINCT aggregate_type, project_id FROM audit_events WHERE aggregate_id = $1${type} AND version = 1`,
      params,
    );
    return rows.map((r) => ({ aggregateType: String(r.aggregate_type), projectId: String(r.project_id) }));
  }

  /** A resource's events in the order they happened to it. */
  async resourceHistory(aggregateId: string, r: AuditRange & { aggregateType?: string }): Promise<AuditEvent[]> {
    const params: unknown[] = [aggregateId];
    const type = r.aggregateType ? ` AND aggregate_type = $${params.push(r.aggregateType)}` : '';
    const rows = await this.store.query<Row>(
      `SELECT * FROM audit_events WHERE aggregate_id = $1${type}${this.range(r, params)} ORDER BY aggregate_type, version${this.page(r, params)}`,
      params,
    );
    return rows.map(toEvent);
  }

  /** What a user did (the events of the commands they issued), in time order. */
  async userActivity(userId: string, r: AuditRange): Promise<AuditEvent[]> {
    const params: unknown[] = [userId];
    const rows = await this.store.query<Row>(
      `SELECT * FROM audit_events WHERE user_id = $1${this.range(r, params)} ORDER BY occurred_at_ms, log_topic, log_partition, log_offset${this.page(r, params)}`,
      params,
    );
    return rows.map(toEvent);
  }

  /** The owner project of each event of one partition in [fromOffset, toOffset]. */
  async ownersAt(topic: string, partition: number, fromOffset: number, toOffset: number): Promise<Map<number, string>> {
    const rows = await this.store.query<Row>(
      'SELECT log_offset, project_id FROM audit_events WHERE log_topic = $1 AND log_partition = $2 AND log_offset >= $3 AND log_offset <= $4',
      [topic, partition, fromOffset, toOffset],
    );
    return new Map(rows.map((r) => [Number(r.log_offset), String(r.project_id)]));
  }

  /**
   * Where a resource's events sit in the log, in order, up to a point: events at or before a log
   * offset (of the resource's own partition) or that happened at or before a time.
   */
  async positionsUpTo(aggregateType: string, aggregateId: string, at: { offset?: number; timeMs?: number }): Promise<AuditEvent[]> {
    const params: unknown[] = [aggregateId, aggregateType];
    let where = '';
    if (at.offset !== undefined) where += ` AND log_offset <= $${params.push(at.offset)}`;
    if (at.timeMs !== undefined) where += ` AND occurred_at_ms <= $${params.push(at.timeMs)}`;
    const rows = await this.store.query<Row>(`SELECT * FROM audit_events WHERE aggregate_id = $1 AND aggregate_type = $2${where} ORDER BY version`, params);
    return rows.map(toEvent);
  }
}
