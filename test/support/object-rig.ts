// A real all-in-one cloud for object storage tests: the test cloud (embedded log, SQLite read
// models, TLS gRPC, bootstrapped) with object servers in the process, one device each in its
// own zone (3 by default, the ring's 3 replicas), registered in the ring and rebalanced. A member
// of a new project, with its account, is ready.
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { roleId } from '../../api/identity/bootstrap.js';
import type { ObjectAgent, ObjectDeviceConfig } from '../../agents/object/object.agent.js';
import type { StrataClient } from '../../cli/client.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';

export interface ObjectRigOptions {
  devices?: number;
  partPower?: number;
  replicas?: number;
  /** Replication passes (default 60 s: tests ask for passes themselves). */
  replicateEveryMs?: number;
  reclaimAfterMs?: number;
}

export interface ObjectRig extends TestCloud {
  admin: StrataClient;
  member: StrataClient;
  projectId: string;
  account: string;
  agent: ObjectAgent;
  deviceConfigs: ObjectDeviceConfig[];
  newMember(): Promise<{ client: StrataClient; projectId: string; userId: string }>;
}

export async function startObjectRig(o: ObjectRigOptions = {}): Promise<ObjectRig> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-object-'));
  const deviceConfigs: ObjectDeviceConfig[] = Array.from({ length: o.devices ?? 3 }, (_, i) => ({ deviceId: i + 1, root: join(dir, `d${i + 1}`), port: 0, zone: i + 1 }));
  const t = await startTestCloud(
    {},
    {
      conductor: false,
      objectDevices: deviceConfigs,
      objectRing: { partPower: o.partPower ?? 8, replicas: o.replicas ?? 3 },
      objectAgent: { replicateEveryMs: o.replicateEveryMs ?? 60_000, auditEveryMs: 3_600_000, reclaimAfterMs: o.reclaimAfterMs },
    },
  );
  const admin = t.client(await t.adminToken());
  async function newMember() {
    const project = (await admin.call('CreateProject', { project: { name: `obj-${randomUUID().slice(0, 8)}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `obj-${randomUUID().slice(0, 8)}`, domainId: 'default' }, password: 'object-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    return { client: t.client(await t.login(user.name, 'object-pw', { projectId: project.id })), projectId: project.id as string, userId: user.id as string };
  }
  const { client: member, projectId } = await newMember();
  return { ...t, admin, member, projectId, account: `AUTH_${projectId}`, agent: t.cloud.objectAgent!, deviceConfigs, newMember };
}

/** `size` bytes of a deterministic pattern, generated in chunks (never one buffer). */
export async function* patternBody(size: number, seed = 1, chunk = 1024 * 1024): AsyncGenerator<Uint8Array> {
  const block = Buffer.alloc(Math.min(chunk, Math.max(size, 1)));
  for (let i = 0; i < block.length; i++) block[i] = (i * 31 + seed * 17 + (i >> 8)) & 0xff;
  for (let sent = 0; sent < size; sent += block.length) yield sent + block.length <= size ? block : block.subarray(0, size - sent);
}

/** The MD5 of patternBody(size, seed). */
export async function patternMd5(size: number, seed = 1): Promise<string> {
  const h = createHash('md5');
  for await (const c of patternBody(size, seed)) h.update(c);
  return h.digest('hex');
}

/** Reads a download body to its end: its byte count and MD5. */
export async function digestOf(body: AsyncIterable<Uint8Array>): Promise<{ size: number; md5: string }> {
  const h = createHash('md5');
  let size = 0;
  for await (const c of body) {
    h.update(c);
    size += c.length;
  }
  return { size, md5: h.digest('hex') };
}
