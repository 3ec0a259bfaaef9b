// What the read-model tests share: a real decider's commands decided and folded per aggregate as
// the runtime does, their events wrapped in envelopes (payload encoded by the domain's codec) and
// appended to an embedded log for a ProjectionRunner; the stores to project into (SQLite always,
// PostgreSQL where scripts/test-env.sh set it up); and a table dump to compare two stores.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { ActorContext, Decider, DeciderCodec, Message } from '../../domains/kernel/decider.js';
import type { EventEnvelope, Position } from '../../infra/envelope/envelope.js';
import { encodeEvent } from '../../infra/envelope/envelope.codec.js';
import type { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { partitionForKey } from '../../infra/log/partitioner.js';
import { HEADER_EVENT_TYPE } from '../../infra/runtime/partition-decider.js';
import type { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { PostgresStore } from '../../infra/store/postgres-store.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';
import type { Store } from '../../infra/store/store.js';

type M = Message & Record<string, unknown>;

export const PG_URL = process.env.STRATA_TEST_PG_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/test';

/** PostgreSQL runs where scripts/test-env.sh set it up; elsewhere its half of a suite is skipped. */
export const pgReachable = await (async () => {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    await client.end().catch(() => undefined);
    return false;
  }
})();

/** A fresh store of each kind (a new SQLite file, a new PostgreSQL schema). */
export const testStores = (prefix: string) => ({
  sqlite: (): Store => new SqliteStore(join(mkdtempSync(join(tmpdir(), `strata-${prefix}-rm-`)), 'read.db')),
  postgres: (): Store => new PostgresStore(PG_URL, `${prefix}_${randomUUID().replaceAll('-', '').slice(0, 12)}`),
});

export const TEST_ADMIN: ActorContext = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] };

export interface DecidedLogOptions {
  log: EmbeddedLog;
  runner: () => ProjectionRunner;
  /** The domain's events topic and its partitions. */
  eventsTopic: string;
  partitions: number;
  aggregate: (aggregateType: string) => { decider: Decider<any, Message, Message>; codec: DeciderCodec<any, Message, Message> };
}

/** Commands decided and folded per aggregate as the runtime does; their events kept until flushed. */
export class DecidedLog {
  private readonly aggregates = new Map<string, { state: unknown; version: number }>();
  private pending: EventEnvelope[] = [];
  readonly all: EventEnvelope[] = [];
  private commands = 0;
  clockMs = Date.UTC(2026, 0, 1);

  constructor(private readonly o: DecidedLogOptions) {}

  send(aggregateType: string, aggregateId: string, command: M, options: { actor?: ActorContext; requestId?: string; atMs?: number } = {}): M[] {
    const { decider, codec } = this.o.aggregate(aggregateType);
    const key = `${aggregateType}/${aggregateId}`;
    const current = this.aggregates.get(key) ?? { state: decider.initialState, version: 0 };
    const commandId = `cmd-${++this.commands}`;
    const issuedAtMs = options.atMs ?? (this.clockMs += 1000);
    const actor = options.actor ?? TEST_ADMIN;
    const decision = decider.decide(current.state, command, { commandId, aggregateId, version: current.version, actor, issuedAtMs });
    if (!('events' in decision)) throw new Error(`${command.type} on ${key} refused: ${decision.rejection.message}`);
    let state = current.state;
    decision.events.forEach((event, i) => {
      state = decider.evolve(state, event);
      const envelope: EventEnvelope = {
        eventId: `${commandId}/${i}`,
        aggregateType,
        aggregateId,
        version: current.version + i + 1,
        type: event.type,
        payload: codec.encodeEvent(event),
        actor: { ...actor, roles: [...actor.roles] },
        causationId: commandId,
        correlationId: options.requestId ?? `req-${commandId}`,
        traceparent: '',
        tracestate: '',
        occurredAtMs: issuedAtMs,
      };
      this.pending.push(envelope);
      this.all.push(envelope);
    });
    this.aggregates.set(key, { state, version: current.version + decision.events.length });
    return decision.events as M[];
  }

  /** Appends what was decided since the last flush and waits until the projection has it. */
  async flush(): Promise<void> {
    const records = this.pending.map((e) => ({
      topic: this.o.eventsTopic,
      partition: partitionForKey(e.aggregateId, this.o.partitions),
      key: e.aggregateId,
      value: encodeEvent(e),
      headers: { [HEADER_EVENT_TYPE]: e.type },
    }));
    this.pending = [];
    const positions: Position[] = records.length ? await this.o.log.append(records) : [];
    await Promise.all(positions.map((p) => this.o.runner().waitFor(p)));
  }
}

/** Every table, rows as sorted JSON (numbers compared as numbers across drivers). */
export async function dumpTables(store: Store, tables: readonly string[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  const norm = (v: unknown) => (typeof v === 'bigint' || typeof v === 'number' || (typeof v === 'string' && /^-?\d+$/.test(v)) ? Number(v) : v);
  for (const table of tables) {
    const rows = await store.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
    out[table] = rows.map((r) => JSON.stringify(Object.entries(r).map(([k, v]) => [k, norm(v)]).sort())).sort();
  }
  return out;
}

/** Closes a test store; a PostgreSQL one loses its schema first. */
export async function discardStore(store: Store): Promise<void> {
  if (store instanceof PostgresStore) await store.dropSchema();
  await store.close();
}
