// A real all-in-one cloud for block storage tests: the test cloud (embedded log, SQLite read
// models, TLS gRPC, bootstrapped) with the block API and conductor, storage hosts whose block
// agents run in the process on real files (qemu-img, qemu-storage-daemon), and fake-driver compute
// hosts with the compute conductor, so servers boot and volumes can be attached to them; object
// storage devices on request, so that the image service keeps image data. A member
// of a new project and a flavor are ready.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BlockAgent } from '../../agents/block/block.agent.js';
import type { HostConfig } from '../../agents/compute/compute.agent.js';
import { FakeDriver } from '../../agents/compute/fake.driver.js';
import { roleId } from '../../api/identity/bootstrap.js';
import { KafkaLog } from '../../infra/log/kafka/kafka-log.js';
import type { StrataClient } from '../../cli/client.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';
import { KAFKA_NODES, type Backend } from './backends.js';
import { until } from './wait.js';

export interface BlockRigOptions {
  /** Storage hosts (block agents in the process), each with its own state directory. */
  storageHosts?: { hostId?: string; backend?: string; availabilityZone?: string; totalGb?: number }[];
  /** Fake-driver compute hosts. */
  computeHosts?: number;
  /** Object storage devices (object servers in the process, one zone each, 3 replicas) for the image service's data; default none. */
  objectDevices?: number;
  /** The log: embedded (default), or the shared Kafka cluster of the tests. */
  backend?: Backend;
}

export interface BlockRig extends TestCloud {
  admin: StrataClient;
  member: StrataClient;
  projectId: string;
  flavorId: string;
  storage: BlockAgent[];
  drivers: Map<string, FakeDriver>;
  /** Waits until the volume's status is `status` (or fails naming the one it is in). */
  volumeStatus(id: string, status: string, timeoutMs?: number): Promise<Record<string, any>>;
  /** A new project member's client. */
  newMember(): Promise<{ client: StrataClient; projectId: string }>;
}

export async function startBlockRig(o: BlockRigOptions = {}): Promise<BlockRig> {
  const id = randomUUID().slice(0, 6);
  const blockDir = mkdtempSync(join(tmpdir(), 'strata-block-'));
  const storage = (o.storageHosts ?? [{}]).map((h, i) => ({
    hostId: h.hostId ?? `storage-${i + 1}-${id}`,
    backend: h.backend ?? 'local',
    availabilityZone: h.availabilityZone ?? 'nova',
    stateDir: join(blockDir, `host-${i + 1}`),
    totalGb: h.totalGb ?? 100,
    resyncMs: 500,
  }));
  const drivers = new Map<string, FakeDriver>();
  const computeHosts: HostConfig[] = Array.from({ length: o.computeHosts ?? 0 }, (_, i) => {
    const hostId = `compute-${i + 1}-${id}`;
    const driver = new FakeDriver(hostId);
    drivers.set(hostId, driver);
    return { hostId, availabilityZone: 'nova', inventory: { vcpus: { total: 8, allocationRatio: 4 }, ramMb: { total: 16384, allocationRatio: 1 }, diskGb: { total: 200 } }, driver };
  });
  let log: KafkaLog | undefined;
  if (o.backend === 'kafka') {
    const { ensureKafka } = await import('../../infra/kafka/cluster.js');
    const { brokers } = await ensureKafka({ nodes: KAFKA_NODES });
    log = new KafkaLog({ brokers, replicationFactor: KAFKA_NODES, minInsyncReplicas: 2 });
  }
  const objectDevices = Array.from({ length: o.objectDevices ?? 0 }, (_, i) => ({ deviceId: i + 1, root: join(blockDir, `object-${i + 1}`), port: 0, zone: i + 1 }));
  const objects = objectDevices.length > 0 ? { objectDevices, objectRing: { partPower: 6, replicas: Math.min(3, objectDevices.length) } } : {};
  const t = await startTestCloud({}, { log, replicationFactor: log ? KAFKA_NODES : 1, conductor: computeHosts.length > 0 ? { tickMs: 200 } : false, computeHosts, blockHosts: storage, ...objects });
  const admin = t.client(await t.adminToken());

  async function newMember() {
    const project = (await admin.call('CreateProject', { project: { name: `blk-${randomUUID().slice(0, 8)}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `blk-${randomUUID().slice(0, 8)}`, domainId: 'default' }, password: 'block-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    return { client: t.client(await t.login(user.name, 'block-pw', { projectId: project.id })), projectId: project.id as string };
  }
  const { client: member, projectId } = await newMember();
  const flavorId = computeHosts.length > 0 ? (await admin.call('CreateFlavor', { flavor: { name: `tiny-${id}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id : '';
  await until(async () => (await admin.call('ListStorageHosts', {})).hosts.length >= storage.length, 'the storage hosts registered', 30_000);

  async function volumeStatus(volumeId: string, status: string, timeoutMs = 60_000) {
    let last: Record<string, any> = {};
    await until(
      async () => {
        last = (await admin.call('GetVolume', { id: volumeId })).volume;
        return last.status === status;
      },
      `volume ${volumeId} ${status}`,
      timeoutMs,
    ).catch((e: Error) => {
      throw new Error(`${e.message}: it is ${last.status}${last.statusReason ? ` (${last.statusReason})` : ''}`);
    });
    return last;
  }

  return {
    ...t,
    admin,
    member,
    projectId,
    flavorId,
    storage: t.cloud.blockAgents,
    drivers,
    volumeStatus,
    newMember,
    async close() {
      await t.close();
      rmSync(blockDir, { recursive: true, force: true });
    },
  };
}
