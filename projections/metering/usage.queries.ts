// Reads of the usage read model: the segments of a project (or of every project) that overlap a
// window [from, to), cut into hours (or summed over the window) by the pure helpers of
// domains/metering/usage.ts. An open segment counts up to min(to, now), now given by the caller
// (the API's clock), so the same question at the same "now" gets the same answer.
import { aggregateUsage, type Metric, type UsageRow, type UsageSegment } from '../../domains/metering/usage.js';
import type { Store } from '../../infra/store/store.js';

export interface UsageQuery {
  /** '' or absent: every project. */
  projectId?: string;
  fromMs: number;
  toMs: number;
  nowMs: number;
  granularity: 'hour' | 'total';
}

interface SegmentRow {
  resource_id: string;
  metric: string;
  seq: number | string;
  metric_key: string;
  project_id: string;
  quantity: number | string;
  start_ms: number | string;
  end_ms: number | string | null;
}

export class UsageQueries {
  constructor(private readonly store: Store) {}

  /** The segments overlapping [fromMs, toMs) (open ones are cut at nowMs by aggregateUsage). */
  async segments(q: Omit<UsageQuery, 'granularity'>): Promise<UsageSegment[]> {
    const params: unknown[] = [q.toMs, q.fromMs];
    let sql = 'SELECT resource_id, metric, seq, metric_key, project_id, quantity, start_ms, end_ms FROM usage_segments WHERE start_ms < $1 AND (end_ms IS NULL OR end_ms > $2)';
    if (q.projectId) {
      params.push(q.projectId);
      sql += ' AND project_id = $3';
    }
    const rows = await this.store.query<SegmentRow>(sql, params);
    return rows.map((r) => ({
      resourceId: r.resource_id,
      seq: Number(r.seq),
      metric: r.metric as Metric,
      key: r.metric_key,
      projectId: r.project_id,
      quantity: Number(r.quantity),
      startMs: Number(r.start_ms),
      endMs: r.end_ms === null ? null : Number(r.end_ms),
    }));
  }

  /** Usage per project, metric, key and hour (or over the whole window). */
  async usage(q: UsageQuery): Promise<UsageRow[]> {
    return aggregateUsage(await this.segments(q), q);
  }
}
