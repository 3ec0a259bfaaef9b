// Process configuration from the environment, with defaults that give the all-in-one cloud on
// the embedded log. Every setting is listed here and in README.md.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { EmbeddedLog } from '../log/embedded/embedded-log.js';
import { KafkaLog } from '../log/kafka/kafka-log.js';
import type { Log } from '../log/log.js';
import { PostgresStore } from '../store/postgres-store.js';
import { SqliteStore } from '../store/sqlite-store.js';
import type { Store } from '../store/store.js';

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

export type StoreConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema: string };

export function storeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): StoreConfig {
  const kind = env.STRATA_STORE ?? 'sqlite';
  if (kind === 'sqlite') return { kind, path: env.STRATA_STORE_PATH ?? join(env.STRATA_STATE_DIR ?? '.strata', 'read-models.db') };
  if (kind === 'postgres') {
    return { kind, url: env.STRATA_PG_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres', schema: env.STRATA_PG_SCHEMA ?? 'strata' };
  }
  throw new Error(`STRATA_STORE must be "sqlite" or "postgres", got "${kind}"`);
}

export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.kind === 'sqlite') {
    mkdirSync(dirname(config.path), { recursive: true });
    return new SqliteStore(config.path);
  }
  return new PostgresStore(config.url, config.schema);
}

export interface ApiConfig {
  stateDir: string;
  host: string;
  port: number;
  /** Plain gRPC without TLS (STRATA_API_INSECURE=1): for a trusted loopback only. */
  insecure: boolean;
  /** Names and addresses the generated server certificate is valid for. */
  tlsHosts: string[];
  partitions: number;
  tokenTtlMs: number;
  lockoutAttempts: number;
  lockoutDurationMs: number;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return n;
}

export function apiConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  return {
    stateDir: env.STRATA_STATE_DIR ?? '.strata',
    host: env.STRATA_API_HOST ?? '127.0.0.1',
    port: integer(env, 'STRATA_API_PORT', 5050, 0),
    insecure: env.STRATA_API_INSECURE === '1',
    tlsHosts: (env.STRATA_TLS_HOSTS ?? 'localhost,127.0.0.1').split(',').filter(Boolean),
    partitions: integer(env, 'STRATA_PARTITIONS', backend === 'embedded' ? 4 : 12, 1),
    tokenTtlMs: integer(env, 'STRATA_TOKEN_TTL_S', 3600, 1) * 1000,
    lockoutAttempts: integer(env, 'STRATA_LOCKOUT_ATTEMPTS', 6, 0),
    lockoutDurationMs: integer(env, 'STRATA_LOCKOUT_DURATION_S', 1800, 1) * 1000,
  };
}
