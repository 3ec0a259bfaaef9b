// The read models rebuilt in groups on worker threads (rebuildInWorkers: each group reads the
// embedded log itself and writes a store file of its own) come out exactly as one pass on one
// thread into one store: every table of every read model has the same rows (count and content
// hash), and every read model stopped at the same log positions. Over bench:replay's corpus (the
// real deciders' events across all domains), twice retagged, on the bench's prefixed topics, with
// stopped servers billed (a metering policy other than the default, carried to the workers).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { writeCells } from '../../bench/replay.corpus.js';
import { hostedDomains } from '../../infra/domains.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { rebuildInWorkers, TWO_GROUPS } from '../../infra/replay/parallel-rebuild.js';
import { allReadModels, readModelsOnTopics } from '../../infra/replay/read-models.js';
import { rebuildReadModels } from '../../infra/replay/rebuild.js';
import { tableDigest } from '../../infra/replay/replay.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-parallel-rebuild-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('rebuilds in worker threads exactly what one pass rebuilds', async () => {
  const prefix = 'ptest';
  const topicOf = (domain: string) => `${prefix}.${domainTopics(domain).events}`;
  const logPath = join(dir, 'log.db');
  const log = new EmbeddedLog({ path: logPath, synchronous: 'NORMAL' });
  await log.ensureTopics(hostedDomains.map((d) => ({ name: topicOf(d.name), partitions: 4, replicationFactor: 1 })));
  const written = await writeCells(2, 4, topicOf, async (records) => void (await log.append(records)));

  const one = new SqliteStore(join(dir, 'one.db'), { throwaway: true });
  // Stopped servers billed (not the default): the policy must reach the workers' usage read model.
  const readModels = { metering: { stopped: true } };
  const single = await rebuildReadModels(log, one, readModelsOnTopics(prefix, readModels), { batchRecords: 1000 });
  expect(single.records).toBe(written.records);

  const groups = TWO_GROUPS.map((names, i) => ({ names, storePath: join(dir, `group-${i}.db`) }));
  expect(groups.flatMap((g) => g.names).sort()).toEqual(allReadModels().map((p) => p.name).sort());
  const parallel = await rebuildInWorkers({ logPath, topicPrefix: prefix, readModels, batchRecords: 1000, groups });
  expect(parallel.records).toBe(written.records);
  expect(parallel.statements).toBe(single.statements);

  for (const g of groups) {
    const store = new SqliteStore(g.storePath);
    for (const p of allReadModels().filter((x) => g.names.includes(x.name))) {
      expect(parallel.reached.get(p.name)).toEqual(single.reached.get(p.name));
      expect(await store.checkpoints(p.name)).toEqual(await one.checkpoints(p.name));
      for (const t of p.tables) {
        const a = await tableDigest(one, t);
        expect(a.rows, t).toBeGreaterThan(t === 'audit_events' ? 0 : -1);
        expect(await tableDigest(store, t), t).toEqual(a);
      }
    }
    await store.close();
  }
  await one.close();
  await log.close();
}, 120_000);
