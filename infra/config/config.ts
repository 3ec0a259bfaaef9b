// Process configuration from the environment, with defaults that give the all-in-one cloud on
// the embedded log. Every setting is listed here and in README.md.
import { join } from 'node:path';
import { EmbeddedLog } from '../log/embedded/embedded-log.js';
import { KafkaLog } from '../log/kafka/kafka-log.js';
import type { Log } from '../log/log.js';

export interface LogConfig {
  backend: 'embedded' | 'kafka';
  /** embedded: the SQLite file. */
  path: string;
  /** embedded: FULL (default) survives power loss; NORMAL survives a killed process. */
  synchronous: 'FULL' | 'NORMAL';
  /** kafka: bootstrap brokers. */
  brokers: string[];
  replicationFactor: number;
}

export function logConfigFromEnv(env: NodeJS.ProcessEnv = process.env): LogConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  if (backend !== 'embedded' && backend !== 'kafka') {
    throw new Error(`STRATA_LOG must be "embedded" or "kafka", got "${backend}"`);
  }
  const synchronous = (env.STRATA_LOG_SYNCHRONOUS ?? 'FULL').toUpperCase();
  if (synchronous !== 'FULL' && synchronous !== 'NORMAL') {
    throw new Error(`STRATA_LOG_SYNCHRONOUS must be FULL or NORMAL, got "${synchronous}"`);
  }
  const brokers = (env.STRATA_KAFKA_BROKERS ?? '127.0.0.1:19092').split(',').filter(Boolean);
  const replicationFactor = Number(env.STRATA_KAFKA_REPLICATION_FACTOR ?? Math.min(3, brokers.length));
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1) {
    throw new Error(`STRATA_KAFKA_REPLICATION_FACTOR must be a positive integer, got "${env.STRATA_KAFKA_REPLICATION_FACTOR}"`);
  }
  return {
    backend,
    path: env.STRATA_LOG_PATH ?? join(env.STRATA_STATE_DIR ?? '.strata', 'log.db'),
    synchronous,
    brokers,
    replicationFactor,
  };
}

export function openLog(config: LogConfig): Log {
  if (config.backend === 'embedded') {
    return new EmbeddedLog({ path: config.path, synchronous: config.synchronous });
  }
  return new KafkaLog({
    brokers: config.brokers,
    replicationFactor: config.replicationFactor,
    minInsyncReplicas: Math.min(2, config.replicationFactor),
  });
}
