// The one Log interface. Two adapters implement it: embedded (one SQLite file) and kafka
// (kafkajs). Domains and projections never see which one runs; the contract suite in
// log.contract.test.ts holds both to the same behaviour.
import type { Position } from '../envelope/envelope.js';

export interface TopicSpec {
  name: string;
  partitions: number;
  /** Kafka replication factor; ignored by the embedded log (one node). */
  replicationFactor?: number;
  /** Keep only the latest record per key (decider changelogs). */
  compacted?: boolean;
}

export interface LogRecord {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  value: Uint8Array;
  headers: Record<string, string>;
  timestampMs: number;
}

export interface OutRecord {
  topic: string;
  /** Always explicit: callers place records with partitionForKey, so both backends agree. */
  partition: number;
  key: string;
  value: Uint8Array;
  headers?: Record<string, string>;
}

export interface OffsetCommit {
  groupId: string;
  topic: string;
  partition: number;
  /** The next offset the group will read (last processed + 1). */
  nextOffset: number;
}

export interface TransactionPlan {
  records: OutRecord[];
  /** Records that depend on where `records` landed (a reply naming its events' position). */
  then?: (positions: Position[]) => OutRecord[];
  offsets: OffsetCommit[];
}

/**
 * A fenced, transactional writer. Opening one with a transactionalId fences every earlier
 * writer with the same id: their next commit throws FencedError and writes nothing. A commit
 * makes all its records and offsets visible at once, or none of them.
 */
export interface TransactionalWriter {
  commit(plan: TransactionPlan): Promise<Position[]>;
  close(): Promise<void>;
}

export type StartFrom = 'earliest' | 'latest' | ((topic: string, partition: number) => number);

export interface TailOptions {
  topics: string[];
  /** Only these partitions (same list for every topic); all when absent. */
  partitions?: number[];
  from: StartFrom;
  /** Called with committed records, in offset order per partition; the next batch waits for it. */
  onBatch: (records: LogRecord[]) => Promise<void>;
  /**
   * Called once the tail has passed every offset of a partition up to `lastOffset`: records it
   * delivered and offsets that hold none (Kafka's transaction markers) alike. How a reader knows
   * it has reached an end offset (endOffsets) that a commit marker ends.
   */
  onProgress?: (topic: string, partition: number, lastOffset: number) => void;
}

export interface GroupOptions {
  groupId: string;
  topic: string;
  /** Called before the first batch of a newly owned partition. */
  onAssigned: (partition: number) => Promise<void>;
  /** Called when a partition is taken away; its in-flight work must not commit after this. */
  onRevoked: (partition: number) => Promise<void>;
  /** Records of one partition in offset order, starting at the group's committed offset. */
  onBatch: (partition: number, records: LogRecord[]) => Promise<void>;
  /** Called when processing stopped on an error the member could not absorb. */
  onError?: (error: Error) => void;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface Log {
  readonly backend: 'embedded' | 'kafka';
  ensureTopics(specs: TopicSpec[]): Promise<void>;
  partitionCount(topic: string): Promise<number>;
  /** Idempotent, durable append (acks=all on Kafka). Positions in input order. */
  append(records: OutRecord[]): Promise<Position[]>;
  /** Per partition, the offset after the last committed record (Kafka: last stable offset). */
  endOffsets(topic: string): Promise<number[]>;
  /** Committed records of one partition in [from, to). */
  read(topic: string, partition: number, from: number, to: number): AsyncIterable<LogRecord[]>;
  /** Follows topics without a consumer group (projections, reply channels). */
  tail(options: TailOptions): Promise<Subscription>;
  /** Shares a topic's partitions among the members of a group; offsets come from transactions. */
  joinGroup(options: GroupOptions): Promise<Subscription>;
  transactionalWriter(transactionalId: string): Promise<TransactionalWriter>;
  /**
   * Deletes every committed record of a topic; offsets are never reused. For derived topics only
   * (a decider changelog an operator wants rebuilt from the events); never for events.
   */
  truncate(topic: string): Promise<void>;
  close(): Promise<void>;
}

/** Thrown by a commit from a writer that a newer writer with the same id has fenced. */
export class FencedError extends Error {
  constructor(transactionalId: string, detail = '') {
    super(`writer ${transactionalId} was fenced by a newer owner${detail ? `: ${detail}` : ''}`);
    this.name = 'FencedError';
  }
}
