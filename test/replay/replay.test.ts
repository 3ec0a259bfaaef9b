// Replay verification on a real cloud (embedded log, SQLite read models, conductor and fake-driver
// hosts): every read model rebuilt from offset 0 into a fresh store equals the live one table by
// table; a row changed behind the projections' back is named with both counts and hashes; a live
// store behind the log, or one that keeps changing during the comparison, is compared at the point
// its checkpoints say; one ahead of the log is reported as such. Then the same on PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { allReadModels } from '../../infra/replay/read-models.js';
import { rebuildReadModels } from '../../infra/replay/rebuild.js';
import { describeDifferences, freshPostgresStore, freshSqliteStore, verifyReadModels, type ReplayReport } from '../../infra/replay/replay.js';
import { PostgresStore } from '../../infra/store/postgres-store.js';
import type { Store } from '../../infra/store/store.js';
import { eventually, startComputeCloud, type ComputeTestCloud } from '../compute/compute-cloud.js';
import { PG_URL, pgReachable, testStores } from '../support/projection-harness.js';

const table = (report: ReplayReport, name: string) => report.projections.flatMap((p) => p.tables).find((t) => t.table === name)!;
const differing = (report: ReplayReport) => report.projections.flatMap((p) => p.tables.filter((t) => !t.equal).map((t) => t.table));

