// Follows the compute events topic from the start and folds it into a ComputeView, for the
// conductor and the host agents (one feed can serve both in one process). It knows how far the
// fold has got in each partition, so a caller that had a command accepted can wait until its
// events are in the view before it decides again: no step is taken twice on a stale view.
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { ComputeView, type ComputeEvent } from '../../domains/compute/compute.view.js';
import { computeCodecFor } from '../codecs/compute.codec.js';
import type { Position } from '../envelope/envelope.js';
import { decodeEvent } from '../envelope/envelope.codec.js';
import type { Log, LogRecord, Subscription } from '../log/log.js';
import { HEADER_EVENT_TYPE } from '../runtime/partition-decider.js';
import { domainTopics, ensureDomainTopics, type TopologyOptions } from '../runtime/topology.js';

/** The events the view folds; the others (flavors, key pairs, metadata) are skipped undecoded. */
const FOLDED = new Set([
  'InstanceCreated', 'InstanceActionStarted', 'InstanceTaskChanged', 'InstanceRescheduled', 'InstanceHostAssigned', 'InstanceActionCompleted',
  'InstanceActionFailed', 'InstancePowerStateObserved', 'InstanceMigrationTargetReady',
  'HostRegistered', 'HostInventoryUpdated', 'HostHeartbeatRecorded', 'HostDisabled', 'HostEnabled', 'ResourcesClaimed', 'ResourcesReleased',
  'QuotaReserved', 'QuotaReleased',
  'ServerGroupCreated', 'ServerGroupMemberAdded', 'ServerGroupMemberRemoved', 'ServerGroupDeleted',
  'AggregateCreated', 'AggregateUpdated', 'AggregateHostAdded', 'AggregateHostRemoved', 'AggregateDeleted',
]);

/** A compute events record as the view and the audit fold it: the payload with where it came from. */
export function decodeComputeEvent(record: LogRecord): ComputeEvent {
  const envelope = decodeEvent(record.value);
  const payload = computeCodecFor(envelope.aggregateType).decodeEvent(envelope.type, envelope.payload) as unknown as Record<string, unknown>;
  return {
    ...payload,
    type: envelope.type,
    aggregateType: envelope.aggregateType,
    aggregateId: envelope.aggregateId,
    version: envelope.version,
    occurredAtMs: envelope.occurredAtMs,
  } as ComputeEvent;
}

export type FeedListener = (changed: ReadonlySet<string>) => void;

export class ComputeFeed {
  readonly view = new ComputeView();
  private readonly topic: string;
  /** Per partition: the offset after the last folded record. */
  private readonly folded = new Map<number, number>();
  /** Per partition, callers waiting for an offset to be folded. */
  private readonly waiters = new Map<number, { offset: number; resolve: () => void }[]>();
  private readonly listeners: FeedListener[] = [];
  private subscription: Subscription | undefined;
  private ready: Promise<void> | undefined;

  private constructor(readonly domain: string) {
    this.topic = domainTopics(domain).events;
  }

  /**
   * Starts folding; resolves once the view holds everything the log held at the start. The domain
   * is 'compute' but for tests that share one Kafka cluster and isolate themselves by name.
   */
  static async start(log: Log, topology: TopologyOptions, domain = COMPUTE_DOMAIN): Promise<ComputeFeed> {
    await ensureDomainTopics(log, domain, topology);
    const feed = new ComputeFeed(domain);
    const ends = await log.endOffsets(feed.topic);
    // Progress, not records alone: on Kafka a partition's end offset is often a commit marker.
    feed.subscription = await log.tail({
      topics: [feed.topic],
      from: 'earliest',
      onBatch: async (records) => feed.onBatch(records),
      onProgress: (_topic, partition, lastOffset) => feed.passed(partition, lastOffset + 1),
    });
    await Promise.all(ends.map((end, partition) => (end > 0 ? feed.reached(partition, end - 1) : undefined)));
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
      if (type !== undefined && !FOLDED.has(type)) continue;
      const event = decodeComputeEvent(r);
      if (!FOLDED.has(event.type)) continue;
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
