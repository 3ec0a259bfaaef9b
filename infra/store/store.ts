// A read-model store. Projections emit statements (SQL with $1..$n placeholders, in the subset
// SQLite and PostgreSQL share); the store applies them together with the projection's checkpoint
// in one transaction, so rows and checkpoint never disagree.

export interface Statement {
  sql: string;
  params: unknown[];
}

export interface Checkpoint {
  projection: string;
  topic: string;
  partition: number;
  /** The next offset to read: last applied + 1. */
  nextOffset: number;
}

/** Reads only, as a snapshot sees the store. */
export interface StoreReader {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Checkpoints of a projection keyed `${topic}/${partition}`. */
  checkpoints(projection: string): Promise<Map<string, number>>;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Idempotent DDL (CREATE TABLE IF NOT EXISTS ...). */
  migrate(ddl: string[]): Promise<void>;
  apply(statements: Statement[], checkpoints: Checkpoint[]): Promise<void>;
  /** Checkpoints of a projection keyed `${topic}/${partition}`. */
  checkpoints(projection: string): Promise<Map<string, number>>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Empties a projection's tables and forgets its checkpoints (before a rebuild in place). */
  reset(projection: string, tables: string[]): Promise<void>;
  /**
   * Runs `read` in one read transaction: everything it reads (rows and checkpoints alike) is the
   * store at one instant, whatever projections commit meanwhile. How replay compares a live store
   * that keeps changing (SQLite: a second connection holding a WAL read snapshot; PostgreSQL:
   * REPEATABLE READ, READ ONLY). Never blocks writers.
   */
  snapshot<T>(read: (reader: StoreReader) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export const CHECKPOINT_DDL =
  'CREATE TABLE IF NOT EXISTS strata_checkpoints (projection TEXT NOT NULL, topic TEXT NOT NULL, ' +
  'partition INTEGER NOT NULL, next_offset BIGINT NOT NULL, PRIMARY KEY (projection, topic, partition))';

export const UPSERT_CHECKPOINT =
  'INSERT INTO strata_checkpoints (projection, topic, partition, next_offset) VALUES ($1, $2, $3, $4) ' +
  'ON CONFLICT (projection, topic, partition) DO UPDATE SET next_offset = excluded.next_offset';
