// The embedded log: a durable single-node log in one SQLite file (WAL mode). Several processes
// may open the same file: SQLite serialises writers, readers see only committed transactions,
// and `PRAGMA data_version` tells a process that another one has committed.
//
// Group membership uses leases (a row per partition with an expiry renewed by heartbeats);
// fencing uses writer epochs: opening a transactional writer bumps the epoch of its id, and a
// commit checks the epoch inside the same SQLite transaction that writes records and offsets.
import Database from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Position } from '../../envelope/envelope.js';
import {
  FencedError,
  type GroupOptions,
  type Log,
  type LogRecord,
  type OffsetCommit,
  type OutRecord,
  type StartFrom,
  type Subscription,
  type TailOptions,
  type TopicSpec,
  type TransactionPlan,
  type TransactionalWriter,
} from '../log.js';

export interface EmbeddedLogOptions {
  path: string;
  /** FULL survives power loss; NORMAL survives a killed process (WAL) and is faster. */
  synchronous?: 'FULL' | 'NORMAL';
  /** How often an idle reader checks for commits made by other processes. */
  pollIntervalMs?: number;
  /** A group member whose lease is not renewed within this time loses its partitions. */
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  maxBatchRecords?: number;
}

interface RecordRow {
  topic: string;
  partition: number;
  offset: number;
  key: string;
  value: Buffer;
  headers: string | null;
  ts: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS topics (
  name TEXT PRIMARY KEY, partitions INTEGER NOT NULL, compacted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS heads (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  topic TEXT NOT NULL, partition INTEGER NOT NULL, offset INTEGER NOT NULL,
  key TEXT NOT NULL, value BLOB NOT NULL, headers TEXT, ts INTEGER NOT NULL,
  PRIMARY KEY (topic, partition, offset)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_offsets (
  group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
  PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS writers (transactional_id TEXT PRIMARY KEY, epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS group_members (
  group_id TEXT NOT NULL, member_id TEXT NOT NULL, heartbeat_ms INTEGER NOT NULL,
  PRIMARY KEY (group_id, member_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partition_leases (
  group_id TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
  member_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
  PRIMARY KEY (group_id, topic, partition)) WITHOUT ROWID;
`;

export class EmbeddedLog implements Log {
  readonly backend = 'embedded' as const;
  private readonly db: Database.Database;
  private readonly changes = new EventEmitter();
  private readonly topics = new Map<string, { partitions: number; compacted: boolean }>();
  private readonly pollIntervalMs: number;
  private readonly sessionTimeoutMs: number;
  private readonly heartbeatIntervalMs: number;
  private readonly maxBatchRecords: number;
  private dataVersion = 0;
  private poller: NodeJS.Timeout | undefined;
  private waiters = 0;
  private closed = false;
  private readonly subscriptions = new Set<Subscription>();
  private pendingAppends: { records: OutRecord[]; resolve: (p: Position[]) => void; reject: (e: unknown) => void }[] = [];
  private appendScheduled = false;
  private pendingCommits: {
    transactionalId: string;
    epoch: number;
    plan: TransactionPlan;
    resolve: (p: Position[]) => void;
    reject: (e: unknown) => void;
  }[] = [];
  private commitScheduled = false;

  private readonly stmt: {
    head: Database.Statement;
    advanceHead: Database.Statement;
    insert: Database.Statement;
    read: Database.Statement;
    commitOffset: Database.Statement;
    epoch: Database.Statement;
  };

  constructor(options: EmbeddedLogOptions) {
    mkdirSync(dirname(options.path), { recursive: true });
    this.db = new Database(options.path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(SCHEMA);
    this.pollIntervalMs = options.pollIntervalMs ?? 2;
    this.sessionTimeoutMs = options.sessionTimeoutMs ?? 6000;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs ?? Math.max(50, Math.floor(this.sessionTimeoutMs / 4));
    this.maxBatchRecords = options.maxBatchRecords ?? 1000;
    this.changes.setMaxListeners(0);
    this.stmt = {
      head: this.db.prepare('SELECT next_offset FROM heads WHERE topic = ? AND partition = ?').pluck(),
      advanceHead: this.db
        .prepare('UPDATE heads SET next_offset = next_offset + ? WHERE topic = ? AND partition = ? RETURNING next_offset')
        .pluck(),
      insert: this.db.prepare(
        'INSERT INTO records (topic, partition, offset, key, value, headers, ts) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      read: this.db.prepare(
        'SELECT topic, partition, offset, key, value, headers, ts FROM records WHERE topic = ? AND partition = ? AND offset >= ? AND offset < ? ORDER BY offset LIMIT ?',
      ),
      commitOffset: this.db.prepare(
        `INSERT INTO group_offsets (group_id, topic, partition, next_offset) VALUES (?, ?, ?, ?)
         ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
      ),
      epoch: this.db.prepare('SELECT epoch FROM writers WHERE transactional_id = ?').pluck(),
    };
    this.dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    this.compact();
  }

  /**
   * Compacted topics are written append-only (random-key upserts would dirty a page per record)
   * and cleaned here, as Kafka's log cleaner does lazily: every record superseded by a later one
   * with the same key goes; the latest per key and all offsets stay as they were.
   */
  compact(): number {
    const topics = this.db.prepare('SELECT name FROM topics WHERE compacted = 1').pluck().all() as string[];
    let removed = 0;
    for (const topic of topics) {
      removed += this.db
        .prepare(
          `DELETE FROM records WHERE topic = ? AND (partition, offset) NOT IN
             (SELECT partition, max(offset) FROM records WHERE topic = ? GROUP BY partition, key)`,
        )
        .run(topic, topic).changes;
    }
    return removed;
  }

  async ensureTopics(specs: TopicSpec[]): Promise<void> {
    const tx = this.db.transaction(() => {
      for (const spec of specs) {
        if (!Number.isInteger(spec.partitions) || spec.partitions < 1) {
          throw new Error(`topic ${spec.name}: partitions must be a positive integer, got ${spec.partitions}`);
        }
        const existing = this.db.prepare('SELECT partitions, compacted FROM topics WHERE name = ?').get(spec.name) as
          | { partitions: number; compacted: number }
          | undefined;
        if (existing) {
          if (existing.partitions !== spec.partitions) {
            throw new Error(
              `topic ${spec.name} exists with ${existing.partitions} partitions, asked for ${spec.partitions}`,
            );
          }
          continue;
        }
        this.db
          .prepare('INSERT INTO topics (name, partitions, compacted) VALUES (?, ?, ?)')
          .run(spec.name, spec.partitions, spec.compacted ? 1 : 0);
        const head = this.db.prepare('INSERT INTO heads (topic, partition, next_offset) VALUES (?, ?, 0)');
        for (let p = 0; p < spec.partitions; p++) head.run(spec.name, p);
      }
    });
    tx.immediate();
  }

  private topic(name: string): { partitions: number; compacted: boolean } {
    let t = this.topics.get(name);
    if (!t) {
      const row = this.db.prepare('SELECT partitions, compacted FROM topics WHERE name = ?').get(name) as
        | { partitions: number; compacted: number }
        | undefined;
      if (!row) throw new Error(`unknown topic ${name}`);
      t = { partitions: row.partitions, compacted: row.compacted === 1 };
      this.topics.set(name, t);
    }
    return t;
  }

  async partitionCount(topic: string): Promise<number> {
    return this.topic(topic).partitions;
  }

  /** Writes records inside the caller's SQLite transaction; returns positions in input order. */
  private writeRecords(records: OutRecord[], now: number): Position[] {
    const positions: Position[] = new Array(records.length);
    // Reserve offsets per partition with one UPDATE each, then insert in input order.
    const counts = new Map<string, { topic: string; partition: number; count: number; next: number }>();
    for (const r of records) {
      const t = this.topic(r.topic);
      if (!Number.isInteger(r.partition) || r.partition < 0 || r.partition >= t.partitions) {
        throw new Error(`topic ${r.topic} has no partition ${r.partition}`);
      }
      const k = `${r.topic}\u0000${r.partition}`;
      const c = counts.get(k);
      if (c) c.count++;
      else counts.set(k, { topic: r.topic, partition: r.partition, count: 1, next: 0 });
    }
    for (const c of counts.values()) {
      const end = this.stmt.advanceHead.get(c.count, c.topic, c.partition) as number;
      c.next = end - c.count;
    }
    records.forEach((r, i) => {
      const c = counts.get(`${r.topic}\u0000${r.partition}`)!;
      const offset = c.next++;
      const headers = r.headers && Object.keys(r.headers).length > 0 ? JSON.stringify(r.headers) : null;
      this.stmt.insert.run(r.topic, r.partition, offset, r.key, r.value, headers, now);
      positions[i] = { topic: r.topic, partition: r.partition, offset };
    });
    return positions;
  }

  append(records: OutRecord[]): Promise<Position[]> {
    if (this.closed) return Promise.reject(new Error('log is closed'));
    // Concurrent appends in one tick share one transaction (and one fsync).
    return new Promise((resolve, reject) => {
      this.pendingAppends.push({ records, resolve, reject });
      if (!this.appendScheduled) {
        this.appendScheduled = true;
        setImmediate(() => this.flushAppends());
      }
    });
  }

  private flushAppends(): void {
    this.appendScheduled = false;
    const batch = this.pendingAppends;
    this.pendingAppends = [];
    const now = Date.now();
    const results: Position[][] = [];
    try {
      this.db
        .transaction(() => {
          for (const a of batch) results.push(this.writeRecords(a.records, now));
        })
        .immediate();
    } catch {
      // One bad request must not fail the others: retry each alone to find the culprit.
      for (const a of batch) {
        try {
          a.resolve(this.db.transaction(() => this.writeRecords(a.records, now)).immediate());
        } catch (e) {
          a.reject(e);
        }
      }
      this.changes.emit('change');
      return;
    }
    batch.forEach((a, i) => a.resolve(results[i]));
    this.changes.emit('change');
  }

  async endOffsets(topic: string): Promise<number[]> {
    const { partitions } = this.topic(topic);
    const out: number[] = [];
    for (let p = 0; p < partitions; p++) out.push(this.stmt.head.get(topic, p) as number);
    return out;
  }

  private readRows(topic: string, partition: number, from: number, to: number, limit: number): LogRecord[] {
    const rows = this.stmt.read.all(topic, partition, from, to, limit) as RecordRow[];
    return rows.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      key: r.key,
      value: r.value,
      headers: r.headers ? (JSON.parse(r.headers) as Record<string, string>) : {},
      timestampMs: r.ts,
    }));
  }

