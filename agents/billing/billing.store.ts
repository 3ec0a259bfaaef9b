// The billing subscriber's own SQLite file. The ledger (the meter's per-resource state, the closed
// usage per project, month, metric and key, the subscription cursor and the latest event time)
// is written in ONE transaction per batch of events: a process killed at any instant restarts
// from a ledger and a cursor that agree, so no event is lost and none counted twice. The invoice
// tables are derived from the ledger (as the invoice files are) and rewritten whole.
import Database from 'better-sqlite3';
import type { Invoice, UsageLine } from '../../domains/metering/billing.js';
import type { MeteredResource, Metric } from '../../domains/metering/usage.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS meter_resources (resource_id TEXT PRIMARY KEY, kind TEXT NOT NULL, project_id TEXT NOT NULL, version INTEGER NOT NULL, state TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS usage_closed (project_id TEXT NOT NULL, month TEXT NOT NULL, metric TEXT NOT NULL, metric_key TEXT NOT NULL, quantity_ms TEXT NOT NULL,
     PRIMARY KEY (project_id, month, metric, metric_key))`,
  `CREATE TABLE IF NOT EXISTS invoices (project_id TEXT NOT NULL, month TEXT NOT NULL, currency TEXT NOT NULL, usage_through_ms INTEGER NOT NULL, total_minor TEXT NOT NULL,
     PRIMARY KEY (project_id, month))`,
  `CREATE TABLE IF NOT EXISTS invoice_lines (project_id TEXT NOT NULL, month TEXT NOT NULL, metric TEXT NOT NULL, metric_key TEXT NOT NULL, quantity_ms TEXT NOT NULL,
     unit_price TEXT, amount_minor TEXT NOT NULL, PRIMARY KEY (project_id, month, metric, metric_key))`,
];

export const BILLING_TABLES = ['meta', 'meter_resources', 'usage_closed', 'invoices', 'invoice_lines'];

export interface Ledger {
  /** '' before the first batch. */
  cursor: string;
  asOfMs: number;
  resources: MeteredResource[];
  closed: UsageLine[];
}

export interface LedgerBatch {
  cursor: string;
  asOfMs: number;
  /** The resources the batch changed, as they are now. */
  resources: MeteredResource[];
  /** The closed-usage lines the batch changed, with their new totals. */
  closed: UsageLine[];
}

export class BillingStore {
  private readonly db: Database.Database;
  private readonly putMeta: Database.Statement;
  private readonly putResource: Database.Statement;
  private readonly putClosed: Database.Statement;
  private readonly putInvoice: Database.Statement;
  private readonly putInvoiceLine: Database.Statement;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL: a committed batch survives a power cut too, not only a killed process.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    for (const sql of SCHEMA) this.db.exec(sql);
    this.putMeta = this.db.prepare('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    this.putResource = this.db.prepare(
      `INSERT INTO meter_resources (resource_id, kind, project_id, version, state) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (resource_id) DO UPDATE SET project_id = excluded.project_id, version = excluded.version, state = excluded.state`,
    );
    this.putClosed = this.db.prepare(
      `INSERT INTO usage_closed (project_id, month, metric, metric_key, quantity_ms) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (project_id, month, metric, metric_key) DO UPDATE SET quantity_ms = excluded.quantity_ms`,
    );
    this.putInvoice = this.db.prepare('INSERT INTO invoices (project_id, month, currency, usage_through_ms, total_minor) VALUES (?, ?, ?, ?, ?)');
    this.putInvoiceLine = this.db.prepare('INSERT INTO invoice_lines (project_id, month, metric, metric_key, quantity_ms, unit_price, amount_minor) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  meta(name: string): string | undefined {
    return (this.db.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: string } | undefined)?.value;
  }

  setMeta(name: string, value: string): void {
    this.putMeta.run(name, value);
  }

  load(): Ledger {
    const resources = (this.db.prepare('SELECT resource_id, kind, project_id, version, state FROM meter_resources').all() as { resource_id: string; kind: string; project_id: string; version: number; state: string }[]).map(
      (row) => {
        const s = JSON.parse(row.state) as Pick<MeteredResource, 'lastMs' | 'attrs' | 'open'>;
        return { resourceId: row.resource_id, kind: row.kind as MeteredResource['kind'], projectId: row.project_id, version: row.version, lastMs: s.lastMs, attrs: s.attrs, open: s.open };
      },
    );
    const closed = (this.db.prepare('SELECT project_id, month, metric, metric_key, quantity_ms FROM usage_closed').all() as Record<string, string>[]).map((row) => ({
      projectId: row.project_id,
      month: row.month,
      metric: row.metric as Metric,
      key: row.metric_key,
      quantityMs: BigInt(row.quantity_ms),
    }));
    return { cursor: this.meta('cursor') ?? '', asOfMs: Number(this.meta('as_of_ms') ?? 0), resources, closed };
  }

  /** One batch of the ledger, in one transaction. */
  commit(batch: LedgerBatch): void {
    this.db.transaction(() => {
      for (const r of batch.resources) this.putResource.run(r.resourceId, r.kind, r.projectId, r.version, JSON.stringify({ lastMs: r.lastMs, attrs: r.attrs, open: r.open }));
      for (const l of batch.closed) this.putClosed.run(l.projectId, l.month, l.metric, l.key, l.quantityMs.toString());
      this.putMeta.run('cursor', batch.cursor);
      this.putMeta.run('as_of_ms', String(batch.asOfMs));
    })();
  }

  /** Replaces the invoice tables (derived from the ledger) in one transaction. */
  writeInvoices(invoices: Invoice[]): void {
    this.db.transaction(() => {
      this.db.exec('DELETE FROM invoice_lines; DELETE FROM invoices');
      for (const i of invoices) {
        this.putInvoice.run(i.projectId, i.month, i.currency, i.usageThroughMs, i.totalMinor);
        for (const l of i.lines) this.putInvoiceLine.run(i.projectId, i.month, l.metric, l.key, l.quantityMs, l.unitPrice, l.amountMinor);
      }
    })();
  }

  close(): void {
    this.db.close();
  }
}
