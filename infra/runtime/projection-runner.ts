// Runs a projection: follows its events topics from the stored checkpoint, turns each handled
// event into statements (a pure fold), and applies them with the new checkpoint in one store
// transaction. rebuild() replays from offset 0 into a store, as invariant 1 requires.
import { SpanKind } from '@opentelemetry/api';
import type { EventEnvelope, Position } from '../envelope/envelope.js';
import { decodeTrustedEvent } from '../envelope/envelope.trusted.js';
import type { Log, LogRecord, Subscription } from '../log/log.js';
import type { Statement, Store } from '../store/store.js';
import { contextFrom, meter, tracer } from '../telemetry/telemetry.js';
import { HEADER_EVENT_TYPE } from './partition-decider.js';

export interface Projection {
  name: string;
  /** Events topics it folds. */
  topics: string[];
  /** The event types it handles; all others are skipped without decoding. */
  handles: readonly string[];
  /** Portable DDL (CREATE TABLE IF NOT EXISTS ...). */
  schema: string[];
  /** Its tables, emptied by a rebuild in place. */
  tables: string[];
  /** Pure: an event and where it sits in the log, to statements. */
  apply(event: EventEnvelope, position: Position): Statement[];
  /**
   * For a projection that keeps a fold in memory beside its rows (metering's open usage): loads
   * it from the store. Called at start, after a rebuild's reset, and after a batch failed to
   * commit (the fold had seen events whose rows were not written). Such a projection is made per
   * runner (a factory), never shared.
   */
  restore?(store: Store): Promise<void>;
}

export class ProjectionRunner {
  private subscription: Subscription | undefined;
  private readonly applied = new Map<string, number>();
  private readonly handles: Set<string>;
  private readonly waiting: { key: string; offset: number; resolve: () => void }[] = [];

  constructor(
    private readonly log: Log,
    private readonly store: Store,
    private readonly projection: Projection,
  ) {
    this.handles = new Set(projection.handles);
  }

  private readonly lagGauge = meter().createObservableGauge('strata.projection.lag', {
    description: 'Events in the log not yet applied by the projection',
  });
  private readonly observeLag = async (result: { observe: (value: number, attributes: Record<string, string>) => void }) =>
    result.observe(await this.lag(), { projection: this.projection.name });

  async start(): Promise<void> {
    await this.store.migrate(this.projection.schema);
    await this.projection.restore?.(this.store);
    const checkpoints = await this.store.checkpoints(this.projection.name);
    for (const [k, v] of checkpoints) this.applied.set(k, v);
    this.subscription = await this.log.tail({
      topics: this.projection.topics,
      from: (topic, partition) => checkpoints.get(`${topic}/${partition}`) ?? 0,
      onBatch: (records) => this.applyBatch(records),
    });
    this.lagGauge.addCallback(this.observeLag);
  }

  private readonly listeners: ((events: EventEnvelope[]) => Promise<void> | void)[] = [];

  /**
   * Called after each batch is committed to the store, with the events it handled, before
   * waitFor() resolves: for in-memory indexes kept beside the rows (the token revocation list).
   */
  onApplied(listener: (events: EventEnvelope[]) => Promise<void> | void): void {
    this.listeners.push(listener);
  }

  /** Statements for a batch of records, and the events they came from. */
  private statementsFor(records: LogRecord[], handled: EventEnvelope[]): Statement[] {
    const statements: Statement[] = [];
    for (const r of records) {
      const type = r.headers[HEADER_EVENT_TYPE];
      if (type !== undefined && !this.handles.has(type)) continue;
      // The log's own records: the wire format read straight into the envelope (see envelope.trusted.ts).
      const event = decodeTrustedEvent(r.value);
      if (!this.handles.has(event.type)) continue;
      const span = tracer().startSpan(
        `project ${this.projection.name} ${event.type}`,
        {
          kind: SpanKind.CONSUMER,
          attributes: { 'strata.projection': this.projection.name, 'strata.event_id': event.eventId },
        },
        contextFrom({ traceparent: event.traceparent, tracestate: event.tracestate }),
      );
      handled.push(event);
      try {
        statements.push(...this.projection.apply(event, { topic: r.topic, partition: r.partition, offset: r.offset }));
      } finally {
        span.end();
      }
    }
    return statements;
  }

  private async applyBatch(records: LogRecord[]): Promise<void> {
    const handled: EventEnvelope[] = [];
    const last = new Map<string, { topic: string; partition: number; offset: number }>();
    for (const r of records) last.set(`${r.topic}/${r.partition}`, r);
    const checkpoints = [...last.values()].map((r) => ({
      projection: this.projection.name,
      topic: r.topic,
      partition: r.partition,
      nextOffset: r.offset + 1,
    }));
    try {
      await this.store.apply(this.statementsFor(records, handled), checkpoints);
    } catch (e) {
      await this.projection.restore?.(this.store);
      throw e;
    }
    if (handled.length > 0) for (const l of this.listeners) await l(handled);
    for (const c of checkpoints) this.applied.set(`${c.topic}/${c.partition}`, c.nextOffset);
    this.releaseWaiters();
  }

  private releaseWaiters(): void {
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const w = this.waiting[i];
      if ((this.applied.get(w.key) ?? 0) > w.offset) {
        this.waiting.splice(i, 1);
        w.resolve();
      }
    }
  }

  /** Resolves once the record at `position` is reflected in the store. */
  waitFor(position: Position): Promise<void> {
    const key = `${position.topic}/${position.partition}`;
    if ((this.applied.get(key) ?? 0) > position.offset) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ key, offset: position.offset, resolve }));
  }

  /** Events in the log not yet applied. */
  async lag(): Promise<number> {
    let lag = 0;
    for (const topic of this.projection.topics) {
      const ends = await this.log.endOffsets(topic);
      ends.forEach((end, p) => (lag += Math.max(0, end - (this.applied.get(`${topic}/${p}`) ?? 0))));
    }
    return lag;
  }

  async stop(): Promise<void> {
    this.lagGauge.removeCallback(this.observeLag);
    await this.subscription?.close();
    this.subscription = undefined;
  }

  /**
   * Replays the projection from offset 0 into `store` (emptied first), and returns where it
   * stopped. By default up to the current end of its topics; with `upTo` (next offsets keyed
   * `${topic}/${partition}`, as checkpoints are; a partition it does not name: none of it) exactly
   * that far, or the end of a partition that is shorter.
   */
  static async rebuild(log: Log, store: Store, projection: Projection, upTo?: Map<string, number>): Promise<Map<string, number>> {
    const runner = new ProjectionRunner(log, store, projection);
    await store.migrate(projection.schema);
    await store.reset(projection.name, projection.tables);
    await projection.restore?.(store);
    const reached = new Map<string, number>();
    for (const topic of projection.topics) {
      const ends = await log.endOffsets(topic);
      for (let p = 0; p < ends.length; p++) {
        const key = `${topic}/${p}`;
        const to = upTo ? Math.min(upTo.get(key) ?? 0, ends[p]) : ends[p];
        for await (const batch of log.read(topic, p, 0, to)) await runner.applyBatch(batch);
        reached.set(key, to);
      }
    }
    return reached;
  }
}
