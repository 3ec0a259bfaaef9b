// The billing subscriber's core, apart from the network: events of the subscription
// (strata.events.v1.SubscriptionService) decoded back into the shape the usage meter folds,
// metered by the SAME UsageMeter as the usage read model (through BillingMeter, so its usage
// equals the read model's by construction), batched into the ledger (billing.store.ts) with the
// cursor after the batch, and invoices priced from the ledger with the rate card
// (domains/metering/billing.ts), written to the store and as files <out>/<project>/<YYYY-MM>.json.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addLines, BillingMeter, invoices, lineKey, openLines, type Invoice, type RateCard, type UsageLine } from '../../domains/metering/billing.js';
import { METERED_EVENTS, type MeteredEvent, type MeteringPolicy } from '../../domains/metering/usage.js';
import { BillingStore } from './billing.store.js';

/** What the subscription asks for: the domains and event types the meter folds. */
export const BILLING_DOMAINS = Object.keys(METERED_EVENTS);
export const BILLING_EVENT_TYPES: string[] = Object.values(METERED_EVENTS).flat();

/** A StreamedEvent as the gRPC client decodes it (api/grpc/service-definition.ts TO_OBJECT: 64-bit integers as numbers). */
export interface StreamedEventMessage {
  eventId: string;
  domain: string;
  aggregateType: string;
  aggregateId: string;
  version: number | string;
  type: string;
  occurredAt?: { seconds?: number | string; nanos?: number } | null;
  payloadJson: string;
  cursor: string;
}

/**
 * The decoded event the meter folds (infra/sagas/domain.feed.ts decodeDomainEvent's shape): the
 * payload as its codec decodes it (payload_json keeps 64-bit integers as numbers, as the codecs
 * decode them; bytes come as base64 strings, which the meter never reads), with the envelope's fields.
 */
export function meteredEventOf(m: StreamedEventMessage): MeteredEvent {
  if (!m.payloadJson) throw new Error(`event ${m.eventId} (${m.type} of ${m.aggregateType} ${m.aggregateId}) came without a payload: the server cannot decode it, and billing cannot skip it without miscounting`);
  const payload = JSON.parse(m.payloadJson) as Record<string, unknown>;
  const occurredAtMs = Number(m.occurredAt?.seconds ?? 0) * 1000 + Math.floor(Number(m.occurredAt?.nanos ?? 0) / 1e6);
  return { ...payload, type: m.type, aggregateType: m.aggregateType, aggregateId: m.aggregateId, version: Number(m.version), occurredAtMs };
}

export interface BillerOptions {
  dbPath: string;
  outDir: string;
  card: RateCard;
  policy?: Partial<MeteringPolicy>;
}

/** Invoices as files: what one holds, in a fixed key order. */
export function invoiceFile(i: Invoice): string {
  const iso = (ms: number) => new Date(ms).toISOString();
  return `${JSON.stringify(
    {
      projectId: i.projectId,
      month: i.month,
      currency: i.currency,
      period: { start: iso(i.periodStartMs), end: iso(i.periodEndMs) },
      usageThrough: iso(i.usageThroughMs),
      lines: i.lines,
      total: i.total,
      totalMinor: i.totalMinor,
    },
    null,
    2,
  )}\n`;
}

/** A project id as a directory name: as it is when it is a plain name, else percent-encoded. */
const dirName = (projectId: string) => (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(projectId) && projectId !== '..' ? projectId : encodeURIComponent(projectId).replace(/\./g, '%2E'));

export class Biller {
  readonly store: BillingStore;
  private meter!: BillingMeter;
  private closed!: Map<string, UsageLine>;
  /** The cursor of the last committed batch ('' before any). */
  cursor = '';
  private pending: MeteredEvent[] = [];
  private pendingCursor = '';
  /** File path -> content written (files whose content is unchanged are not rewritten). */
  private readonly written = new Map<string, string>();
  /** Events committed by this process. */
  committedEvents = 0;

