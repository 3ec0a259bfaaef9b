// UsageService: the usage read model (projections/metering) asked per project, or for every
// project (cloud admins), over [start, end) per hour or in total. Open usage counts up to
// min(end, now), now from the API's clock. A tenant asking for another project's usage is
// PERMISSION_DENIED naming project_id (all_projects for every project's), before any read.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { amountOf, METRIC_UNITS, type Metric } from '../../domains/metering/usage.js';
import type { UsageQueries } from '../../projections/metering/usage.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { invalid, refuse } from '../errors.js';
import { meteringPolicy, meteringRule } from '../policy/metering.policy.js';
import { callerProject, type Req } from '../request.js';
import { unaryRpcs } from '../unary-rpc.js';

export const USAGE_SERVICE_NAME = 'strata.metering.v1.UsageService';

/** The longest period a question may cover (a year and a day). */
export const MAX_USAGE_PERIOD_MS = 367 * 24 * 3_600_000;
const DAY_MS = 24 * 3_600_000;

export interface UsageServiceOptions {
  queries: UsageQueries;
  authenticator: Authenticator;
  now?: () => number;
}

const millis = (field: string, v: unknown): number => {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(field, `must be milliseconds since the epoch, got ${String(v)}`);
  return n;
};

function granularityOf(req: Req): 'hour' | 'total' {
  const g = req.granularity ?? 'GRANULARITY_UNSPECIFIED';
  if (g === 'GRANULARITY_UNSPECIFIED' || g === 'GRANULARITY_HOUR' || g === 0 || g === 1) return 'hour';
  if (g === 'GRANULARITY_TOTAL' || g === 2) return 'total';
  throw invalid('granularity', `must be GRANULARITY_HOUR or GRANULARITY_TOTAL, got ${String(g)}`);
}

export function createUsageService(o: UsageServiceOptions): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const rpc = unaryRpcs({ service: USAGE_SERVICE_NAME, policy: meteringPolicy, ruleOf: meteringRule, authenticator: o.authenticator, impl, label: 'metering' });
  const now = o.now ?? Date.now;

  rpc('GetUsage', async (req, c, enforce) => {
    const all = Boolean(req.allProjects);
    const own = callerProject(c);
    const asked = String(req.projectId ?? '');
    if (all && asked) throw invalid('all_projects', 'cannot be set with project_id');
    if (all && !c.isAdmin) throw refuse('PERMISSION_DENIED', 'the usage of every project is for cloud admins', { field: 'all_projects' });
    const projectId = all ? '' : asked || own;
    if (!all && !projectId) throw invalid('project_id', 'is required for a token not scoped to a project (or ask with all_projects)');
    if (!all && projectId !== own && !c.isAdmin) throw refuse('PERMISSION_DENIED', `the usage of project ${projectId} is for its own readers and cloud admins`, { field: 'project_id' });
    enforce({ projectId: all ? own : projectId });
    const nowMs = now();
    const startMs = millis('start_ms', req.startMs) || Math.floor(nowMs / DAY_MS) * DAY_MS;
    const endMs = millis('end_ms', req.endMs) || nowMs;
    if (endMs <= startMs) throw invalid('end_ms', `must be after start_ms (${startMs}), got ${endMs}`);
    if (endMs - startMs > MAX_USAGE_PERIOD_MS) throw invalid('end_ms', `the period may cover at most ${MAX_USAGE_PERIOD_MS / DAY_MS} days`);
    const rows = await o.queries.usage({ projectId, fromMs: startMs, toMs: endMs, nowMs, granularity: granularityOf(req) });
    return {
      records: rows.map((r) => ({
        projectId: r.projectId,
        startMs: r.startMs,
        metric: r.metric,
        key: r.key,
        quantitySeconds: r.quantityMs / 1000,
        amount: amountOf(r.metric, r.quantityMs),
        unit: METRIC_UNITS[r.metric as Metric].unit,
      })),
      startMs,
      endMs,
      countedToMs: Math.min(endMs, nowMs),
    };
  });

  return impl;
}
