import pg from 'pg';
import { CHECKPOINT_DDL, UPSERT_CHECKPOINT, type Checkpoint, type Statement, type Store, type StoreReader } from './store.js';

// BIGINT columns come back as JS numbers: offsets and counters stay below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export class PostgresStore implements Store {
  readonly dialect = 'postgres' as const;
  private readonly pool: pg.Pool;
  private ready: Promise<void>;

  /** `schema` isolates this store's tables (one schema per environment or test). */
  constructor(
    /** The server's URL (a replay makes a fresh schema on the same server). */
    readonly connectionString: string,
    private readonly schema = 'public',
  ) {
    this.pool = new pg.Pool({ connectionString, max: 4 });
    this.pool.on('connect', (client) => {
      client.query(`SET search_path TO "${schema}"`).catch(() => undefined);
    });
    this.ready = this.init();
  }

  private async init(): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(`SET search_path TO "${this.schema}"`);
      await client.query(CHECKPOINT_DDL);
    } finally {
      client.release();
    }
  }

  private async inTransaction(fn: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    await this.ready;
    const client = await this.pool.connect();
    try {
      await client.query(`SET search_path TO "${this.schema}"`);
      await client.query('BEGIN');
      await fn(client);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw e;
    } finally {
      client.release();
    }
  }

  async migrate(ddl: string[]): Promise<void> {
    await this.inTransaction(async (c) => {
      for (const d of ddl) await c.query(d);
    });
  }

  async apply(statements: Statement[], checkpoints: Checkpoint[]): Promise<void> {
    await this.inTransaction(async (c) => {
      for (const s of statements) await c.query({ text: s.sql, values: s.params });
      for (const cp of checkpoints) {
        await c.query({ text: UPSERT_CHECKPOINT, values: [cp.projection, cp.topic, cp.partition, cp.nextOffset] });
      }
    });
  }

  async checkpoints(projection: string): Promise<Map<string, number>> {
    const rows = await this.query<{ topic: string; partition: number; next_offset: number }>(
      'SELECT topic, partition, next_offset FROM strata_checkpoints WHERE projection = $1',
      [projection],
    );
    return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)]));
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    await this.ready;
    const client = await this.pool.connect();
    try {
      await client.query(`SET search_path TO "${this.schema}"`);
      return (await client.query({ text: sql, values: params })).rows as T[];
    } finally {
      client.release();
    }
  }

  async reset(projection: string, tables: string[]): Promise<void> {
    await this.inTransaction(async (c) => {
      for (const t of tables) await c.query(`DELETE FROM ${t}`);
      await c.query('DELETE FROM strata_checkpoints WHERE projection = $1', [projection]);
    });
  }

  async snapshot<T>(read: (reader: StoreReader) => Promise<T>): Promise<T> {
    await this.ready;
    const client = await this.pool.connect();
    try {
      await client.query(`SET search_path TO "${this.schema}"`);
      // REPEATABLE READ: every statement of the transaction sees the snapshot its first one took.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const reader: StoreReader = {
        query: async <R>(sql: string, params: unknown[] = []) => (await client.query({ text: sql, values: params })).rows as R[],
        checkpoints: async (projection: string) => {
          const rows = (await client.query('SELECT topic, partition, next_offset FROM strata_checkpoints WHERE projection = $1', [projection]))
            .rows as { topic: string; partition: number; next_offset: number }[];
          return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)]));
        },
      };
      try {
        return await read(reader);
      } finally {
        await client.query('COMMIT').catch(() => undefined);
      }
    } finally {
      client.release();
    }
  }

  /** Drops the whole schema (tests). */
  async dropSchema(): Promise<void> {
    await this.ready;
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
