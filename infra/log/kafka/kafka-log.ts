// The Kafka log (kafkajs). Appends use an idempotent producer with acks=all; transactional
// writers use one transactional id each (per decider partition), which is how Kafka fences a
// zombie owner: initialising a producer with the same id bumps its epoch and aborts its open
// transaction. Every reader is read_committed.
import { randomUUID } from 'node:crypto';
import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaMessage,
  type Producer,
  type RecordMetadata,
} from 'kafkajs';
import type { Position } from '../../envelope/envelope.js';
import {
  FencedError,
  type GroupOptions,
  type Log,
  type LogRecord,
  type OutRecord,
  type Subscription,
  type TailOptions,
  type TopicSpec,
  type TransactionPlan,
  type TransactionalWriter,
} from '../log.js';

export interface KafkaLogOptions {
  brokers: string[];
  clientId?: string;
  /** Replication factor for topics that do not state one. */
  replicationFactor?: number;
  /** min.insync.replicas for new topics (2 with replication factor 3). */
  minInsyncReplicas?: number;
  /** How long a fetch waits for data when there is none (latency vs. idle load). */
  maxWaitTimeInMs?: number;
  sessionTimeoutMs?: number;
  transactionTimeoutMs?: number;
}

const FENCING_ERRORS = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);

function isFencing(e: unknown): boolean {
  for (let x = e as { type?: string; originalError?: unknown; cause?: unknown } | undefined; x; ) {
    if (x.type && FENCING_ERRORS.has(x.type)) return true;
    x = (x.originalError ?? x.cause) as typeof x;
  }
  return false;
}

const toHeaders = (h?: Record<string, string>): IHeaders | undefined => h;

// Errors of a topic whose metadata is still settling: just created, or its leader just moved.
const SETTLING_ERRORS = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/**
 * A topic just created reaches each broker's metadata at its own moment, and kafkajs does not
 * retry these everywhere (consumer subscribe, admin metadata, admin offsets): retry them here, briefly.
 */
async function retrySettling<T>(fn: () => Promise<T>, attempts = 50): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (!SETTLING_ERRORS.has((e as { type?: string }).type ?? '') || attempt >= attempts) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

function fromMessage(topic: string, partition: number, m: KafkaMessage): LogRecord {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    if (v !== undefined) headers[k] = Array.isArray(v) ? v[0]!.toString() : v.toString();
  }
  return {
    topic,
    partition,
    offset: Number(m.offset),
    key: m.key ? m.key.toString() : '',
    value: m.value ?? new Uint8Array(),
    headers,
    timestampMs: Number(m.timestamp),
  };
}

/** Positions of records sent in one request, from the per-partition base offsets Kafka returns. */
function positionsOf(records: OutRecord[], metadata: RecordMetadata[]): Position[] {
  const next = new Map<string, number>();
  for (const m of metadata) next.set(`${m.topicName}\u0000${m.partition}`, Number(m.baseOffset));
  return records.map((r) => {
    const k = `${r.topic}\u0000${r.partition}`;
    const offset = next.get(k);
    if (offset === undefined) throw new Error(`no offset returned for ${r.topic}/${r.partition}`);
    next.set(k, offset + 1);
    return { topic: r.topic, partition: r.partition, offset };
  });
}

const topicMessages = (records: OutRecord[]) => {
  const byTopic = new Map<string, { key: string; value: Buffer; partition: number; headers?: IHeaders }[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push({
      key: r.key,
      value: Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength),
      partition: r.partition,
      headers: toHeaders(r.headers),
    });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
};

export class KafkaLog implements Log {
  readonly backend = 'kafka' as const;
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private producer: Producer | undefined;
  private readonly partitionCounts = new Map<string, number>();
  private readonly closers = new Set<() => Promise<void>>();
  private pending: { records: OutRecord[]; resolve: (p: Position[]) => void; reject: (e: unknown) => void }[] = [];
  private flushScheduled = false;

  constructor(private readonly options: KafkaLogOptions) {
    this.kafka = new Kafka({
      clientId: options.clientId ?? 'strata',
      brokers: options.brokers,
      // kafkajs logs every retried protocol error at ERROR; errors that matter reach us as exceptions.
      logLevel: process.env.STRATA_KAFKA_LOG_LEVEL === 'debug' ? logLevel.DEBUG : logLevel.NOTHING,
      // About 30 s of retries: longer than a broker failover (session timeout, then election).
      retry: { retries: 18, initialRetryTime: 100, maxRetryTime: 2000 },
      connectionTimeout: 3000,
      requestTimeout: 30000,
    });
  }

