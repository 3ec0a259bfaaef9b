// Rebuilds many read models in one pass over the log: each events partition is read once, each
// record's envelope decoded once, and handed to every projection that handles its type; the
// statements of all of them commit together, with their checkpoints, in large transactions.
// What `strata admin replay` and bench:replay run. The result is the one ProjectionRunner.rebuild
// gives per projection (projections are pure folds of the events of each partition, read in
// offset order); only the cost differs.
import type { EventEnvelope } from '../envelope/envelope.js';
import { decodeTrustedEvent } from '../envelope/envelope.trusted.js';
import type { Log } from '../log/log.js';
import { HEADER_EVENT_TYPE } from '../runtime/partition-decider.js';
import type { Projection } from '../runtime/projection-runner.js';
import type { Checkpoint, Statement, Store } from '../store/store.js';

/** Where a rebuild's batches are written (default: the store). */
export interface BatchApplier {
  /** Applies a batch with its checkpoints in one transaction; batches apply in call order. */
  apply(statements: Statement[], checkpoints: Checkpoint[]): Promise<void>;
  /** DDL, in call order with the batches. */
  migrate(ddl: string[]): Promise<void>;
}

const storeApplier = (store: Store): BatchApplier => ({
  apply: (statements, checkpoints) => store.apply(statements, checkpoints),
  migrate: (ddl) => store.migrate(ddl),
});

/** Next offsets keyed `${topic}/${partition}`, as checkpoints are. */
export type Offsets = Map<string, number>;

export interface RebuildOptions {
  /**
   * Per projection name, how far to replay (a partition it does not name: none of it). A
   * projection not in the map, or no map: to the end of its topics as they are now.
   */
  upTo?: Map<string, Offsets>;
  /** Log records per store transaction (default 20,000): bigger batches, fewer commits. */
  batchRecords?: number;
  /** After each committed batch: records it covered, statements, and how long the commit took. */
  onBatch?: (batch: { records: number; statements: number; commitMs: number }) => void;
  /** Build secondary indexes after the rows where it is safe (default true): see DeferredIndexes. */
  deferIndexes?: boolean;
  /**
   * Where batches are written (default: the store). One batch is in flight while the next is read
   * and folded, so with a store whose apply waits on a server (PostgreSQL) reading and writing
   * overlap; SQLite's apply runs to its end when called. (Applying SQLite batches on a worker
   * thread was measured slower here: 92.7 s against 67.1 s for 1,000,302 events, the copying to the
   * thread costing more than the second core gave on a shared 2-core machine.)
   */
  applier?: BatchApplier;
}

const INDEX_DDL = /^\s*CREATE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+(\w+)/i;
const FINDS_ROWS_IN = /\b(?:UPDATE|FROM|JOIN)\s+(\w+)/gi;

/**
 * Secondary indexes built once the rows are in rather than row by row: sorting a table once is
 * cheaper than keeping four B-trees in order through a million inserts (the audit trail's). Only
 * for a table no statement of the rebuild looks rows up in (UPDATE, DELETE, a FROM or JOIN: an
 * index may be what makes that lookup fast); the first statement that does gets the table's
 * indexes built before its batch runs. Unique indexes are never deferred (they carry ON CONFLICT).
 */
class DeferredIndexes {
  private readonly pending = new Map<string, string[]>();
  private readonly tablesOf = new Map<string, string[]>();

  /** The DDL to run now; the deferrable index DDL is kept. */
  take(ddl: string[]): string[] {
    return ddl.filter((d) => {
      const table = INDEX_DDL.exec(d)?.[1];
      if (!table) return true;
      const list = this.pending.get(table) ?? [];
      this.pending.set(table, [...list, d]);
      return false;
    });
  }

  /** Index DDL that must run before `statements`: of the tables they look rows up in. */
  due(statements: Statement[]): string[] {
    if (this.pending.size === 0) return [];
    const out: string[] = [];
    let last: string | undefined;
    for (const s of statements) {
      // Statements come in runs of the same SQL: look each run up once.
      if (s.sql === last) continue;
      last = s.sql;
      let tables = this.tablesOf.get(s.sql);
      if (!tables) this.tablesOf.set(s.sql, (tables = [...s.sql.matchAll(FINDS_ROWS_IN)].map((m) => m[1])));
      for (const t of tables) {
        const ddl = this.pending.get(t);
        if (ddl) {
          out.push(...ddl);
          this.pending.delete(t);
        }
      }
    }
    return out;
  }

  rest(): string[] {
    const out = [...this.pending.values()].flat();
    this.pending.clear();
    return out;
  }
}

