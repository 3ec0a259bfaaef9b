// Replay verification (invariant 1: the log is the only source of truth): every read model is
// rebuilt from offset 0 into a fresh store and compared with the live one, table by table, by
// row count and a content hash. What `strata admin replay` runs.
//
// The live store keeps changing while the cloud runs, so the comparison happens at one point:
// the live projections' checkpoints and their tables are read in one read transaction
// (Store.snapshot), and the fresh store is rebuilt up to exactly those checkpoints.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Log } from '../log/log.js';
import type { Projection } from '../runtime/projection-runner.js';
import { PostgresStore } from '../store/postgres-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store, StoreReader } from '../store/store.js';
import { allReadModels } from './read-models.js';
import { rebuildReadModels, type Offsets } from './rebuild.js';

/** One table of one read model, live and replayed. */
export interface TableComparison {
  table: string;
  liveRows: number;
  replayedRows: number;
  /** sha256 (hex) of the table's content: see tableDigest. Only comparable within one dialect. */
  liveHash: string;
  replayedHash: string;
  equal: boolean;
  /** Why a side could not be read (a live table that does not exist), when so. */
  error?: string;
}

/** Where one partition of a projection's topics was compared. */
export interface PositionComparison {
  topic: string;
  partition: number;
  /** The live projection's checkpoint: next offset to apply (0: it has applied nothing there). */
  live: number;
  /** Where the replay stopped: equals `live` unless the log ends before it. */
  replayed: number;
}

export interface ProjectionReport {
  projection: string;
  positions: PositionComparison[];
  tables: TableComparison[];
  /** Every table equal and every position reached. */
  equal: boolean;
}

/** What verifyReadModels found. `equal` is the verdict; the rest says where a difference is. */
export interface ReplayReport {
  equal: boolean;
  dialect: 'sqlite' | 'postgres';
  projections: ProjectionReport[];
  /** Log records the replay read, and those it applied (records of types no read model handles are skipped). */
  recordsRead: number;
  eventsReplayed: number;
  /** Wall time: live snapshot, rebuild and both hashes. */
  seconds: number;
  rebuildSeconds: number;
}

/** An empty store for a replay, and how to get rid of it after. */
export interface FreshStore {
  store: Store;
  dispose(): Promise<void>;
}

export interface VerifyOptions {
  log: Log;
  /** The store the running cloud's projections write. Only read, in one read transaction. */
  live: Store;
  /** An empty store of the live store's dialect (freshSqliteStore, freshPostgresStore); disposed after. */
  fresh: () => Promise<FreshStore>;
  /** The read models to verify (default: allReadModels()). Fresh ones: a stateful projection's fold is rebuilt too. */
  projections?: Projection[];
  /** Log records per transaction of the rebuild. */
  batchRecords?: number;
}

/** Same-dialect canonical form of a column value. */
function canonical(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (v instanceof Date) return v.toISOString();
  return v;
}

/**
 * A table's content hash, canonical and independent of row order: each row as JSON of its
 * columns sorted by name (bytes as hex) hashed with sha256, the row hashes sorted, then hashed
 * together. Values are as the store's driver returns them, so two hashes compare only within a
 * dialect (SQLite's 1 is PostgreSQL's true, and so on).
 */
export async function tableDigest(reader: StoreReader, table: string): Promise<{ rows: number; hash: string }> {
  const rows = await reader.query<Record<string, unknown>>(`SELECT * FROM ${table}`);
  const hashes = new Array<string>(rows.length);
  let columns: string[] | undefined;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    columns ??= Object.keys(row).sort();
    const obj: Record<string, unknown> = {};
    for (const c of columns) obj[c] = canonical(row[c]);
    hashes[i] = createHash('sha256').update(JSON.stringify(obj)).digest('hex');
  }
  hashes.sort();
  const all = createHash('sha256');
  for (const h of hashes) all.update(h);
  return { rows: rows.length, hash: all.digest('hex') };
}

interface Side {
  checkpoints: Map<string, Offsets>;
  tables: Map<string, { rows: number; hash: string } | { error: string }>;
}

async function readSide(reader: StoreReader, projections: Projection[]): Promise<Side> {
  const side: Side = { checkpoints: new Map(), tables: new Map() };
  // Checkpoints first: with the tables, they are one instant of the store (the read transaction's).
  for (const p of projections) side.checkpoints.set(p.name, await reader.checkpoints(p.name));
  for (const p of projections) {
    for (const t of p.tables) {
      try {
        side.tables.set(`${p.name}\u0000${t}`, await tableDigest(reader, t));
      } catch (e) {
        side.tables.set(`${p.name}\u0000${t}`, { error: (e as Error).message });
      }
    }
  }
  return side;
}

