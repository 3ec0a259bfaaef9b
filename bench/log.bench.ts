// End-to-end command throughput and latency per log backend: a client sends a command, waits
// for its reply, then waits until the event is visible in the projection (SQLite read model).
// Measured at 1, 16 and 256 concurrent clients. Baseline, in the same process: a bare log
// append round trip at the same concurrency, so the runtime's cost shows as a ratio.
//
//   npm run bench:log                       # embedded, then Kafka (1 broker, started if needed)
//   STRATA_BENCH_BACKENDS=embedded npm run bench:log
//   STRATA_BENCH_KAFKA_NODES=3 npm run bench:log
//   STRATA_BENCH_SECONDS=5 npm run bench:log  # time per measurement (default 4)
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLog } from '../infra/log/embedded/embedded-log.js';
import { KafkaLog } from '../infra/log/kafka/kafka-log.js';
import type { Log } from '../infra/log/log.js';
import { partitionForKey } from '../infra/log/partitioner.js';
import { CommandBus } from '../infra/runtime/command-bus.js';
import { DeciderWorker } from '../infra/runtime/decider-worker.js';
import { ProjectionRunner } from '../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../infra/runtime/topology.js';
import { SqliteStore } from '../infra/store/sqlite-store.js';
import { COUNTER, counterAggregate, counterCodec } from '../test/conformance/counter.decider.js';
import { counterProjection } from '../test/conformance/counter.projection.js';

type Backend = 'embedded' | 'kafka';
const SECONDS = Number(process.env.STRATA_BENCH_SECONDS ?? 4);
const CONCURRENCY = (process.env.STRATA_BENCH_CONCURRENCY ?? '1,16,256').split(',').map(Number);
const BACKENDS = (process.env.STRATA_BENCH_BACKENDS ?? 'embedded,kafka').split(',') as Backend[];
// 4 = the all-in-one default. On one 2-core machine fewer partitions mean bigger batches per
// transaction and more throughput; partitions pay off with more workers and machines.
const PARTITIONS = Number(process.env.STRATA_BENCH_PARTITIONS ?? 4);
const actor = { userId: 'bench', projectId: 'bench', roles: ['admin'] };
/** "process" (default): the decider worker runs in its own process, as deployed; "inline": in this one. */
const WORKER_MODE = process.env.STRATA_BENCH_WORKER ?? 'process';

function spawnWorker(env: Record<string, string>): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('../test/support/worker-process.ts', import.meta.url));
  // node itself with tsx as a loader: the pid we signal is the worker's, not a wrapper's.
  // STRATA_BENCH_WORKER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the worker.
  const nodeArgs = (process.env.STRATA_BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
    child.on('exit', (code) => reject(new Error(`decider worker exited with ${code}`)));
  });
}

const figures: string[] = [];
const figure = (name: string, value: number, unit: string) =>
  figures.push(`figure ${name} ${Number.isInteger(value) ? value : value.toFixed(2)} ${unit}`);

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Runs `op` from `clients` concurrent loops for SECONDS; returns ops/s and latencies (ms). */
async function measure(clients: number, op: (client: number, i: number) => Promise<void>) {
  const latencies: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let count = 0;
  await Promise.all(
    [...Array(clients)].map(async (_, c) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const t0 = performance.now();
        await op(c, i);
        latencies.push(performance.now() - t0);
        count++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: count / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), count };
}

async function openLog(backend: Backend): Promise<{ log: Log; topology: TopologyOptions; label: string; env: Record<string, string> }> {
  if (backend === 'embedded') {
    const path = join(mkdtempSync(join(tmpdir(), 'strata-bench-')), 'log.db');
    const synchronous = (process.env.STRATA_LOG_SYNCHRONOUS ?? 'FULL') as 'FULL' | 'NORMAL';
    return {
      log: new EmbeddedLog({ path, synchronous }),
      topology: { partitions: PARTITIONS, replicationFactor: 1, replyPartitions: 4 },
      label: `embedded (SQLite WAL, synchronous=${synchronous})`,
      env: { STRATA_LOG: 'embedded', STRATA_LOG_PATH: path, STRATA_LOG_SYNCHRONOUS: synchronous },
    };
  }
  const nodes = process.env.STRATA_BENCH_KAFKA_NODES === '3' ? 3 : 1;
  const { ensureKafka } = await import('../infra/kafka/cluster.js');
  const { brokers } = await ensureKafka({ nodes });
  return {
    log: new KafkaLog({ brokers, replicationFactor: nodes, minInsyncReplicas: Math.min(2, nodes) }),
    topology: { partitions: PARTITIONS, replicationFactor: nodes, replyPartitions: 4 },
    label: `kafka (${nodes} broker${nodes > 1 ? 's' : ''}, transactions, acks=all)`,
    env: { STRATA_LOG: 'kafka', STRATA_KAFKA_BROKERS: brokers.join(','), STRATA_KAFKA_REPLICATION_FACTOR: String(nodes) },
  };
}

