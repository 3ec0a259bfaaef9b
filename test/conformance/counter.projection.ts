// Read model of counters: one row per counter and one per event (so a rebuild can be compared
// row for row). Pure: an event in, statements out.
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import type { Projection } from '../../infra/runtime/projection-runner.js';
import type { Statement } from '../../infra/store/store.js';
import { counterCodec } from './counter.decider.js';

export const counterProjection = (eventsTopic: string): Projection => ({
  name: 'counters',
  topics: [eventsTopic],
  handles: ['CounterOpened', 'CounterIncremented', 'CounterClosed'],
  tables: ['counters', 'counter_events'],
  schema: [
    `CREATE TABLE IF NOT EXISTS counters (
       id TEXT PRIMARY KEY, name TEXT NOT NULL, status TEXT NOT NULL, total BIGINT NOT NULL,
       version BIGINT NOT NULL, project_id TEXT NOT NULL, updated_at_ms BIGINT NOT NULL)`,
    `CREATE TABLE IF NOT EXISTS counter_events (
       event_id TEXT PRIMARY KEY, counter_id TEXT NOT NULL, version BIGINT NOT NULL, type TEXT NOT NULL,
       topic TEXT NOT NULL, partition INTEGER NOT NULL, log_offset BIGINT NOT NULL)`,
  ],
  apply(event: EventEnvelope, position: Position): Statement[] {
    const e = counterCodec.decodeEvent(event.type, event.payload);
    const history: Statement = {
      sql: `INSERT INTO counter_events (event_id, counter_id, version, type, topic, partition, log_offset)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_id) DO NOTHING`,
      params: [event.eventId, event.aggregateId, event.version, event.type, position.topic, position.partition, position.offset],
    };
    switch (e.type) {
      case 'CounterOpened':
        return [
          history,
          {
            sql: `INSERT INTO counters (id, name, status, total, version, project_id, updated_at_ms)
                  VALUES ($1, $2, 'open', 0, $3, $4, $5) ON CONFLICT (id) DO NOTHING`,
            params: [event.aggregateId, e.name, event.version, event.actor.projectId, event.occurredAtMs],
          },
        ];
      case 'CounterIncremented':
        return [
          history,
          {
            sql: 'UPDATE counters SET total = $2, version = $3, updated_at_ms = $4 WHERE id = $1',
            params: [event.aggregateId, e.total, event.version, event.occurredAtMs],
          },
        ];
      case 'CounterClosed':
        return [
          history,
          {
            sql: `UPDATE counters SET status = 'closed', version = $2, updated_at_ms = $3 WHERE id = $1`,
            params: [event.aggregateId, event.version, event.occurredAtMs],
          },
        ];
    }
  },
});