const splitKey = (key: string) => {
  const at = key.lastIndexOf('/');
  return { topic: key.slice(0, at), partition: Number(key.slice(at + 1)) };
};

/**
 * Rebuilds every read model from offset 0 into a fresh store, up to the live store's
 * checkpoints, and compares the two table by table.
 */
export async function verifyReadModels(options: VerifyOptions): Promise<ReplayReport> {
  const started = performance.now();
  const projections = options.projections ?? allReadModels();
  const live = await options.live.snapshot((reader) => readSide(reader, projections));
  const fresh = await options.fresh();
  let replayed: Side;
  let rebuilt: Awaited<ReturnType<typeof rebuildReadModels>>;
  try {
    if (fresh.store.dialect !== options.live.dialect) {
      throw new Error(`a ${options.live.dialect} store is compared with a fresh store of its own dialect, not ${fresh.store.dialect}`);
    }
    rebuilt = await rebuildReadModels(options.log, fresh.store, projections, { upTo: live.checkpoints, batchRecords: options.batchRecords });
    replayed = await fresh.store.snapshot((reader) => readSide(reader, projections));
  } finally {
    await fresh.dispose();
  }

  const reports: ProjectionReport[] = projections.map((p) => {
    const liveAt = live.checkpoints.get(p.name)!;
    const reached = rebuilt.reached.get(p.name)!;
    const positions = [...new Set([...liveAt.keys(), ...reached.keys()])].sort().map((key) => ({
      ...splitKey(key),
      live: liveAt.get(key) ?? 0,
      replayed: reached.get(key) ?? 0,
    }));
    const tables = p.tables.map((table): TableComparison => {
      const l = live.tables.get(`${p.name}\u0000${table}`)!;
      const r = replayed.tables.get(`${p.name}\u0000${table}`)!;
      const rows = (s: typeof l) => ('rows' in s ? s.rows : 0);
      const hash = (s: typeof l) => ('hash' in s ? s.hash : '');
      const error = 'error' in l ? `live: ${l.error}` : 'error' in r ? `replayed: ${r.error}` : undefined;
      return {
        table,
        liveRows: rows(l),
        replayedRows: rows(r),
        liveHash: hash(l),
        replayedHash: hash(r),
        equal: error === undefined && rows(l) === rows(r) && hash(l) === hash(r),
        ...(error ? { error } : {}),
      };
    });
    return {
      projection: p.name,
      positions,
      tables,
      equal: tables.every((t) => t.equal) && positions.every((x) => x.live === x.replayed),
    };
  });
  return {
    equal: reports.every((r) => r.equal),
    dialect: options.live.dialect,
    projections: reports,
    recordsRead: rebuilt.records,
    eventsReplayed: rebuilt.events,
    seconds: (performance.now() - started) / 1000,
    rebuildSeconds: rebuilt.seconds,
  };
}

/** A fresh SQLite store in a new temporary directory, deleted after. */
export const freshSqliteStore =
  (parent = tmpdir()) =>
  async (): Promise<FreshStore> => {
    const dir = mkdtempSync(join(parent, 'strata-replay-'));
    // A throwaway store (no fsync, journal in memory): it lives for one replay, a crash loses nothing of value.
    const store = new SqliteStore(join(dir, 'read-models.db'), { throwaway: true });
    return {
      store,
      async dispose() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };

/** A fresh PostgreSQL schema on the live store's server, dropped after. */
export const freshPostgresStore =
  (connectionString: string) =>
  async (): Promise<FreshStore> => {
    const store = new PostgresStore(connectionString, `strata_replay_${randomUUID().replaceAll('-', '').slice(0, 12)}`);
    return {
      store,
      async dispose() {
        try {
          await store.dropSchema();
        } finally {
          await store.close();
        }
      },
    };
  };

/** The differences of a report in a few lines (empty when equal), for the CLI and logs. */
export function describeDifferences(report: ReplayReport): string[] {
  const lines: string[] = [];
  for (const p of report.projections) {
    for (const x of p.positions) {
      if (x.live !== x.replayed) lines.push(`${p.projection}: ${x.topic}/${x.partition} live at ${x.live}, the log ends at ${x.replayed}`);
    }
    for (const t of p.tables) {
      if (t.equal) continue;
      lines.push(
        `${p.projection}: ${t.table} differs: live ${t.liveRows} rows ${t.liveHash.slice(0, 12)}, replayed ${t.replayedRows} rows ${t.replayedHash.slice(0, 12)}` +
          (t.error ? ` (${t.error})` : ''),
      );
    }
  }
  return lines;
}