export interface RebuildResult {
  /** Per projection, where its replay stopped. */
  reached: Map<string, Offsets>;
  /** Records read from the log. */
  records: number;
  /** Records decoded and applied by at least one projection. */
  events: number;
  statements: number;
  seconds: number;
}

interface Reader {
  projection: Projection;
  handles: Set<string>;
}

/**
 * Empties `projections`' tables in `store` (and forgets their checkpoints), then replays their
 * topics from offset 0. Tracing is left out on purpose: a replayed event's trace ended long ago,
 * and a span per event would cost more than applying it.
 */
export async function rebuildReadModels(log: Log, store: Store, projections: Projection[], options: RebuildOptions = {}): Promise<RebuildResult> {
  const started = performance.now();
  const batchRecords = options.batchRecords ?? 20_000;
  const deferred = options.deferIndexes === false ? undefined : new DeferredIndexes();
  for (const p of projections) {
    await store.migrate(deferred ? deferred.take(p.schema) : p.schema);
    await store.reset(p.name, p.tables);
    await p.restore?.(store);
  }
  const readersOf = new Map<string, Reader[]>();
  for (const projection of projections) {
    for (const topic of projection.topics) {
      let list = readersOf.get(topic);
      if (!list) readersOf.set(topic, (list = []));
      list.push({ projection, handles: new Set(projection.handles) });
    }
  }
  const reached = new Map<string, Offsets>(projections.map((p) => [p.name, new Map()]));
  const result: RebuildResult = { reached, records: 0, events: 0, statements: 0, seconds: 0 };

  const applier = options.applier ?? storeApplier(store);
  let statements: Statement[] = [];
  let pending = 0;
  const checkpoints = new Map<string, Checkpoint>();
  let inFlight: Promise<void> | undefined;
  const flush = async () => {
    if (pending === 0 && checkpoints.size === 0) return;
    const batch = statements;
    const marks = [...checkpoints.values()];
    const records = pending;
    statements = [];
    pending = 0;
    checkpoints.clear();
    const due = deferred?.due(batch) ?? [];
    // One batch in flight: this one waits for the one before (and throws what it threw).
    if (inFlight) await inFlight;
    inFlight = (async () => {
      const t0 = performance.now();
      if (due.length > 0) await applier.migrate(due);
      await applier.apply(batch, marks);
      options.onBatch?.({ records, statements: batch.length, commitMs: performance.now() - t0 });
    })();
    // Handled here so that a failure waits, unreported, for the next flush or the end to throw it.
    inFlight.catch(() => undefined);
    result.statements += batch.length;
  };

  for (const [topic, readers] of readersOf) {
    const ends = await log.endOffsets(topic);
    for (let partition = 0; partition < ends.length; partition++) {
      const key = `${topic}/${partition}`;
      const targets = readers.map((r) => {
        const limit = options.upTo?.get(r.projection.name);
        return limit ? Math.min(limit.get(key) ?? 0, ends[partition]) : ends[partition];
      });
      const to = Math.max(0, ...targets);
      const wanted = (offset: number, type: string | undefined) =>
        readers.some((r, i) => offset < targets[i] && (type === undefined || r.handles.has(type)));
      const note = (offset: number) =>
        readers.forEach((r, i) => {
          const next = Math.min(offset + 1, targets[i]);
          if (next > 0) checkpoints.set(`${r.projection.name}\u0000${key}`, { projection: r.projection.name, topic, partition, nextOffset: next });
        });
      if (to > 0) {
        for await (const batch of log.read(topic, partition, 0, to)) {
          for (const record of batch) {
            result.records++;
            pending++;
            const type = record.headers[HEADER_EVENT_TYPE];
            if (!wanted(record.offset, type)) continue;
            const event: EventEnvelope = decodeTrustedEvent(record.value);
            let applied = false;
            for (let i = 0; i < readers.length; i++) {
              const r = readers[i];
              if (record.offset >= targets[i] || !r.handles.has(event.type)) continue;
              const out = r.projection.apply(event, { topic, partition, offset: record.offset });
              for (const s of out) statements.push(s);
              applied = true;
            }
            if (applied) result.events++;
          }
          note(batch[batch.length - 1].offset);
          if (pending >= batchRecords) await flush();
        }
      }
      // Where each projection stopped: its target, though Kafka's last offsets may hold only a commit marker.
      readers.forEach((r, i) => {
        reached.get(r.projection.name)!.set(key, targets[i]);
        if (targets[i] > 0) checkpoints.set(`${r.projection.name}\u0000${key}`, { projection: r.projection.name, topic, partition, nextOffset: targets[i] });
      });
    }
  }
  await flush();
  await inFlight;
  if (deferred) await applier.migrate(deferred.rest());
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