  constructor(private readonly o: BillerOptions) {
    this.store = new BillingStore(o.dbPath);
    // The policy is part of the fold: a ledger metered under another one cannot go on.
    const policy = JSON.stringify({ stopped: Boolean(o.policy?.stopped), shelved: Boolean(o.policy?.shelved) });
    const had = this.store.meta('policy');
    if (had !== undefined && had !== policy) throw new Error(`${o.dbPath} was metered with policy ${had}, not ${policy}: start from a fresh database (it replays the log)`);
    this.store.setMeta('policy', policy);
    this.reload();
  }

  /** The ledger as committed (at start, and after a failed batch). */
  private reload(): void {
    const ledger = this.store.load();
    this.meter = new BillingMeter(this.o.policy);
    this.meter.meter.import(ledger.resources);
    this.meter.asOfMs = ledger.asOfMs;
    this.closed = new Map();
    addLines(this.closed, ledger.closed);
    this.cursor = ledger.cursor;
    this.pending = [];
    this.pendingCursor = '';
  }

  get pendingEvents(): number {
    return this.pending.length;
  }

  /** An event of the stream; folded at the next flush. */
  event(m: StreamedEventMessage): void {
    this.pending.push(meteredEventOf(m));
    this.pendingCursor = m.cursor;
  }

  /** A progress message: the cursor moves on past filtered-out events. */
  progress(cursor: string): void {
    if (cursor) this.pendingCursor = cursor;
  }

  /** Folds the pending events and commits them with the cursor after them, in one transaction. Returns whether anything was committed. */
  flush(): boolean {
    if (this.pending.length === 0 && (!this.pendingCursor || this.pendingCursor === this.cursor)) return false;
    const events = this.pending;
    const cursor = this.pendingCursor || this.cursor;
    try {
      const resources = new Set<string>();
      const lines = new Set<string>();
      for (const e of events) {
        const closed = this.meter.apply(e);
        resources.add(e.aggregateId);
        addLines(this.closed, closed);
        for (const l of closed) lines.add(lineKey(l));
      }
      this.store.commit({
        cursor,
        asOfMs: this.meter.asOfMs,
        resources: [...resources].map((id) => this.meter.meter.resource(id)).filter((r) => r !== undefined),
        closed: [...lines].map((k) => this.closed.get(k)!),
      });
    } catch (e) {
      // Nothing of the batch is in the store: neither may it stay in memory.
      this.reload();
      throw e;
    }
    this.cursor = cursor;
    this.pending = [];
    this.pendingCursor = '';
    this.committedEvents += events.length;
    return true;
  }

  /** The invoices of the committed ledger (closed usage, and open segments up to the latest event time). */
  invoices(): Invoice[] {
    return invoices(this.o.card, [...this.closed.values(), ...openLines(this.meter.meter.export(), this.meter.asOfMs)], this.meter.asOfMs);
  }

  /** Rewrites the invoice tables and the files whose content changed (temp file + rename). Call after flush(). */
  writeInvoices(): Invoice[] {
    const all = this.invoices();
    this.store.writeInvoices(all);
    for (const i of all) {
      const dir = join(this.o.outDir, dirName(i.projectId));
      const path = join(dir, `${i.month}.json`);
      const content = invoiceFile(i);
      if (this.written.get(path) === content) continue;
      mkdirSync(dir, { recursive: true });
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, content);
      renameSync(tmp, path);
      this.written.set(path, content);
    }
    return all;
  }

  /** At start: temp files a killed process left behind go; files already right are remembered. */
  sweepOutDir(): void {
    mkdirSync(this.o.outDir, { recursive: true });
    for (const project of readdirSync(this.o.outDir, { withFileTypes: true })) {
      if (!project.isDirectory()) continue;
      const dir = join(this.o.outDir, project.name);
      for (const f of readdirSync(dir)) {
        if (f.endsWith('.tmp')) rmSync(join(dir, f), { force: true });
        else if (f.endsWith('.json')) this.written.set(join(dir, f), readFileSync(join(dir, f), 'utf8'));
      }
    }
  }

  close(): void {
    this.store.close();
  }
}