async function benchBackend(backend: Backend): Promise<void> {
  const { log, topology, label, env } = await openLog(backend);
  const domain = `bench-${randomUUID().slice(0, 8)}`;
  const topics = await ensureDomainTopics(log, domain, topology);
  await log.ensureTopics([{ name: `${domain}.baseline`, partitions: PARTITIONS, replicationFactor: topology.replicationFactor }]);
  let worker: DeciderWorker | undefined;
  let child: ChildProcess | undefined;
  if (WORKER_MODE === 'inline') {
    worker = new DeciderWorker({ log, domain, aggregates: [counterAggregate], topology });
    await worker.start();
  } else {
    child = await spawnWorker({ ...env, STRATA_DOMAIN: domain, STRATA_PARTITIONS: String(PARTITIONS) });
  }
  const store = new SqliteStore(join(mkdtempSync(join(tmpdir(), 'strata-bench-store-')), 'read.db'), { synchronous: 'NORMAL' });
  const projection = new ProjectionRunner(log, store, counterProjection(topics.events));
  await projection.start();
  const bus = await CommandBus.connect({ log, timeoutMs: 60_000 });
  console.log(`\n${label}: ${PARTITIONS} partitions, decider worker ${WORKER_MODE === 'inline' ? 'in this process' : 'in its own process'}, ${SECONDS}s per measurement`);
  console.log('clients  baseline append/s   commands/s   p50 ms    p99 ms   ratio to baseline');

  const increment = counterCodec.encodeCommand({ type: 'IncrementCounter', amount: 1 });
  for (const clients of CONCURRENCY) {
    // Each client owns a few counters, so load spreads over partitions as it would in a cloud.
    const counters = [...Array(clients)].map(() => [...Array(4)].map(() => `bench-${randomUUID()}`));
    await Promise.all(
      counters.flat().map((id) =>
        bus.send({ domain, aggregateType: COUNTER, aggregateId: id, type: 'OpenCounter', payload: counterCodec.encodeCommand({ type: 'OpenCounter', name: id }), actor }),
      ),
    );
    // STRATA_BENCH_BASELINE=0 skips the baseline (when profiling the end-to-end path alone).
    const baseline = process.env.STRATA_BENCH_BASELINE === '0' ? { perSecond: NaN } : await measure(clients, async (c, i) => {
      const key = counters[c][i % 4];
      await log.append([{ topic: `${domain}.baseline`, partition: partitionForKey(key, PARTITIONS), key, value: increment }]);
    });
    const e2e = await measure(clients, async (c, i) => {
      const reply = await bus.send({
        domain,
        aggregateType: COUNTER,
        aggregateId: counters[c][i % 4],
        type: 'IncrementCounter',
        payload: increment,
        actor,
      });
      if (reply.kind !== 'accepted') throw new Error(`rejected: ${reply.rejection.message}`);
      await projection.waitFor(reply.position!);
    });
    const ratio = e2e.perSecond / baseline.perSecond;
    console.log(
      `${String(clients).padStart(7)}  ${baseline.perSecond.toFixed(0).padStart(17)}  ${e2e.perSecond.toFixed(0).padStart(11)}  ${e2e.p50.toFixed(2).padStart(7)}  ${e2e.p99.toFixed(2).padStart(8)}  ${ratio.toFixed(3).padStart(18)}`,
    );
    figure(`${backend}_c${clients}_commands_per_s`, Math.round(e2e.perSecond), 'commands/s');
    figure(`${backend}_c${clients}_p50`, e2e.p50, 'ms');
    figure(`${backend}_c${clients}_p99`, e2e.p99, 'ms');
    figure(`${backend}_c${clients}_ratio_to_append_baseline`, ratio, 'ratio');
  }
  await bus.close();
  await projection.stop();
  await worker?.stop();
  child?.kill('SIGTERM');
  await store.close();
  await log.close();
}

for (const backend of BACKENDS) await benchBackend(backend);
console.log('');
for (const f of figures) console.log(f);
process.exit(0);
