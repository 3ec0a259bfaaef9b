// Opens a fresh log of either backend for a test. Kafka tests share one 3-broker cluster
// (replication factor 3, min.insync.replicas 2) started by infra/kafka; each test isolates
// itself by a unique domain name, hence unique topics.
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { KafkaLog } from '../../infra/log/kafka/kafka-log.js';
import type { Log } from '../../infra/log/log.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';

export type Backend = 'embedded' | 'kafka';
/** Both by default; STRATA_TEST_BACKENDS=embedded narrows a local run (CI runs both). */
export const BACKENDS: Backend[] = (process.env.STRATA_TEST_BACKENDS ?? 'embedded,kafka')
  .split(',')
  .filter((b): b is Backend => b === 'embedded' || b === 'kafka');

export interface TestLog {
  log: Log;
  backend: Backend;
  /** How a second process opens the same log: environment for test/support/worker-process.ts. */
  env: Record<string, string>;
  topology: TopologyOptions;
  domain: string;
  close(): Promise<void>;
}

export const KAFKA_NODES = 3;

export async function openTestLog(backend: Backend, partitions = 4): Promise<TestLog> {
  const domain = `conformance-${randomUUID().slice(0, 8)}`;
  if (backend === 'embedded') {
    const path = join(mkdtempSync(join(tmpdir(), 'strata-test-')), 'log.db');
    const log = new EmbeddedLog({ path, sessionTimeoutMs: 1500 });
    return {
      log,
      backend,
      domain,
      env: { STRATA_LOG: 'embedded', STRATA_LOG_PATH: path },
      topology: { partitions, replicationFactor: 1, replyPartitions: 4 },
      close: () => log.close(),
    };
  }
  const { ensureKafka } = await import('../../infra/kafka/cluster.js');
  const { brokers } = await ensureKafka({ nodes: KAFKA_NODES });
  const log = new KafkaLog({ brokers, replicationFactor: KAFKA_NODES, minInsyncReplicas: 2 });
  return {
    log,
    backend,
    domain,
    env: { STRATA_LOG: 'kafka', STRATA_KAFKA_BROKERS: brokers.join(',') },
    topology: { partitions, replicationFactor: KAFKA_NODES, replyPartitions: 4 },
    // The shared cluster slows down as topics pile up (hundreds per run): a test removes its own.
    close: async () => {
      await log.deleteTopicsContaining(domain).catch((e: Error) => console.warn(`deleting ${domain} topics: ${e.message}`));
      await log.close();
    },
  };
}
