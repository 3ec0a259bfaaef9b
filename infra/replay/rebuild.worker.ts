// One group of read models rebuilt on a worker thread (see parallel-rebuild.ts): it opens the
// embedded log itself (a second connection to the SQLite file, which it only reads) and writes a
// fresh store file of its own, then reports what rebuildReadModels returned.
import { parentPort, workerData } from 'node:worker_threads';
import { EmbeddedLog } from '../log/embedded/embedded-log.js';
import { SqliteStore } from '../store/sqlite-store.js';
import { readModelsOnTopics } from './read-models.js';
import { rebuildReadModels } from './rebuild.js';
import type { WorkerInput, WorkerOutput } from './parallel-rebuild.js';

const input = workerData as WorkerInput;
const log = new EmbeddedLog({ path: input.logPath, synchronous: 'NORMAL' });
const store = new SqliteStore(input.storePath, { throwaway: true });
try {
  const all = readModelsOnTopics(input.topicPrefix, input.readModels);
  const projections = input.names.map((name) => {
    const p = all.find((x) => x.name === name);
    if (!p) throw new Error(`no read model named ${name}`);
    return p;
  });
  const commits: number[] = [];
  const result = await rebuildReadModels(log, store, projections, {
    upTo: input.upTo,
    batchRecords: input.batchRecords,
    onBatch: (b) => commits.push(b.commitMs),
  });
  parentPort!.postMessage({ ok: true, result, commits } satisfies WorkerOutput);
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).stack ?? String(e) } satisfies WorkerOutput);
} finally {
  await store.close();
  await log.close();
}
