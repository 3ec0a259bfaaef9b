// Full rebuild of every read model (allReadModels) from offset 0, per log backend: events/s over
// a log of at least 1,000,000 events across the domains (bench/replay.corpus.ts: decided by the
// real deciders, encoded as the runtime writes them). Baseline, in the same process and on the
// same log: reading every record and decoding its envelope, applying nothing (the ceiling a
// rebuild can reach on that backend); the ratio says what the projections and the store cost.
//
//   npm run bench:replay                          # embedded, then Kafka (1 broker, started if none runs)
//   STRATA_BENCH_BACKENDS=embedded npm run bench:replay
//   STRATA_BENCH_EVENTS=200000 npm run bench:replay
//   STRATA_BENCH_PER_PROJECTION=1 npm run bench:replay   # also one ProjectionRunner.rebuild per read model, as before
//   STRATA_BENCH_BATCH=20000 npm run bench:replay        # log records per store transaction
//   STRATA_BENCH_GROUPS=one npm run bench:replay         # embedded: only the one-thread rebuild, not also the worker threads' (or 'a,b|c,d': only workers, these groups)
//
// The topics are the bench's own (a unique prefix before strata.events.<domain>), deleted after on Kafka.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeEvent } from '../infra/envelope/envelope.codec.js';
import { hostedDomains } from '../infra/domains.js';
import { EmbeddedLog } from '../infra/log/embedded/embedded-log.js';
import { KafkaLog } from '../infra/log/kafka/kafka-log.js';
import type { Log } from '../infra/log/log.js';
import { readModelsOnTopics } from '../infra/replay/read-models.js';
import { rebuildInWorkers, TWO_GROUPS } from '../infra/replay/parallel-rebuild.js';
import { rebuildReadModels } from '../infra/replay/rebuild.js';
import { ProjectionRunner } from '../infra/runtime/projection-runner.js';
import { domainTopics } from '../infra/runtime/topology.js';
import { SqliteStore } from '../infra/store/sqlite-store.js';
import { writeCells } from './replay.corpus.js';

type Backend = 'embedded' | 'kafka';
const EVENTS = Number(process.env.STRATA_BENCH_EVENTS ?? 1_000_000);
const BACKENDS = (process.env.STRATA_BENCH_BACKENDS ?? 'embedded,kafka').split(',') as Backend[];
// 4 = the all-in-one default.
const PARTITIONS = Number(process.env.STRATA_BENCH_PARTITIONS ?? 4);
const BATCH = Number(process.env.STRATA_BENCH_BATCH ?? 20_000);
// Embedded: besides one pass on one thread, the read models in groups on worker threads (TWO_GROUPS); `one`: only the first; `a,b|c,d`: only workers, these groups.
const GROUPS = process.env.STRATA_BENCH_GROUPS;
const PER_PROJECTION = process.env.STRATA_BENCH_PER_PROJECTION === '1';

