import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CHECKPOINT_DDL, UPSERT_CHECKPOINT, type Checkpoint, type Statement, type Store } from './store.js';

// Projections write PostgreSQL's $1..$n; better-sqlite3 binds those as named parameters @p1..@pn.
const toSqlite = (sql: string) => sql.replace(/\$(\d+)/g, '@p$1');

const bind = (params: unknown[]): Record<string, unknown> => {
  const named: Record<string, unknown> = {};
  params.forEach((v, i) => (named[`p${i + 1}`] = typeof v === 'boolean' ? (v ? 1 : 0) : v));
  return named;
};

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly prepared = new Map<string, Database.Statement>();

  constructor(path: string, options: { synchronous?: 'FULL' | 'NORMAL' } = {}) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(CHECKPOINT_DDL);
  }

  private statement(sql: string): Database.Statement {
    let s = this.prepared.get(sql);
    if (!s) {
      s = this.db.prepare(toSqlite(sql));
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
        for (const s of statements) this.statement(s.sql).run(bind(s.params));
        for (const c of checkpoints) this.statement(UPSERT_CHECKPOINT).run(bind([c.projection, c.topic, c.partition, c.nextOffset]));
      })
      .immediate();
  }

  async checkpoints(projection: string): Promise<Map<string, number>> {
    const rows = this.statement('SELECT topic, partition, next_offset FROM strata_checkpoints WHERE projection = $1').all(
      bind([projection]),
    ) as { topic: string; partition: number; next_offset: number }[];
    return new Map(rows.map((r) => [`${r.topic}/${r.partition}`, Number(r.next_offset)]));
  }

  async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
    const s = this.statement(sql);
    return (params.length > 0 ? s.all(bind(params)) : s.all()) as T[];
  }

  async reset(projection: string, tables: string[]): Promise<void> {
    this.db.transaction(() => {
      for (const t of tables) this.db.exec(`DELETE FROM ${t}`);
      this.statement('DELETE FROM strata_checkpoints WHERE projection = $1').run(bind([projection]));
    })();
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
