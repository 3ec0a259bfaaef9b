// The billing subscriber's core without the network: streamed events committed in batches of any
// size, with "crashes" (a Biller dropped with events received but not committed, then reopened on
// its file and fed again from its committed cursor), end with the same ledger, invoice rows and
// files as one uninterrupted run; an event the server could not decode stops billing.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { parseRateCard } from '../../domains/metering/billing.js';
import { HOUR_MS } from '../../domains/metering/usage.js';
import { Biller, meteredEventOf, type StreamedEventMessage } from './biller.js';
import { BILLING_TABLES } from './billing.store.js';

const card = parseRateCard(JSON.parse(readFileSync(new URL('./rate-card.example.json', import.meta.url), 'utf8')));
const T0 = Date.UTC(2026, 1, 27);
const SMALL = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048 };

/** A stream of StreamedEvent messages: servers and floating IPs over a month boundary; the cursor is the message's index. */
function messages(): StreamedEventMessage[] {
  const out: StreamedEventMessage[] = [];
  const versions = new Map<string, number>();
  const push = (aggregateType: string, aggregateId: string, type: string, atMs: number, payload: Record<string, unknown>) => {
    const version = (versions.get(aggregateId) ?? 0) + 1;
    versions.set(aggregateId, version);
    out.push({
      eventId: `c${out.length}/0`, domain: aggregateType === 'instance' ? 'compute' : 'network', aggregateType, aggregateId, version, type,
      occurredAt: { seconds: Math.floor(atMs / 1000), nanos: (atMs % 1000) * 1e6 }, payloadJson: JSON.stringify(payload), cursor: `c-${out.length + 1}`,
    });
  };
  for (let i = 0; i < 40; i++) {
    const project = `p${i % 3}`;
    push('instance', `i${i}`, 'InstanceCreated', T0 + i * 600_000, { projectId: project, flavor: SMALL });
    push('instance', `i${i}`, 'InstanceActionCompleted', T0 + i * 600_000 + 60_123, { vmState: 'active' });
    if (i % 4 !== 0) push('instance', `i${i}`, 'InstanceActionCompleted', T0 + (i + 30) * 3 * HOUR_MS, { vmState: 'deleted' });
    push('floating_ip', `f${i}`, 'FloatingIpCreated', T0 + i * HOUR_MS, { floatingIp: { projectId: project, floatingNetworkId: 'ext' } });
    if (i % 2) push('floating_ip', `f${i}`, 'FloatingIpDeleted', T0 + (i + 50) * 2 * HOUR_MS, {});
  }
  return out;
}

function dump(dir: string): { tables: Record<string, string[]>; files: Record<string, string> } {
  const db = new Database(join(dir, 'billing.db'), { readonly: true });
  const tables = Object.fromEntries(BILLING_TABLES.map((t) => [t, (db.prepare(`SELECT * FROM ${t}`).all() as unknown[]).map((r) => JSON.stringify(r)).sort()]));
  db.close();
  const files: Record<string, string> = {};
  const out = join(dir, 'out');
  for (const p of readdirSync(out)) for (const f of readdirSync(join(out, p))) files[relative(out, join(out, p, f))] = readFileSync(join(out, p, f), 'utf8');
  return { tables, files };
}

const open = (dir: string) => new Biller({ dbPath: join(dir, 'billing.db'), outDir: join(dir, 'out'), card });

describe('Biller', () => {
  it('gives the same ledger and invoices whatever the batches and however often it is dropped before committing', () => {
    const all = messages();
    const once = mkdtempSync(join(tmpdir(), 'strata-biller-'));
    const b = open(once);
    for (const m of all) b.event(m);
    b.flush();
    b.writeInvoices();
    b.close();
    const expected = dump(once);
    expect(Object.keys(expected.files).length).toBeGreaterThanOrEqual(6); // 3 projects x February, March
    expect(expected.tables.usage_closed.length).toBeGreaterThan(0);

    const dir = mkdtempSync(join(tmpdir(), 'strata-biller-'));
    let seed = 7;
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    let biller = open(dir);
    let crashes = 0;
    for (;;) {
      const from = biller.cursor ? Number(biller.cursor.slice(2)) : 0;
      if (from >= all.length) break;
      // Receive some messages, committing every few; then either go on or "crash" (drop what is pending).
      const upTo = Math.min(all.length, from + 1 + rand(25));
      for (let i = from; i < upTo; i++) {
        biller.event(all[i]);
        if (rand(4) === 0) biller.flush();
      }
      if (rand(3) === 0) {
        biller.close(); // pending events are lost, as in a killed process
        biller = open(dir);
        crashes++;
      } else biller.flush();
      if (rand(2) === 0) biller.writeInvoices();
    }
    biller.writeInvoices();
    biller.close();
    expect(crashes).toBeGreaterThan(3);
    expect(dump(dir)).toEqual(expected);
  });

  it('refuses an event without a payload (the server could not decode it) rather than skip it', () => {
    const m = { ...messages()[0], payloadJson: '' };
    expect(() => meteredEventOf(m)).toThrow(/came without a payload/);
    expect(meteredEventOf(messages()[1])).toEqual({ type: 'InstanceActionCompleted', aggregateType: 'instance', aggregateId: 'i0', version: 2, occurredAtMs: T0 + 60_123, vmState: 'active' });
  });
});