const figures: string[] = [];
const figure = (name: string, value: number, unit: string) =>
  figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(2)} ${unit}`);
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);

/** The 1-broker cluster of infra/kafka, or the cluster that already runs there (tests share a 3-node one: never torn down here). */
async function openKafka(): Promise<{ log: KafkaLog; label: string }> {
  const script = fileURLToPath(new URL('../infra/kafka/kafka.sh', import.meta.url));
  const status = execFileSync('bash', [script, 'status'], { encoding: 'utf8' });
  const running = status.split('\n').filter((l) => l.includes(': running')).length;
  const { ensureKafka } = await import('../infra/kafka/cluster.js');
  const nodes = running === 3 ? 3 : 1;
  const { brokers } = await ensureKafka({ nodes });
  // Replication factor 1 even on a running 3-node cluster: the figure is for one broker's copy.
  return { log: new KafkaLog({ brokers, replicationFactor: 1, minInsyncReplicas: 1 }), label: `kafka (${nodes} broker${nodes > 1 ? 's' : ''} up, topics with replication factor 1)` };
}

async function benchBackend(backend: Backend): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-replay-'));
  const { log, label }: { log: Log; label: string } =
    backend === 'embedded'
      ? { log: new EmbeddedLog({ path: join(dir, 'log.db'), synchronous: 'NORMAL' }), label: 'embedded (SQLite WAL)' }
      : await openKafka();
  const prefix = `bench-replay-${randomUUID().slice(0, 8)}`;
  const topicOf = (domain: string) => `${prefix}.${domainTopics(domain).events}`;
  await log.ensureTopics(hostedDomains.map((d) => ({ name: topicOf(d.name), partitions: PARTITIONS, replicationFactor: 1 })));
  const projections = readModelsOnTopics(prefix);
  const topics = [...new Set(projections.flatMap((p) => p.topics))];

  console.log(`\n${label}: ${PARTITIONS} partitions per events topic`);
  let t0 = performance.now();
  let perCell = 0;
  {
    // The cell's size is known once it is decided: enough cells for EVENTS.
    const probe = await writeCells(1, PARTITIONS, topicOf, async () => undefined);
    perCell = probe.perCell;
  }
  const cells = Math.ceil(EVENTS / perCell);
  const written = await writeCells(cells, PARTITIONS, topicOf, async (records) => void (await log.append(records)));
  const writeSeconds = (performance.now() - t0) / 1000;
  console.log(
    `log: ${written.records} events (${cells} cells of ${perCell}), ${(written.bytes / 1e6).toFixed(0)} MB of envelopes, written in ${writeSeconds.toFixed(1)} s; ` +
      Object.entries(written.byDomain).map(([d, n]) => `${d} ${n}`).join(', '),
  );

  // Baseline: every record read and its envelope decoded, nothing applied.
  t0 = performance.now();
  const baselineCpu0 = process.cpuUsage();
  let read = 0;
  for (const topic of topics) {
    const ends = await log.endOffsets(topic);
    for (let p = 0; p < ends.length; p++) {
      for await (const batch of log.read(topic, p, 0, ends[p])) {
        for (const r of batch) decodeEvent(r.value);
        read += batch.length;
      }
    }
  }
  const baselineSeconds = (performance.now() - t0) / 1000;
  const baseline = read / baselineSeconds;
  const baselineCpu = process.cpuUsage(baselineCpu0);
  const baselineCpuSeconds = (baselineCpu.user + baselineCpu.system) / 1e6;
  console.log(
    `baseline (read + decode every envelope): ${read} records in ${baselineSeconds.toFixed(1)} s, ${baseline.toFixed(0)} records/s; ` +
      `${(read / baselineCpuSeconds).toFixed(0)} records per CPU second`,
  );

  // The full rebuild: every read model into fresh SQLite stores. One pass on this thread into one
  // store (figures replay_<backend>_*); on the embedded log also the read models in groups, each
  // group on a worker thread reading the log itself and writing its own store (figures
  // replay_embedded_workers_*). STRATA_BENCH_GROUPS=one: only the first; 'a,b|c,d': only the second, with those groups.
  const modes: (string[][] | undefined)[] =
    backend !== 'embedded' || GROUPS === 'one' ? [undefined] : GROUPS ? [GROUPS.split('|').map((g) => g.split(','))] : [undefined, TWO_GROUPS];
  for (const groups of modes) {
    const storeDir = mkdtempSync(join(tmpdir(), 'strata-bench-replay-store-'));
    let commits: number[] = [];
    // CPU time beside wall time: on a shared machine the wall clock also counts other processes' turns (process-wide: every thread).
    const cpu0 = process.cpuUsage();
    let result: { records: number; events: number; statements: number; seconds: number };
    let computeStore: string | undefined;
    let how: string;
    if (groups) {
      const paths = groups.map((_, i) => join(storeDir, `group-${i}.db`));
      const r = await rebuildInWorkers({ logPath: join(dir, 'log.db'), topicPrefix: prefix, batchRecords: BATCH, groups: groups.map((names, i) => ({ names, storePath: paths[i] })) });
      result = r;
      commits = r.groups.flatMap((g) => g.commits);
      computeStore = paths.find((_, i) => groups[i].includes('compute'));
      how = `${groups.length} worker threads (${r.groups.map((g) => `${g.names.join('+')}: ${g.seconds.toFixed(1)} s`).join('; ')})`;
    } else {
      computeStore = join(storeDir, 'read-models.db');
      const store = new SqliteStore(computeStore, { throwaway: true });
      result = await rebuildReadModels(log, store, projections, { batchRecords: BATCH, onBatch: (b) => commits.push(b.commitMs) });
      await store.close();
      how = 'one thread';
    }
    const rate = result.records / result.seconds;
    const cpu = process.cpuUsage(cpu0);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    commits.sort((a, b) => a - b);
    let instances = 'not rebuilt';
    if (computeStore) {
      const check = new SqliteStore(computeStore);
      instances = String((await check.query<{ n: number }>('SELECT COUNT(*) AS n FROM compute_instances'))[0].n);
      await check.close();
    }
    console.log(
      `rebuild of ${groups ? groups.flat().length : projections.length} read models (${groups ? groups.flat().join(', ') : projections.map((p) => p.name).join(', ')}) on ${how}: ` +
        `${result.records} records (${result.events} applied, ${result.statements} statements) in ${result.seconds.toFixed(1)} s, ${rate.toFixed(0)} events/s, ` +
        `ratio to baseline ${(rate / baseline).toFixed(3)}; ${commits.length} transactions of ${BATCH} records, commit p50 ${percentile(commits, 50).toFixed(0)} ms ` +
        `p99 ${percentile(commits, 99).toFixed(0)} ms; compute_instances ${instances} rows; ${cpuSeconds.toFixed(1)} s of CPU, ` +
        `${(result.records / cpuSeconds).toFixed(0)} events per CPU second; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`,
    );
    const name = groups ? `replay_${backend}_workers` : `replay_${backend}`;
    figure(`${name}_events_per_s`, Math.round(rate), 'events/s');
    figure(`${name}_events_per_cpu_s`, Math.round(result.records / cpuSeconds), 'events/s');
    figure(`${name}_ratio_to_baseline`, rate / baseline, 'ratio');
    figure(`${name}_seconds`, result.seconds, 's');
    figure(`${name}_commit_p50`, percentile(commits, 50), 'ms');
    figure(`${name}_commit_p99`, percentile(commits, 99), 'ms');
    rmSync(storeDir, { recursive: true, force: true });
  }
  figure(`replay_${backend}_events`, read, 'events');
  figure(`replay_${backend}_baseline_read_decode_per_s`, Math.round(baseline), 'records/s');
  figure(`replay_${backend}_baseline_read_decode_per_cpu_s`, Math.round(read / baselineCpuSeconds), 'records/s');

  if (PER_PROJECTION) {
    // As before one pass over the log: each read model rebuilt on its own, batch by batch as the live runner applies.
    const perDir = mkdtempSync(join(tmpdir(), 'strata-bench-replay-store-'));
    const perStore = new SqliteStore(join(perDir, 'read-models.db'), { throwaway: true });
    t0 = performance.now();
    for (const p of projections) await ProjectionRunner.rebuild(log, perStore, p);
    const perSeconds = (performance.now() - t0) / 1000;
    console.log(`one ProjectionRunner.rebuild per read model: ${read} records in ${perSeconds.toFixed(1)} s, ${(read / perSeconds).toFixed(0)} events/s`);
    figure(`replay_${backend}_per_projection_events_per_s`, Math.round(read / perSeconds), 'events/s');
    await perStore.close();
    rmSync(perDir, { recursive: true, force: true });
  }

  if (log instanceof KafkaLog) await log.deleteTopicsContaining(prefix).catch((e: Error) => console.warn(`deleting ${prefix} topics: ${e.message}`));
  await log.close();
  rmSync(dir, { recursive: true, force: true });
}

for (const backend of BACKENDS) await benchBackend(backend);
console.log('');
for (const f of figures) console.log(f);
process.exit(0);