describe('replay verification', () => {
  let t: ComputeTestCloud;
  let serial = 0;

  /** Some activity across domains: a flavor, a network with a subnet and a port, a server booted and stopped. */
  async function activity(): Promise<void> {
    const n = ++serial;
    await t.admin.call('CreateFlavor', { flavor: { id: `f${n}`, name: `m${n}.tiny`, vcpus: 1, ramMb: 256, diskGb: 1 } });
    const network = (await t.admin.call('CreateNetwork', { network: { name: `net-${n}` } })).network;
    await t.admin.call('CreateSubnet', { subnet: { networkId: network.id, cidr: `10.${n}.0.0/24`, name: `sub-${n}` } });
    await t.admin.call('CreatePort', { port: { networkId: network.id, name: `port-${n}` } });
    const server = (await t.admin.call('CreateServer', { name: `vm-${n}`, flavorId: `f${n}`, imageId: 'cirros' })).servers[0];
    await eventually(async () => ((await t.admin.call('GetServer', { id: server.id })).server.status === 'ACTIVE' ? true : undefined), 30_000, 'ACTIVE');
    await t.admin.call('StopServer', { id: server.id });
    await eventually(async () => ((await t.admin.call('GetServer', { id: server.id })).server.status === 'SHUTOFF' ? true : undefined), 30_000, 'SHUTOFF');
  }

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 2 });
    await activity();
    await activity();
  }, 120_000);
  afterAll(async () => t?.close());

  it('finds every table of every read model equal after some activity', async () => {
    const report = await verifyReadModels({ log: t.log, live: t.store, fresh: freshSqliteStore() });
    expect(describeDifferences(report)).toEqual([]);
    expect(report.equal).toBe(true);
    expect(report.dialect).toBe('sqlite');
    expect(report.projections.map((p) => p.projection).sort()).toEqual(allReadModels().map((p) => p.name).sort());
    expect(report.eventsReplayed).toBeGreaterThan(50);
    // Real rows were compared, not empty tables.
    expect(table(report, 'compute_instances')).toMatchObject({ liveRows: 2, replayedRows: 2, equal: true });
    expect(table(report, 'network_ports').liveRows).toBeGreaterThanOrEqual(2);
    expect(table(report, 'compute_instances').liveHash).toMatch(/^[0-9a-f]{64}$/);
    const compute = report.projections.find((p) => p.projection === 'compute')!;
    expect(compute.positions.length).toBeGreaterThan(0);
    for (const x of compute.positions) expect(x.replayed).toBe(x.live);
  }, 60_000);

  it('names a table whose live row was changed behind the projection, with both counts and hashes', async () => {
    await t.store.apply([{ sql: `UPDATE compute_flavors SET name = 'tampered' WHERE id = 'f1'`, params: [] }], []);
    try {
      const report = await verifyReadModels({ log: t.log, live: t.store, fresh: freshSqliteStore() });
      expect(report.equal).toBe(false);
      expect(differing(report)).toEqual(['compute_flavors']);
      const flavors = table(report, 'compute_flavors');
      expect(flavors.liveRows).toBe(flavors.replayedRows);
      expect(flavors.liveHash).not.toBe(flavors.replayedHash);
      expect(report.projections.find((p) => p.projection === 'compute')!.equal).toBe(false);
      expect(report.projections.find((p) => p.projection === 'identity')!.equal).toBe(true);
      expect(describeDifferences(report)).toEqual([expect.stringMatching(/^compute: compute_flavors differs: live \d+ rows [0-9a-f]{12}, replayed \d+ rows [0-9a-f]{12}$/)]);
      // A deleted row shows in the counts.
      await t.store.apply([{ sql: `DELETE FROM network_subnets WHERE name = 'sub-2'`, params: [] }], []);
      const again = await verifyReadModels({ log: t.log, live: t.store, fresh: freshSqliteStore() });
      expect(differing(again).sort()).toEqual(['compute_flavors', 'network_subnets']);
      expect(table(again, 'network_subnets').liveRows).toBe(table(again, 'network_subnets').replayedRows - 1);
    } finally {
      // Mend the live store by rebuilding the two read models in place.
      for (const p of allReadModels().filter((p) => p.name === 'compute' || p.name === 'network')) await ProjectionRunner.rebuild(t.log, t.store, p);
    }
    expect((await verifyReadModels({ log: t.log, live: t.store, fresh: freshSqliteStore() })).equal).toBe(true);
  }, 60_000);

  it('compares a live store behind the log at its checkpoints, and one that keeps changing at one instant', async () => {
    // A second live store, fed by its own runners, then stopped: the log moves on without it.
    const behind = testStores('replay').sqlite();
    const runners = allReadModels().map((p) => new ProjectionRunner(t.log, behind, p));
    for (const r of runners) await r.start();
    await eventually(async () => ((await Promise.all(runners.map((r) => r.lag()))).every((l) => l === 0) ? true : undefined), 20_000, 'caught up');
    for (const r of runners) await r.stop();
    // While activity goes on, the cloud's own store is verified (its projections commit during the comparison).
    const during = activity();
    const live = await verifyReadModels({ log: t.log, live: t.store, fresh: freshSqliteStore() });
    await during;
    expect(describeDifferences(live)).toEqual([]);
    const report = await verifyReadModels({ log: t.log, live: behind, fresh: freshSqliteStore() });
    expect(describeDifferences(report)).toEqual([]);
    expect(report.equal).toBe(true);
    // It was behind: the log holds more than it has applied.
    const ends = await t.log.endOffsets('strata.events.compute');
    const applied = report.projections.find((p) => p.projection === 'compute')!.positions.reduce((n, x) => n + x.live, 0);
    expect(applied).toBeLessThan(ends.reduce((a, b) => a + b, 0));
    await behind.close();
  }, 120_000);

  it('reports a live store whose checkpoint is beyond the end of the log', async () => {
    const ahead = testStores('replay').sqlite();
    for (const p of allReadModels()) await ProjectionRunner.rebuild(t.log, ahead, p);
    const ends = await t.log.endOffsets('strata.events.image');
    await ahead.apply([], [{ projection: 'image', topic: 'strata.events.image', partition: 0, nextOffset: ends[0] + 5 }]);
    const report = await verifyReadModels({ log: t.log, live: ahead, fresh: freshSqliteStore() });
    expect(report.equal).toBe(false);
    expect(differing(report)).toEqual([]);
    expect(report.projections.find((p) => p.projection === 'image')!.positions).toContainEqual({
      topic: 'strata.events.image',
      partition: 0,
      live: ends[0] + 5,
      replayed: ends[0],
    });
    expect(describeDifferences(report)).toEqual([`image: strata.events.image/0 live at ${ends[0] + 5}, the log ends at ${ends[0]}`]);
    await ahead.close();
  }, 60_000);

  it('fails the rebuild when a batch fails to commit, with that batch\'s error', async () => {
    const store = testStores('replay').sqlite();
    let batches = 0;
    const failing = Object.assign(Object.create(Object.getPrototypeOf(store) as object) as Store, store, {
      apply: async (...args: Parameters<Store['apply']>) => {
        if (++batches === 2) throw new Error('disk full');
        return store.apply(...args);
      },
    });
    await expect(rebuildReadModels(t.log, failing, allReadModels(), { batchRecords: 10 })).rejects.toThrow('disk full');
    await store.close();
  }, 60_000);

  (pgReachable ? it : it.skip)('does the same on PostgreSQL: equal, then a changed row named', async () => {
    const pg = testStores('replay').postgres() as PostgresStore;
    const stores: Store[] = [pg];
    try {
      for (const p of allReadModels()) await ProjectionRunner.rebuild(t.log, pg, p);
      const report = await verifyReadModels({ log: t.log, live: pg, fresh: freshPostgresStore(PG_URL) });
      expect(describeDifferences(report)).toEqual([]);
      expect(report.dialect).toBe('postgres');
      expect(table(report, 'compute_instances').liveRows).toBeGreaterThanOrEqual(2);
      await pg.apply([{ sql: `UPDATE compute_instances SET name = 'tampered' WHERE name = 'vm-1'`, params: [] }], []);
      const changed = await verifyReadModels({ log: t.log, live: pg, fresh: freshPostgresStore(PG_URL) });
      expect(differing(changed)).toEqual(['compute_instances']);
      // The fresh schemas are gone.
      const schemas = await pg.query<{ n: number }>(`SELECT COUNT(*)::int AS n FROM information_schema.schemata WHERE schema_name LIKE 'strata_replay_%'`);
      expect(schemas[0].n).toBe(0);
    } finally {
      for (const s of stores) {
        await (s as PostgresStore).dropSchema();
        await s.close();
      }
    }
  }, 120_000);
});
