// Where an object's replicas live: its partition from the md5 of its path (Swift's
// get_part: the top part_power bits of the digest's first 4 bytes, salted with the cluster's
// hash path prefix and suffix so that names cannot be chosen to pile onto one partition), and
// the devices the ring gives that partition.
import { createHash } from 'node:crypto';
import { handoffDevices, partitionOfHash, primaryDevices, type Ring, type RingDevice } from '../../domains/object/ring.js';

/** Swift's swift_hash_path_prefix / suffix: cluster-wide, never changed once objects exist. */
const HASH_PATH_PREFIX = process.env.STRATA_OBJECT_HASH_PREFIX ?? '';
const HASH_PATH_SUFFIX = process.env.STRATA_OBJECT_HASH_SUFFIX ?? 'strata';

export const pathHash = (account: string, container: string, object: string) =>
  createHash('md5').update(`${HASH_PATH_PREFIX}/${account}/${container}/${object}${HASH_PATH_SUFFIX}`).digest('hex');

export const partitionOf = (ring: Pick<Ring, 'partPower'>, account: string, container: string, object: string) =>
  partitionOfHash(pathHash(account, container, object), ring.partPower);

/** Swift's quorum for replicated policies: (replicas + 1) // 2 (shared/reference §8.3). */
export const writeQuorum = (replicas: number) => Math.floor((replicas + 1) / 2);

/** The nodes a request tries, primaries first, then at most as many handoffs (request_node_count = 2 x replicas). */
export function nodesFor(ring: Ring, partition: number): { primaries: RingDevice[]; handoffs: RingDevice[] } {
  const primaries = primaryDevices(ring, partition);
  return { primaries, handoffs: handoffDevices(ring, partition).slice(0, ring.replicas) };
}

/** An object's path on an object server: /o/<partition>/<account>/<container>/<object>, each segment percent-encoded. */
export const replicaPath = (partition: number, account: string, container: string, name: string) =>
  `/o/${partition}/${encodeURIComponent(account)}/${encodeURIComponent(container)}/${name.split('/').map(encodeURIComponent).join('/')}`;

/** "127.0.0.1:6201" as host and port. */
export const splitHost = (hostPort: string): [string, number] => {
  const i = hostPort.lastIndexOf(':');
  return [hostPort.slice(0, i), Number(hostPort.slice(i + 1))];
};
