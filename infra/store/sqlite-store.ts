import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CHECKPOINT_DDL, UPSERT_CHECKPOINT, type Checkpoint, type Statement, type Store, type StoreReader } from './store.js';

/**
 * A statement prepared once per SQL text. Projections write PostgreSQL's $1..$n; each becomes an
 * anonymous `?` bound by position (better-sqlite3's fastest binding: no object per call), and
 * `order` says which parameter each `?` takes, since a $n may appear more than once.
 */
interface Prepared {
  statement: Database.Statement;
  order: number[];
}

function prepare(db: Database.Database, sql: string): Prepared {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { statement: db.prepare(text), order };
}

/** The values of a prepared statement's `?`s, in order (booleans as SQLite's 0/1). */
function bind(p: Prepared, params: unknown[]): unknown[] {
  const values = new Array<unknown>(p.order.length);
  for (let i = 0; i < p.order.length; i++) {
    const v = params[p.order[i]];
    values[i] = typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }
  return values;
}

const reader = (db: Database.Database, statement: (sql: string) => Prepared): StoreReader => ({
  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const p = statement(sql);
    return p.statement.all(...bind(p, params)) as T[];
  },
  async checkpoints(projection: string): Promise<Map<string, number>> {
    const p = statement('SELECT topic, partition, next_offset FROM strata_checkpoints WHERE projection = $1');
    const rows = p.statement.all(...bind(p, [projection])) as { topic: string; partition: number; next_offset: number }[];
    return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)]));
  },
});

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly prepared = new Map<string, Prepared>();
  private readonly reader: StoreReader;

  /**
   * `throwaway`: a store that lives for one job and is deleted after (a replay's fresh store),
   * so a crash may lose or corrupt it at no cost: commits skip every fsync (synchronous=OFF), the
   * rollback journal stays in memory instead of a WAL whose pages are written twice, and a
   * 256 MiB page cache holds the indexes a rebuild keeps inserting into.
   */
  constructor(
    private readonly path: string,
    options: { synchronous?: 'FULL' | 'NORMAL'; throwaway?: boolean } = {},
  ) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    if (options.throwaway) {
      this.db.pragma('journal_mode = MEMORY');
      this.db.pragma('synchronous = OFF');
      this.db.pragma('cache_size = -262144');
      this.db.pragma('temp_store = MEMORY');
    } else {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    }
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(CHECKPOINT_DDL);
    this.reader = reader(this.db, (sql) => this.statement(sql));
  }

  private statement(sql: string): Prepared {
    let s = this.prepared.get(sql);
    if (!s) {
      s = prepare(this.db, sql);
      this.prepared.set(sql, s);
    }
    return s;
  }

  async migrate(ddl: string[]): Promise<void> {
    this.db.transaction(() => ddl.forEach((d) => this.db.exec(d)))();
  }

  async apply(statements: Statement[], checkpoints: Checkpoint[]): Promise<void> {
    this.db
      .transaction(() => {
        for (const s of statements) {
          const p = this.statement(s.sql);
          p.statement.run(...bind(p, s.params));
        }
        const upsert = this.statement(UPSERT_CHECKPOINT);
        for (const c of checkpoints) upsert.statement.run(c.projection, c.topic, c.partition, c.nextOffset);
      })
      .immediate();
  }

  checkpoints(projection: string): Promise<Map<string, number>> {
    return this.reader.checkpoints(projection);
  }

  query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.reader.query<T>(sql, params);
  }

  async reset(projection: string, tables: string[]): Promise<void> {
    this.db.transaction(() => {
      for (const t of tables) this.db.exec(`DELETE FROM ${t}`);
      this.statement('DELETE FROM strata_checkpoints WHERE projection = $1').statement.run(projection);
    })();
  }

  async snapshot<T>(read: (reader: StoreReader) => Promise<T>): Promise<T> {
    // A second connection: this one's writes (the projections' batches, which may run while
    // `read` awaits) would otherwise land inside the read transaction. In WAL mode its snapshot,
    // taken at its first read, holds until COMMIT while writers go on.
    // An in-memory store has no file to open twice: its reads share the connection, so `read`
    // sees one instant only as long as no batch commits while it runs.
    const db = this.path === ':memory:' ? this.db : new Database(this.path, { readonly: true, fileMustExist: true });
    const prepared = new Map<string, Prepared>();
    const statement = (sql: string) => {
      let s = prepared.get(sql);
      if (!s) prepared.set(sql, (s = prepare(db, sql)));
      return s;
    };
    try {
      db.pragma('busy_timeout = 10000');
      db.exec('BEGIN');
      try {
        return await read(reader(db, statement));
      } finally {
        db.exec('COMMIT');
      }
    } finally {
      if (db !== this.db) db.close();
    }
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
