// A rebuild that uses more than one core: the read models are split into groups, and each group
// is rebuilt by rebuildReadModels on a worker thread of its own, which reads the log itself and
// writes its own fresh SQLite store file. Read models share nothing (each owns its tables and
// checkpoints), so a group's store holds exactly what one store rebuilt in one pass would hold for
// those read models. Embedded log only: a worker opens the log's SQLite file as a second
// connection (it only reads; WAL lets it read beside the writer). The cost per event does not
// drop (every group reads and decodes the records of its topics), the wall time does, by about
// the share of the largest group when there are idle cores.
import { Worker } from 'node:worker_threads';
import type { ReadModelOptions } from './read-models.js';
import type { Offsets, RebuildResult } from './rebuild.js';

/** The read models most of a full rebuild's CPU goes to, in two groups of about equal cost (measured: see README). */
export const TWO_GROUPS: string[][] = [
  ['audit', 'identity', 'image', 'object'],
  ['compute', 'network', 'block', 'metering_usage'],
];

export interface RebuildGroup {
  /** Names of read models (allReadModels()). */
  names: string[];
  /** A new SQLite file the group's read models are rebuilt into (throwaway settings). */
  storePath: string;
}

export interface ParallelRebuildOptions {
  /** The embedded log's SQLite file. */
  logPath: string;
  groups: RebuildGroup[];
  /** Topics carry this prefix before their usual name (bench:replay's own topics), if set. */
  topicPrefix?: string;
  /** As allReadModels takes them (the metering policy: plain data, copied to the workers). */
  readModels?: ReadModelOptions;
  upTo?: Map<string, Offsets>;
  batchRecords?: number;
}

/** @internal what a worker is given. */
export interface WorkerInput {
  logPath: string;
  storePath: string;
  names: string[];
  topicPrefix?: string;
  readModels?: ReadModelOptions;
  upTo?: Map<string, Offsets>;
  batchRecords?: number;
}

/** @internal what a worker answers. */
export type WorkerOutput = { ok: true; result: RebuildResult; commits: number[] } | { ok: false; error: string };

export interface ParallelRebuildResult extends RebuildResult {
  /** Per group, in the order given: its own result and commit times (ms). */
  groups: (RebuildResult & { names: string[]; commits: number[] })[];
}

function runGroup(options: ParallelRebuildOptions, group: RebuildGroup): Promise<RebuildResult & { commits: number[] }> {
  const input: WorkerInput = {
    logPath: options.logPath,
    storePath: group.storePath,
    names: group.names,
    topicPrefix: options.topicPrefix,
    readModels: options.readModels,
    upTo: options.upTo,
    batchRecords: options.batchRecords,
  };
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./rebuild.worker.mjs', import.meta.url), { workerData: input });
    let answer: WorkerOutput | undefined;
    worker.on('message', (m: WorkerOutput) => (answer = m));
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (answer?.ok) resolve({ ...answer.result, commits: answer.commits });
      else reject(new Error(`rebuild of ${group.names.join(', ')} failed${answer ? `: ${answer.error}` : ` (worker exit ${code})`}`));
    });
  });
}

/**
 * Rebuilds each group of read models into its own store file, the groups in parallel. `records`
 * is the largest group's count (each reads the records of its topics); `events` and `statements`
 * add up; `seconds` is the wall time of the whole.
 */
export async function rebuildInWorkers(options: ParallelRebuildOptions): Promise<ParallelRebuildResult> {
  const started = performance.now();
  const settled = await Promise.allSettled(options.groups.map((g) => runGroup(options, g)));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  const groups = settled.map((s, i) => ({ ...(s as PromiseFulfilledResult<RebuildResult & { commits: number[] }>).value, names: options.groups[i].names }));
  const reached = new Map<string, Offsets>();
  for (const g of groups) for (const [name, at] of g.reached) reached.set(name, at);
  return {
    reached,
    records: Math.max(0, ...groups.map((g) => g.records)),
    events: Math.max(0, ...groups.map((g) => g.events)),
    statements: groups.reduce((n, g) => n + g.statements, 0),
    seconds: (performance.now() - started) / 1000,
    groups,
  };
}
