// Issue 2 acceptance e: a projection rebuilt from offset 0 equals the live one row for row,
// on SQLite and on PostgreSQL; checkpoints are written with the rows; lag is measured.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionRunner } from '../infra/runtime/projection-runner.js';
import { PostgresStore } from '../infra/store/postgres-store.js';
import { SqliteStore } from '../infra/store/sqlite-store.js';
import type { Store } from '../infra/store/store.js';
import { counterProjection } from './conformance/counter.projection.js';
import { openTestLog, type TestLog } from './support/backends.js';
import { Harness, expectAccepted } from './support/harness.js';

const PG_URL = process.env.STRATA_TEST_PG_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/test';

type StoreKind = 'sqlite' | 'postgres';
const stores: Record<StoreKind, () => Store> = {
  sqlite: () => new SqliteStore(join(mkdtempSync(join(tmpdir(), 'strata-store-')), 'read.db')),
  postgres: () => new PostgresStore(PG_URL, `strata_test_${randomUUID().replaceAll('-', '').slice(0, 12)}`),
};

const dump = (store: Store) =>
  Promise.all([
    store.query('SELECT id, name, status, total, version, project_id, updated_at_ms FROM counters ORDER BY id'),
    store.query('SELECT event_id, counter_id, version, type, topic, partition, log_offset FROM counter_events ORDER BY event_id'),
  ]);

describe.each(['sqlite', 'postgres'] as const)('a counter projection on %s', (kind) => {
  let t: TestLog;
  let h: Harness;
  const opened: Store[] = [];
  const open = () => {
    const s = stores[kind]();
    opened.push(s);
    return s;
  };

  beforeAll(async () => {
    t = await openTestLog('embedded');
    h = await new Harness(t).start();
  });
  afterAll(async () => {
    await h.stop();
    await t.close();
    for (const s of opened) {
      if (s instanceof PostgresStore) await s.dropSchema();
      await s.close();
    }
  });

  it('rebuilt from offset 0 equals the live read model row for row', async () => {
    const live = open();
    const runner = new ProjectionRunner(t.log, live, counterProjection(h.topics.events));
    await runner.start();

    // Activity while the projection runs: opens, increments, closes, rejections.
    const ids = [...Array(30)].map(() => `c-${randomUUID()}`);
    await Promise.all(ids.map((id) => h.send(id, { type: 'OpenCounter', name: `n-${id}` })));
    let last;
    for (let round = 0; round < 5; round++) {
      const replies = await Promise.all(ids.map((id, i) => h.send(id, { type: 'IncrementCounter', amount: i + round + 1 })));
      last = replies.map(expectAccepted);
    }
    await Promise.all(ids.slice(0, 10).map((id) => h.send(id, { type: 'CloseCounter', reason: 'test' })));
    const final = expectAccepted(await h.send(ids[0], { type: 'CloseCounter', reason: 'again' }).then((r) => {
      // Closing twice is refused; open another counter to have a known last position.
      expect(r.kind).toBe('rejected');
      return h.send(`c-${randomUUID()}`, { type: 'OpenCounter', name: 'last' });
    }));
    expect(last).toBeDefined();

    await runner.waitFor(final.position!);
    // Wait for every partition, not only the last one written.
    for (let i = 0; i < 100 && (await runner.lag()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await runner.lag()).toBe(0);
    await runner.stop();

    const [counters, events] = await dump(live);
    expect(counters).toHaveLength(31);
    expect(events).toHaveLength(30 + 150 + 10 + 1);
    expect(counters.filter((c) => c.status === 'closed')).toHaveLength(10);
    const first = counters.find((c) => c.id === ids[0])!;
    expect(Number(first.total)).toBe(1 + 2 + 3 + 4 + 5);

    const rebuilt = open();
    await ProjectionRunner.rebuild(t.log, rebuilt, counterProjection(h.topics.events));
    const normalize = (rows: Record<string, unknown>[]) => rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
    expect(normalize(await dump(rebuilt).then((d) => d[0]))).toEqual(normalize(counters));
    expect(normalize(await dump(rebuilt).then((d) => d[1]))).toEqual(normalize(events));
    expect(await rebuilt.checkpoints('counters')).toEqual(await live.checkpoints('counters'));
  });

  it('resumes from its checkpoint after a restart without applying an event twice', async () => {
    const store = open();
    const projection = counterProjection(h.topics.events);
    const first = new ProjectionRunner(t.log, store, projection);
    await first.start();
    for (let i = 0; i < 100 && (await first.lag()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    await first.stop();
    const [beforeCounters] = await dump(store);

    const id = `c-${randomUUID()}`;
    expectAccepted(await h.send(id, { type: 'OpenCounter', name: 'after-restart' }));
    const inc = expectAccepted(await h.send(id, { type: 'IncrementCounter', amount: 42 }));

    const second = new ProjectionRunner(t.log, store, projection);
    await second.start();
    await second.waitFor(inc.position!);
    await second.stop();
    const [afterCounters] = await dump(store);
    expect(afterCounters).toHaveLength(beforeCounters.length + 1);
    expect(Number(afterCounters.find((c) => c.id === id)!.total)).toBe(42);
  });
});
