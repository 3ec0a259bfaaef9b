// The block agent's configuration, from the environment (listed in README.md). One agent per
// storage host.
import { hostname } from 'node:os';
import { join } from 'node:path';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';

export interface BlockAgentConfig {
  domain: string;
  partitions: number;
  replyPartitions: number;
  hostId: string;
  backend: string;
  availabilityZone: string;
  stateDir: string;
  /** Capacity to report (GiB); undefined: the filesystem's size. */
  totalGb: number | undefined;
  imageDir: string | undefined;
  resyncMs: number;
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number | undefined): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a number above 0, got "${raw}"`);
  return n;
}

export function blockAgentConfigFromEnv(env: NodeJS.ProcessEnv = process.env): BlockAgentConfig {
  const backend = env.STRATA_LOG ?? 'embedded';
  const partitions = positive(env, 'STRATA_PARTITIONS', backend === 'embedded' ? 4 : 12)!;
  if (!Number.isInteger(partitions)) throw new Error(`STRATA_PARTITIONS must be an integer, got "${env.STRATA_PARTITIONS}"`);
  const volumeBackend = (env.STRATA_BLOCK_BACKEND ?? 'local').trim();
  if (!/^[A-Za-z0-9_.@#-]{1,64}$/.test(volumeBackend)) throw new Error(`STRATA_BLOCK_BACKEND must be a backend name (letters, digits, _ . @ # -), got "${volumeBackend}"`);
  return {
    domain: env.STRATA_BLOCK_DOMAIN || BLOCK_DOMAIN,
    partitions,
    replyPartitions: positive(env, 'STRATA_REPLY_PARTITIONS', partitions)!,
    hostId: env.STRATA_AGENT_HOST_ID || hostname(),
    backend: volumeBackend,
    availabilityZone: env.STRATA_AVAILABILITY_ZONE || 'nova',
    stateDir: env.STRATA_BLOCK_STATE_DIR || join(env.STRATA_STATE_DIR ?? '.strata', 'block'),
    totalGb: positive(env, 'STRATA_BLOCK_TOTAL_GB', undefined),
    imageDir: env.STRATA_IMAGE_DIR || undefined,
    resyncMs: positive(env, 'STRATA_BLOCK_RESYNC_S', 5)! * 1000,
  };
}