  async *read(topic: string, partition: number, from: number, to: number): AsyncIterable<LogRecord[]> {
    let next = from;
    while (next < to) {
      const rows = this.readRows(topic, partition, next, to, this.maxBatchRecords);
      if (rows.length === 0) return;
      yield rows;
      next = rows[rows.length - 1].offset + 1;
    }
  }

  /** Resolves when this or another process may have committed, or after `maxWaitMs`. */
  private waitForChange(maxWaitMs: number): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.changes.off('change', finish);
        this.waiters--;
        if (this.waiters === 0 && this.poller) {
          clearInterval(this.poller);
          this.poller = undefined;
        }
        resolve();
      };
      const timer = setTimeout(finish, maxWaitMs);
      this.changes.on('change', finish);
      this.waiters++;
      if (!this.poller) {
        this.poller = setInterval(() => this.pollDataVersion(), this.pollIntervalMs);
      }
    });
  }

  private pollDataVersion(): void {
    if (this.closed) return;
    const v = this.db.pragma('data_version', { simple: true }) as number;
    if (v !== this.dataVersion) {
      this.dataVersion = v;
      this.changes.emit('change');
    }
  }

  private startOffset(from: StartFrom, topic: string, partition: number): number {
    if (from === 'earliest') return 0;
    if (from === 'latest') return this.stmt.head.get(topic, partition) as number;
    return from(topic, partition);
  }

  async tail(options: TailOptions): Promise<Subscription> {
    const cursors: { topic: string; partition: number; next: number }[] = [];
    for (const topic of options.topics) {
      const { partitions } = this.topic(topic);
      for (let p = 0; p < partitions; p++) {
        if (options.partitions && !options.partitions.includes(p)) continue;
        cursors.push({ topic, partition: p, next: this.startOffset(options.from, topic, p) });
      }
    }
    let stopped = false;
    const loop = (async () => {
      while (!stopped && !this.closed) {
        let delivered = false;
        for (const c of cursors) {
          if (stopped) break;
          const rows = this.readRows(c.topic, c.partition, c.next, Number.MAX_SAFE_INTEGER, this.maxBatchRecords);
          if (rows.length === 0) continue;
          delivered = true;
          await options.onBatch(rows);
          c.next = rows[rows.length - 1].offset + 1;
          options.onProgress?.(c.topic, c.partition, c.next - 1);
        }
        if (!delivered) await this.waitForChange(100);
      }
    })();
    const sub: Subscription = {
      close: async () => {
        stopped = true;
        this.changes.emit('change');
        await loop.catch(() => undefined);
        this.subscriptions.delete(sub);
      },
    };
    this.subscriptions.add(sub);
    loop.catch(() => undefined);
    return sub;
  }

  async joinGroup(options: GroupOptions): Promise<Subscription> {
    const memberId = randomUUID();
    const { groupId, topic } = options;
    const { partitions } = this.topic(topic);
    const owned = new Map<number, { stop: () => Promise<void> }>();
    let stopped = false;

    const runPartition = (partition: number) => {
      let running = true;
      const loop = (async () => {
        await options.onAssigned(partition);
        let next = this.committedOffset(groupId, topic, partition);
        let backoffMs = 10;
        while (running && !this.closed) {
          const rows = this.readRows(topic, partition, next, Number.MAX_SAFE_INTEGER, this.maxBatchRecords);
          if (rows.length === 0) {
            await this.waitForChange(100);
            continue;
          }
          try {
            await options.onBatch(partition, rows);
            next = rows[rows.length - 1].offset + 1;
            backoffMs = 10;
          } catch (e) {
            if (e instanceof FencedError) {
              // Someone else owns the partition now: stop, and let the lease loop decide.
              running = false;
              owned.delete(partition);
              await options.onRevoked(partition);
              this.db
                .prepare('DELETE FROM partition_leases WHERE group_id = ? AND topic = ? AND partition = ? AND member_id = ?')
                .run(groupId, topic, partition, memberId);
              return;
            }
            options.onError?.(e as Error);
            // Transient: re-read from the committed offset after a pause.
            await new Promise((r) => setTimeout(r, backoffMs));
            backoffMs = Math.min(backoffMs * 2, 1000);
            next = this.committedOffset(groupId, topic, partition);
          }
        }
      })();
      owned.set(partition, {
        stop: async () => {
          running = false;
          this.changes.emit('change');
          await loop.catch(() => undefined);
          await options.onRevoked(partition);
        },
      });
      loop.catch((e) => options.onError?.(e as Error));
    };

    const rebalance = async () => {
      const now = Date.now();
      const { claim, release } = this.db
        .transaction(() => {
          this.db
            .prepare(
              `INSERT INTO group_members (group_id, member_id, heartbeat_ms) VALUES (?, ?, ?)
               ON CONFLICT (group_id, member_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms`,
            )
            .run(groupId, memberId, now);
          this.db
            .prepare('DELETE FROM group_members WHERE group_id = ? AND heartbeat_ms < ?')
            .run(groupId, now - this.sessionTimeoutMs);
          const live = this.db.prepare('SELECT count(*) FROM group_members WHERE group_id = ?').pluck().get(groupId) as number;
          const share = Math.ceil(partitions / Math.max(1, live));
          const leases = this.db
            .prepare('SELECT partition, member_id, expires_ms FROM partition_leases WHERE group_id = ? AND topic = ?')
            .all(groupId, topic) as { partition: number; member_id: string; expires_ms: number }[];
          const byPartition = new Map(leases.map((l) => [l.partition, l]));
          const mine = [...owned.keys()].filter((p) => byPartition.get(p)?.member_id === memberId);
          const lost = [...owned.keys()].filter((p) => byPartition.get(p)?.member_id !== memberId);
          const release = [...lost, ...mine.slice(share)];
          const keep = mine.slice(0, share);
          const claim: number[] = [];
          for (let p = 0; p < partitions && keep.length + claim.length < share; p++) {
            const l = byPartition.get(p);
            if (owned.has(p)) continue;
            if (!l || l.expires_ms < now) claim.push(p);
          }
          const upsert = this.db.prepare(
            `INSERT INTO partition_leases (group_id, topic, partition, member_id, expires_ms) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (group_id, topic, partition) DO UPDATE SET member_id = excluded.member_id, expires_ms = excluded.expires_ms`,
          );
          for (const p of [...keep, ...claim]) upsert.run(groupId, topic, p, memberId, now + this.sessionTimeoutMs);
          return { claim, release };
        })
        .immediate();
      for (const p of release) {
        const o = owned.get(p);
        owned.delete(p);
        await o?.stop();
        this.db
          .prepare('DELETE FROM partition_leases WHERE group_id = ? AND topic = ? AND partition = ? AND member_id = ?')
          .run(groupId, topic, p, memberId);
      }
      for (const p of claim) runPartition(p);
    };

    await rebalance();
    const heartbeat = (async () => {
      while (!stopped && !this.closed) {
        await new Promise((r) => setTimeout(r, this.heartbeatIntervalMs));
        if (stopped || this.closed) break;
        try {
          await rebalance();
        } catch (e) {
          options.onError?.(e as Error);
        }
      }
    })();

    const sub: Subscription = {
      close: async () => {
        stopped = true;
        await heartbeat;
        for (const [p, o] of [...owned]) {
          owned.delete(p);
          await o.stop();
        }
        if (!this.closed) {
          this.db
            .transaction(() => {
              this.db.prepare('DELETE FROM partition_leases WHERE group_id = ? AND member_id = ?').run(groupId, memberId);
              this.db.prepare('DELETE FROM group_members WHERE group_id = ? AND member_id = ?').run(groupId, memberId);
            })
            .immediate();
        }
        this.subscriptions.delete(sub);
      },
    };
    this.subscriptions.add(sub);
    return sub;
  }

  private committedOffset(groupId: string, topic: string, partition: number): number {
    const v = this.db
      .prepare('SELECT next_offset FROM group_offsets WHERE group_id = ? AND topic = ? AND partition = ?')
      .pluck()
      .get(groupId, topic, partition) as number | undefined;
    return v ?? 0;
  }

  async transactionalWriter(transactionalId: string): Promise<TransactionalWriter> {
    const epoch = this.db
      .prepare(
        `INSERT INTO writers (transactional_id, epoch) VALUES (?, 1)
         ON CONFLICT (transactional_id) DO UPDATE SET epoch = epoch + 1 RETURNING epoch`,
      )
      .pluck()
      .get(transactionalId) as number;
    let closed = false;
    return {
      commit: (plan) => {
        if (closed) return Promise.reject(new Error(`writer ${transactionalId} is closed`));
        return new Promise<Position[]>((resolve, reject) => {
          this.pendingCommits.push({ transactionalId, epoch, plan, resolve, reject });
          if (!this.commitScheduled) {
            this.commitScheduled = true;
            setImmediate(() => this.flushCommits());
          }
        });
      },
      close: async () => {
        closed = true;
      },
    };
  }

  /**
   * Group commit: the commits of all writers of this process that arrive in one tick share one
   * SQLite transaction (one WAL sync); each runs in its own savepoint, so a fenced or failing
   * commit rolls back alone and the others still commit.
   */
  private flushCommits(): void {
    this.commitScheduled = false;
    const batch = this.pendingCommits;
    this.pendingCommits = [];
    const now = Date.now();
    const outcomes: ({ ok: true; positions: Position[] } | { ok: false; error: unknown })[] = [];
    try {
      this.db
        .transaction(() => {
          for (const c of batch) {
            try {
              outcomes.push({ ok: true, positions: this.commitOne(c.transactionalId, c.epoch, c.plan, now) });
            } catch (error) {
              outcomes.push({ ok: false, error });
            }
          }
        })
        .immediate();
    } catch (error) {
      for (const c of batch) c.reject(error);
      return;
    }
    batch.forEach((c, i) => {
      const o = outcomes[i];
      if (o.ok) c.resolve(o.positions);
      else c.reject(o.error);
    });
    this.changes.emit('change');
  }

  /** One writer's commit inside the group transaction (better-sqlite3 nests it as a savepoint). */
  private commitOne(transactionalId: string, epoch: number, plan: TransactionPlan, now: number): Position[] {
    this.commitOneTx ??= this.db.transaction((id: string, ep: number, p: TransactionPlan, at: number): Position[] => {
      const current = this.stmt.epoch.get(id) as number;
      if (current !== ep) throw new FencedError(id, `epoch ${ep} < ${current}`);
      const positions = this.writeRecords(p.records, at);
      if (p.then) this.writeRecords(p.then(positions), at);
      for (const o of p.offsets) this.commitOffsetRow(o);
      return positions;
    });
    return this.commitOneTx(transactionalId, epoch, plan, now);
  }
  private commitOneTx: ((id: string, epoch: number, plan: TransactionPlan, now: number) => Position[]) | undefined;

  async truncate(topic: string): Promise<void> {
    this.topic(topic);
    this.db.prepare('DELETE FROM records WHERE topic = ?').run(topic);
  }

  private commitOffsetRow(o: OffsetCommit): void {
    this.stmt.commitOffset.run(o.groupId, o.topic, o.partition, o.nextOffset);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const s of [...this.subscriptions]) await s.close();
    if (this.pendingAppends.length > 0) this.flushAppends();
    this.closed = true;
    if (this.poller) clearInterval(this.poller);
    this.changes.emit('change');
    this.db.close();
  }
}
