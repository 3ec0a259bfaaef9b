// Time travel: a resource's state as of a log position or a time, folded by its own decider from
// its events up to that point (the same fold the decider runs). The audit trail says where the
// events are; they are read back from the log itself, so the state is the log's, not a copy's.
import type { Message } from '../../domains/kernel/decider.js';
import type { AuditQueries } from '../../projections/audit/audit.queries.js';
import { hostedDomains } from '../domains.js';
import { decodeEvent } from '../envelope/envelope.codec.js';
import type { Log } from '../log/log.js';

export interface PastState {
  aggregateType: string;
  aggregateId: string;
  /** The aggregate version reached (the number of its events folded). */
  version: number;
  /** The decider's name of the state ("active", "deleted"). */
  described: string;
  state: unknown;
  /** The last event folded: where it is and when it happened. */
  asOf: { topic: string; partition: number; offset: number; occurredAtMs: number; type: string };
}

const definitionOf = (aggregateType: string) => {
  for (const d of hostedDomains) {
    const def = d.aggregates.find((a) => a.decider.aggregateType === aggregateType);
    if (def) return def;
  }
  return undefined;
};

/** Whether a hosted domain has this aggregate type (a request's aggregate_type is checked with it). */
export const knownAggregateType = (aggregateType: string): boolean => definitionOf(aggregateType) !== undefined;

/**
 * The state of `aggregateId` after its last event at or before `at` (an offset in its partition,
 * or a time); undefined when it had no event by then.
 */
export async function stateAt(log: Log, audit: AuditQueries, aggregateType: string, aggregateId: string, at: { offset?: number; timeMs?: number }): Promise<PastState | undefined> {
  const def = definitionOf(aggregateType);
  if (!def) throw new Error(`no aggregate type ${aggregateType}`);
  const events = await audit.positionsUpTo(aggregateType, aggregateId, at);
  if (events.length === 0) return undefined;
  const { topic, partition } = events[0];
  const wanted = new Set(events.map((e) => e.offset));
  const first = events[0].offset;
  const last = events[events.length - 1].offset;
  let state = def.decider.initialState;
  let folded = 0;
  for await (const batch of log.read(topic, partition, first, last + 1)) {
    for (const r of batch) {
      if (!wanted.has(r.offset)) continue;
      const e = decodeEvent(r.value);
      if (e.aggregateId !== aggregateId || e.aggregateType !== aggregateType) continue;
      state = def.decider.evolve(state, def.codec.decodeEvent(e.type, e.payload) as Message);
      folded++;
    }
  }
  if (folded !== events.length) throw new Error(`the log holds ${folded} of the ${events.length} events of ${aggregateType} ${aggregateId} the audit trail lists`);
  const end = events[events.length - 1];
  return {
    aggregateType,
    aggregateId,
    version: end.version,
    described: def.decider.describe(state),
    state,
    asOf: { topic: end.topic, partition: end.partition, offset: end.offset, occurredAtMs: end.occurredAtMs, type: end.type },
  };
}