  private async getAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }

  private async getProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      this.producer = producer;
    }
    return this.producer;
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    const admin = await this.getAdmin();
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((s) => !existing.has(s.name));
    if (missing.length > 0) {
      await admin.createTopics({
        // kafkajs's own wait gives up on the transient UNKNOWN_TOPIC_OR_PARTITION: we poll below.
        waitForLeaders: false,
        topics: missing.map((s) => {
          const rf = s.replicationFactor ?? this.options.replicationFactor ?? 1;
          const configEntries = [{ name: 'min.insync.replicas', value: String(this.options.minInsyncReplicas ?? Math.min(2, rf)) }];
          // Compacted topics keep "delete" too, with no retention, only so that DeleteRecords
          // (truncate) is allowed on them: Kafka refuses it under a compact-only policy.
          if (s.compacted) configEntries.push({ name: 'cleanup.policy', value: 'compact,delete' });
          configEntries.push({ name: 'retention.ms', value: '-1' }, { name: 'retention.bytes', value: '-1' });
          return { topic: s.name, numPartitions: s.partitions, replicationFactor: rf, configEntries };
        }),
      }).catch((e: { type?: string }) => {
        if (e.type !== 'TOPIC_ALREADY_EXISTS') throw e;
      });
    }
    await this.waitForLeaders(missing.map((s) => s.name));
    for (const s of specs) {
      const partitions = await this.partitionCount(s.name);
      if (partitions !== s.partitions) {
        throw new Error(`topic ${s.name} exists with ${partitions} partitions, asked for ${s.partitions}`);
      }
    }
  }

  private async waitForLeaders(topics: string[], timeoutMs = 60_000): Promise<void> {
    if (topics.length === 0) return;
    const admin = await this.getAdmin();
    const deadline = Date.now() + timeoutMs;
    // Metadata requests go to any broker: a few answers in a row make it likely that all know.
    for (let good = 0; ; ) {
      try {
        const meta = await admin.fetchTopicMetadata({ topics });
        if (meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) {
          if (++good >= 3) return;
          continue;
        }
        good = 0;
      } catch (e) {
        good = 0;
        if (Date.now() > deadline) throw e;
      }
      if (Date.now() > deadline) throw new Error(`topics ${topics.join(', ')} have no leaders after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async partitionCount(topic: string): Promise<number> {
    let n = this.partitionCounts.get(topic);
    if (n === undefined) {
      const admin = await this.getAdmin();
      const meta = await retrySettling(() => admin.fetchTopicMetadata({ topics: [topic] }));
      n = meta.topics[0]!.partitions.length;
      this.partitionCounts.set(topic, n);
    }
    return n;
  }

  append(records: OutRecord[]): Promise<Position[]> {
    // Concurrent appends in one tick travel in one produce request.
    return new Promise((resolve, reject) => {
      this.pending.push({ records, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.pending;
    this.pending = [];
    const all = batch.flatMap((b) => b.records);
    try {
      const producer = await this.getProducer();
      // One request per partition: kafkajs retries a multi-partition request whole, after it has
      // advanced the idempotence sequence of the partitions that succeeded, and so duplicates
      // them. A single-partition request is retried all or nothing, which idempotence dedups.
      const groups = new Map<string, { records: OutRecord[]; indexes: number[] }>();
      all.forEach((r, i) => {
        const k = `${r.topic}\u0000${r.partition}`;
        const g = groups.get(k) ?? { records: [], indexes: [] };
        g.records.push(r);
        g.indexes.push(i);
        groups.set(k, g);
      });
      const positions: Position[] = new Array(all.length);
      await Promise.all(
        [...groups.values()].map(async (g) => {
          const metadata = await producer.sendBatch({ acks: -1, topicMessages: topicMessages(g.records) });
          positionsOf(g.records, metadata).forEach((p, j) => (positions[g.indexes[j]] = p));
        }),
      );
      let i = 0;
      for (const b of batch) {
        b.resolve(positions.slice(i, i + b.records.length));
        i += b.records.length;
      }
    } catch (e) {
      for (const b of batch) b.reject(e);
    }
  }

  private async topicOffsets(topic: string) {
    const admin = await this.getAdmin();
    // The shared admin's metadata may name a leader that has just moved, and kafkajs does not
    // refresh it for this call: a retry asks through a fresh client (fresh metadata).
    return admin.fetchTopicOffsets(topic).catch((e: { type?: string }) => {
      if (!SETTLING_ERRORS.has(e.type ?? '')) throw e;
      return retrySettling(async () => {
        const fresh = this.kafka.admin();
        await fresh.connect();
        try {
          return await fresh.fetchTopicOffsets(topic);
        } finally {
          await fresh.disconnect().catch(() => undefined);
        }
      });
    });
  }

  async endOffsets(topic: string): Promise<number[]> {
    const offsets = await this.topicOffsets(topic); // read_committed: `high` is the last stable offset
    const out: number[] = [];
    for (const o of offsets) out[o.partition] = Number(o.high);
    return out;
  }

  /**
   * A consumer in a group of its own: it gets every partition, and we position it ourselves.
   * Records below a partition's cursor are dropped, so a late seek cannot deliver old records.
   */
  private async follow(
    topics: string[],
    cursors: Map<string, number>,
    onBatch: (records: LogRecord[]) => Promise<void>,
    onlyPartitions?: number[],
    /** Every fetched batch's last offset, transaction markers included. */
    onProgress?: (topic: string, partition: number, lastOffset: number) => void,
  ): Promise<Subscription> {
    const consumer = this.kafka.consumer({
      groupId: `strata-follow-${randomUUID()}`,
      maxWaitTimeInMs: this.options.maxWaitTimeInMs ?? 20,
      sessionTimeout: this.options.sessionTimeoutMs ?? 10000,
      heartbeatInterval: 1000,
      retry: { retries: 10 },
    });
    if (onProgress) {
      consumer.on(consumer.events.END_BATCH_PROCESS, (e) => onProgress(e.payload.topic, e.payload.partition, Number(e.payload.lastOffset)));
    }
    await consumer.connect();
    for (const topic of topics) await retrySettling(() => consumer.subscribe({ topic, fromBeginning: true }));
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch }: EachBatchPayload) => {
        const key = `${batch.topic}/${batch.partition}`;
        const cursor = cursors.get(key);
        if (cursor === undefined) return; // a partition we do not follow
        const records = batch.messages
          .filter((m) => Number(m.offset) >= cursor)
          .map((m) => fromMessage(batch.topic, batch.partition, m));
        if (records.length === 0) return;
        await onBatch(records);
        cursors.set(key, records[records.length - 1].offset + 1);
      },
    });
    for (const [key, offset] of cursors) {
      const slash = key.lastIndexOf('/');
      consumer.seek({ topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)), offset: String(offset) });
    }
    if (onlyPartitions) {
      for (const topic of topics) {
        const n = await this.partitionCount(topic);
        const others = [...Array(n).keys()].filter((p) => !onlyPartitions.includes(p));
        if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
      }
    }
    const close = async () => {
      this.closers.delete(close);
      await consumer.disconnect();
    };
    this.closers.add(close);
    return { close };
  }

  async tail(options: TailOptions): Promise<Subscription> {
    const cursors = new Map<string, number>();
    for (const topic of options.topics) {
      const ends = options.from === 'latest' ? await this.endOffsets(topic) : undefined;
      const n = await this.partitionCount(topic);
      for (let p = 0; p < n; p++) {
        if (options.partitions && !options.partitions.includes(p)) continue;
        const from = options.from;
        cursors.set(`${topic}/${p}`, from === 'earliest' ? 0 : from === 'latest' ? ends![p] : from(topic, p));
      }
    }
    return this.follow(options.topics, cursors, options.onBatch, options.partitions, options.onProgress);
  }

  async *read(topic: string, partition: number, from: number, to: number): AsyncIterable<LogRecord[]> {
    // Records below the log start offset are gone (retention, truncate): start where data begins.
    const low = Number((await this.topicOffsets(topic)).find((o) => o.partition === partition)?.low ?? 0);
    from = Math.max(from, low);
    if (from >= to) return;
    const queue: LogRecord[][] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const cursors = new Map([[`${topic}/${partition}`, from]]);
    const sub = await this.follow(
      [topic],
      cursors,
      async (records) => {
        const inRange = records.filter((r) => r.offset < to);
        if (inRange.length > 0) queue.push(inRange);
        wake?.();
      },
      [partition],
      // Transaction markers occupy offsets: the end is reached when a fetched batch passes it.
      (_topic, p, lastOffset) => {
        if (p === partition && lastOffset >= to - 1) {
          done = true;
          wake?.();
        }
      },
    );
    try {
      while (true) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (done) break;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      await sub.close();
    }
  }

  async joinGroup(options: GroupOptions): Promise<Subscription> {
    const partitions = await this.partitionCount(options.topic);
    const consumer: Consumer = this.kafka.consumer({
      groupId: options.groupId,
      maxWaitTimeInMs: this.options.maxWaitTimeInMs ?? 20,
      sessionTimeout: this.options.sessionTimeoutMs ?? 10000,
      heartbeatInterval: 1000,
      readUncommitted: false,
      retry: { retries: 5 },
    });
    const assigned = new Set<number>();
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      const mine = new Set(e.payload.memberAssignment[options.topic] ?? []);
      for (const p of [...assigned]) {
        if (!mine.has(p)) {
          assigned.delete(p);
          void options.onRevoked(p).catch((err) => options.onError?.(err as Error));
        }
      }
    });
    consumer.on(consumer.events.CRASH, (e) => options.onError?.(e.payload.error));
    await consumer.connect();
    await retrySettling(() => consumer.subscribe({ topic: options.topic, fromBeginning: true }));
    await consumer.run({
      autoCommit: false,
      partitionsConsumedConcurrently: partitions,
      eachBatch: async ({ batch }) => {
        const p = batch.partition;
        if (!assigned.has(p)) {
          await options.onAssigned(p);
          assigned.add(p);
        }
        const records = batch.messages.map((m) => fromMessage(batch.topic, p, m));
        if (records.length === 0) return;
        try {
          await options.onBatch(p, records);
        } catch (e) {
          if (e instanceof FencedError) {
            assigned.delete(p);
            await options.onRevoked(p);
          }
          throw e; // kafkajs retries, then restarts the consumer from the committed offsets
        }
      },
    });
    const close = async () => {
      this.closers.delete(close);
      await consumer.disconnect();
      for (const p of assigned) await options.onRevoked(p);
      assigned.clear();
    };
    this.closers.add(close);
    return { close };
  }

  async transactionalWriter(transactionalId: string): Promise<TransactionalWriter> {
    const producer = this.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.options.transactionTimeoutMs ?? 30000,
      // The coordinator answers CONCURRENT_TRANSACTIONS until the previous commit's markers are
      // written (a few ms): retry soon, not after the default 100+ ms.
      // About 30 s in all, to outlast a broker failover.
      retry: { initialRetryTime: 5, maxRetryTime: 500, retries: 70, factor: 0.2, multiplier: 1.5 },
    });
    await producer.connect();
    // InitProducerId happens on the first transaction: that is the moment we fence older owners.
    const init = await producer.transaction();
    await init.abort();
    let fenced = false;
    const close = async () => {
      this.closers.delete(close);
      await producer.disconnect().catch(() => undefined);
    };
    this.closers.add(close);
    return {
      commit: async (plan: TransactionPlan) => {
        if (fenced) throw new FencedError(transactionalId);
        const txn = await producer.transaction();
        try {
          const positions =
            plan.records.length > 0
              ? positionsOf(plan.records, await txn.sendBatch({ acks: -1, topicMessages: topicMessages(plan.records) }))
              : [];
          // The decider's records (events) sit on one partition, so a retry of them is all or nothing.
          // The dependent records (replies, changelog) span partitions: kafkajs may duplicate some
          // on a partial retry, which is harmless there (replies are matched once by command id;
          // changelog entries are compacted by key and carry the same value).
          const more = plan.then?.(positions) ?? [];
          if (more.length > 0) await txn.sendBatch({ acks: -1, topicMessages: topicMessages(more) });
          const byGroup = new Map<string, { topic: string; partitions: { partition: number; offset: string }[] }[]>();
          for (const o of plan.offsets) {
            const list = byGroup.get(o.groupId) ?? [];
            list.push({ topic: o.topic, partitions: [{ partition: o.partition, offset: String(o.nextOffset) }] });
            byGroup.set(o.groupId, list);
          }
          for (const [consumerGroupId, topics] of byGroup) await txn.sendOffsets({ consumerGroupId, topics });
          await txn.commit();
          return positions;
        } catch (e) {
          if (isFencing(e)) {
            fenced = true;
            throw new FencedError(transactionalId, (e as Error).message);
          }
          await txn.abort().catch(() => undefined);
          throw e;
        }
      },
      close,
    };
  }

  async truncate(topic: string): Promise<void> {
    const admin = await this.getAdmin();
    const ends = await this.topicOffsets(topic);
    await admin.deleteTopicRecords({ topic, partitions: ends.map((o) => ({ partition: o.partition, offset: o.high })) });
  }

  /** Deletes every topic whose name contains `fragment` (a test's or a retired domain's topics). */
  async deleteTopicsContaining(fragment: string): Promise<string[]> {
    const admin = await this.getAdmin();
    const topics = (await admin.listTopics()).filter((t) => t.includes(fragment));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
    for (const t of topics) this.partitionCounts.delete(t);
    return topics;
  }

  async close(): Promise<void> {
    for (const c of [...this.closers]) await c().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
  }
}
