// A real all-in-one cloud for image tests: the test cloud (embedded log, SQLite read models, TLS
// gRPC, bootstrapped) with object storage (three devices in the process, the ring rebalanced) and
// ImageService (the cloud's, on the object API's proxy and writer). Members of new projects are
// made on demand.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import type { ImageStore } from '../../infra/image/image-store.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';

export interface ImageRig extends TestCloud {
  /** Where ImageService answers (the cloud's URL). */
  imageUrl: string;
  imageStore: ImageStore;
  adminImages: StrataClient;
  /** A new project with a member user: its token and a client. */
  newMember(): Promise<{ images: StrataClient; projectId: string; token: string }>;
}

export async function startImageRig(): Promise<ImageRig> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-image-'));
  const t = await startTestCloud({}, { objectDevices: [1, 2, 3].map((i) => ({ deviceId: i, root: join(dir, `d${i}`), port: 0, zone: i })) });
  const admin = t.client(await t.adminToken());

  async function newMember() {
    const project = (await admin.call('CreateProject', { project: { name: `img-${randomUUID().slice(0, 8)}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `img-${randomUUID().slice(0, 8)}`, domainId: 'default' }, password: 'image-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    const token = await t.login(user.name, 'image-pw', { projectId: project.id });
    return { images: t.client(token), projectId: project.id as string, token };
  }

  return {
    ...t,
    imageUrl: t.url,
    imageStore: t.cloud.image.imageStore,
    adminImages: admin,
    newMember,
    async close() {
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
