// Follows a domain's events topic from the start and folds it into a view, for the process
// managers and host agents (one feed can serve several in one process). It knows how far the fold
// has got in each partition, so a caller that had a command accepted can wait until its events are
// in the view before it decides again: no step is taken twice on a stale view.
import type { Position } from '../envelope/envelope.js';
import { decodeEvent } from '../envelope/envelope.codec.js';
import type { Log, LogRecord, Subscription } from '../log/log.js';
import { HEADER_EVENT_TYPE } from '../runtime/partition-decider.js';
import { domainTopics, ensureDomainTopics, type TopologyOptions } from '../runtime/topology.js';

export type FeedListener = (changed: ReadonlySet<string>) => void;

/** A view a feed folds events into: apply returns the id of what the event changed, if anything. */
export interface FoldedView<E> {
  apply(event: E): string | undefined;
}

/** A decoded event: its payload with the envelope's type, aggregate and version. */
export type DecodedEvent = Record<string, any> & { type: string; aggregateType: string; aggregateId: string; version: number; occurredAtMs: number };

/** Decodes an events record with the domain's codec of its aggregate type. */
export function decodeDomainEvent(record: LogRecord, codecFor: (aggregateType: string) => { decodeEvent(type: string, payload: Uint8Array): unknown }): DecodedEvent {
  const envelope = decodeEvent(record.value);
  const payload = codecFor(envelope.aggregateType).decodeEvent(envelope.type, envelope.payload) as Record<string, unknown>;
  return {
    ...payload,
    type: envelope.type,
    aggregateType: envelope.aggregateType,
    aggregateId: envelope.aggregateId,
    version: envelope.version,
    occurredAtMs: envelope.occurredAtMs,
  };
}

export interface DomainFeedOptions<E> {
  log: Log;
  topology: TopologyOptions;
  domain: string;
  /** The event types the view folds; the others are skipped undecoded. */
  folded: ReadonlySet<string>;
  decode: (record: LogRecord) => E;
}

export class DomainFeed<V extends FoldedView<E>, E extends { type: string }> {
  private readonly topic: string;
  /** Per partition: the offset after the last folded record. */
  private readonly folded = new Map<number, number>();
  /** Per partition, callers waiting for an offset to be folded. */
  private readonly waiters = new Map<number, { offset: number; resolve: () => void }[]>();
  private readonly listeners: FeedListener[] = [];
  private subscription: Subscription | undefined;

  protected constructor(
    readonly domain: string,
    readonly view: V,
    private readonly types: ReadonlySet<string>,
    private readonly decode: (record: LogRecord) => E,
  ) {
    this.topic = domainTopics(domain).events;
  }

  /** Starts folding; resolves once the view holds everything the log held at the start. */
  protected async begin(log: Log, topology: TopologyOptions): Promise<void> {
    await ensureDomainTopics(log, this.domain, topology);
    const ends = await log.endOffsets(this.topic);
    // Progress, not records alone: on Kafka a partition's end offset is often a commit marker.
    this.subscription = await log.tail({
      topics: [this.topic],
      from: 'earliest',
      onBatch: async (records) => this.onBatch(records),
      onProgress: (_topic, partition, lastOffset) => this.passed(partition, lastOffset + 1),
    });
    await Promise.all(ends.map((end, partition) => (end > 0 ? this.reached(partition, end - 1) : undefined)));
  }

  /** A feed of `view`, started and caught up with the log. */
  static async follow<V extends FoldedView<E>, E extends { type: string }>(view: V, o: DomainFeedOptions<E>): Promise<DomainFeed<V, E>> {
    const feed = new DomainFeed(o.domain, view, o.folded, o.decode);
    await feed.begin(o.log, o.topology);
    return feed;
  }

  onChange(listener: FeedListener): void {
    this.listeners.push(listener);
  }

  private onBatch(records: LogRecord[]): void {
    const changed = new Set<string>();
    for (const r of records) {
      this.folded.set(r.partition, Math.max(this.folded.get(r.partition) ?? 0, r.offset + 1));
      const type = r.headers[HEADER_EVENT_TYPE];
      if (type !== undefined && !this.types.has(type)) continue;
      const event = this.decode(r);
      if (!this.types.has(event.type)) continue;
      const id = this.view.apply(event);
      if (id) changed.add(id);
    }
    this.wake();
    if (changed.size > 0) for (const l of this.listeners) l(changed);
  }

  /** The tail has passed every offset of `partition` below `next` (records and transaction markers). */
  private passed(partition: number, next: number): void {
    if (next <= (this.folded.get(partition) ?? 0)) return;
    this.folded.set(partition, next);
    this.wake();
  }

  private wake(): void {
    for (const [partition, list] of this.waiters) {
      const folded = this.folded.get(partition) ?? 0;
      const still = list.filter((w) => w.offset >= folded);
      if (still.length === list.length) continue;
      for (const w of list) if (w.offset < folded) w.resolve();
      if (still.length > 0) this.waiters.set(partition, still);
      else this.waiters.delete(partition);
    }
  }

  /** Resolves once the record at `offset` of `partition` is folded. */
  reached(partition: number, offset: number): Promise<void> {
    if ((this.folded.get(partition) ?? 0) > offset) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(partition) ?? [];
      list.push({ offset, resolve });
      this.waiters.set(partition, list);
    });
  }

  /** Resolves once the events of an accepted command (first at `position`, `count` of them) are folded. */
  async caughtUp(position: Position | undefined, count: number): Promise<void> {
    if (!position || count === 0) return;
    await this.reached(position.partition, position.offset + count - 1);
  }

  async close(): Promise<void> {
    await this.subscription?.close();
    for (const list of this.waiters.values()) for (const w of list) w.resolve();
    this.waiters.clear();
  }
}
