// AuditService: a resource's history, a user's actions and a resource's state at a past point,
// from the audit read model (projections/audit/) and, for time travel, the log itself. Tenancy
// first: a resource owned by another project (or by none) is NOT_FOUND to a tenant, and a tenant's
// view of a user's actions holds its own project's resources only.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Log } from '../../infra/log/log.js';
import { knownAggregateType, stateAt } from '../../infra/events/time-travel.js';
import type { AuditEvent, AuditQueries, AuditRange } from '../../projections/audit/audit.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { invalid, refuse } from '../errors.js';
import { auditPolicy, auditRule } from '../policy/audit.policy.js';
import type { Caller } from '../policy/policy.js';
import { callerProject, pageSize, required, type Req, type Res } from '../request.js';
import { unaryRpcs } from '../unary-rpc.js';
import { timestamp } from '../compute/compute.views.js';

export const AUDIT_SERVICE_NAME = 'strata.events.v1.AuditService';

export interface AuditServiceOptions {
  log: Log;
  queries: AuditQueries;
  authenticator: Authenticator;
}

type Timestamp = { seconds?: number | string; nanos?: number } | null | undefined;
const msOf = (t: Timestamp): number | undefined => (t ? Number(t.seconds ?? 0) * 1000 + Math.floor(Number(t.nanos ?? 0) / 1e6) : undefined);

/** The trace id of a W3C traceparent (version-traceid-spanid-flags). */
const traceIdOf = (traceparent: string) => traceparent.split('-')[1] ?? '';

export const auditEventView = (e: AuditEvent): Res => ({
  eventId: e.eventId,
  domain: e.domain,
  aggregateType: e.aggregateType,
  aggregateId: e.aggregateId,
  version: e.version,
  type: e.type,
  occurredAt: timestamp(e.occurredAtMs),
  actor: { userId: e.userId, projectId: e.actorProjectId, roles: e.roles },
  causationId: e.causationId,
  correlationId: e.correlationId,
  traceparent: e.traceparent,
  traceId: traceIdOf(e.traceparent),
  projectId: e.projectId,
  payloadJson: e.payload,
  topic: e.topic,
  partition: e.partition,
  offset: e.offset,
});

/** A page token is the number of rows already returned. */
function skipOf(req: Req): number {
  const token = String(req.pageToken ?? '');
  if (token === '') return 0;
  const n = Number(token);
  if (!/^\d+$/.test(token) || !Number.isSafeInteger(n)) throw invalid('page_token', 'is not a token this API returned');
  return n;
}

function rangeOf(req: Req): Omit<AuditRange, 'limit' | 'projectId'> {
  const fromMs = msOf(req.startTime);
  const toMs = msOf(req.endTime);
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw invalid('end_time', 'must be after start_time');
  return { fromMs, toMs };
}

export function createAuditService(o: AuditServiceOptions): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const rpc = unaryRpcs({ service: AUDIT_SERVICE_NAME, policy: auditPolicy, ruleOf: auditRule, authenticator: o.authenticator, impl, label: 'audit' });

  const aggregateTypeOf = (req: Req): string | undefined => {
    const t = String(req.aggregateType ?? '');
    if (t && !knownAggregateType(t)) throw invalid('aggregate_type', `no aggregate type ${t}`);
    return t || undefined;
  };

  /** The resource's aggregate type and owner, if the caller may see it; NOT_FOUND otherwise. */
  async function visibleResource(id: string, aggregateType: string | undefined, c: Caller): Promise<{ aggregateType: string; projectId: string }> {
    const owners = await o.queries.ownerOf(id, aggregateType);
    const mine = c.isAdmin ? owners : owners.filter((x) => x.projectId !== '' && x.projectId === callerProject(c));
    if (mine.length === 0) throw refuse('NOT_FOUND', `no resource ${id}${aggregateType ? ` of type ${aggregateType}` : ''} in the audit trail`, { field: 'resource_id' });
    if (mine.length > 1) throw invalid('aggregate_type', `${id} names resources of several types (${mine.map((x) => x.aggregateType).join(', ')}): say which`);
    return mine[0];
  }

  rpc('ListResourceEvents', async (req, c, enforce) => {
    const id = required('resource_id', req.resourceId);
    const resource = await visibleResource(id, aggregateTypeOf(req), c);
    enforce({ projectId: resource.projectId });
    const limit = pageSize(req);
    const skip = skipOf(req);
    const events = await o.queries.resourceHistory(id, { ...rangeOf(req), aggregateType: resource.aggregateType, limit: limit + 1, skip });
    return { events: events.slice(0, limit).map(auditEventView), nextPageToken: events.length > limit ? String(skip + limit) : '' };
  });

  rpc('ListUserEvents', async (req, c, enforce) => {
    const userId = required('user_id', req.userId);
    const asked = String(req.projectId ?? '');
    const projectId = c.isAdmin ? asked || undefined : callerProject(c);
    if (!c.isAdmin && asked && asked !== projectId) throw refuse('PERMISSION_DENIED', `project_id: a tenant sees its own project's events only (${projectId || 'no project'})`, { field: 'project_id' });
    if (!c.isAdmin && !projectId) throw refuse('PERMISSION_DENIED', 'this needs a token scoped to a project');
    enforce({ projectId: projectId ?? '' });
    const limit = pageSize(req);
    const skip = skipOf(req);
    const events = await o.queries.userActivity(userId, { ...rangeOf(req), projectId, limit: limit + 1, skip });
    return { events: events.slice(0, limit).map(auditEventView), nextPageToken: events.length > limit ? String(skip + limit) : '' };
  });

  rpc('GetResourceAt', async (req, c, enforce) => {
    const id = required('resource_id', req.resourceId);
    const resource = await visibleResource(id, aggregateTypeOf(req), c);
    enforce({ projectId: resource.projectId });
    let at: { offset?: number; timeMs?: number };
    if (req.at === 'offset') {
      const offset = Number(req.offset);
      if (!Number.isSafeInteger(offset) || offset < 0) throw invalid('offset', 'must be a log offset (0 or more)');
      at = { offset };
    } else if (req.at === 'time') {
      at = { timeMs: msOf(req.time) };
    } else throw invalid('at', 'say when: offset or time');
    const past = await stateAt(o.log, o.queries, resource.aggregateType, id, at);
    if (!past) throw refuse('NOT_FOUND', `${resource.aggregateType} ${id} had no event by then`, { field: req.at });
    const [asOf] = await o.queries.resourceHistory(id, { aggregateType: resource.aggregateType, limit: 1, skip: past.version - 1 });
    return {
      aggregateType: past.aggregateType,
      resourceId: id,
      version: past.version,
      state: past.described,
      stateJson: JSON.stringify(past.state),
      asOf: asOf ? auditEventView(asOf) : undefined,
    };
  });

  return impl;
}
