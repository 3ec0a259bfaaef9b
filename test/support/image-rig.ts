// A real all-in-one cloud for image tests: the test cloud (embedded log, SQLite read models, TLS
// gRPC, bootstrapped) with object storage (three devices in the process, the ring rebalanced) and
// ImageService. Until the cloud hosts ImageService itself (infra/cloud.ts), the rig builds it with
// createImageApi on the cloud's log, store, authenticator, object proxy and object writer and
// serves it on a TLS gRPC server of its own; `imageUrl` says where it is either way.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImageApi, IMAGE_SERVICE, type ImageApi } from '../../api/image/image.api.js';
import { startGrpcServer, type GrpcServer } from '../../api/grpc/server.js';
import { roleId } from '../../api/identity/bootstrap.js';
import { StrataClient } from '../../cli/client.js';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { ImageStore } from '../../infra/image/image-store.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';

export interface ImageRig extends TestCloud {
  /** Where ImageService answers (the cloud's URL once the cloud hosts it). */
  imageUrl: string;
  imageStore: ImageStore;
  /** A client of ImageService (and only of it, while it is served apart). */
  imageClient(token: string): StrataClient;
  adminImages: StrataClient;
  /** A new project with a member user: its identity token and ImageService client. */
  newMember(): Promise<{ images: StrataClient; projectId: string; token: string }>;
}

export async function startImageRig(): Promise<ImageRig> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-image-'));
  const t = await startTestCloud({}, { objectDevices: [1, 2, 3].map((i) => ({ deviceId: i, root: join(dir, `d${i}`), port: 0, zone: i })) });
  const hosted = (t.cloud as unknown as { image?: ImageApi }).image;
  let api: ImageApi | undefined;
  let server: GrpcServer | undefined;
  let imageUrl = t.url;
  if (!hosted) {
    api = await createImageApi({
      log: t.log, store: t.store, topology: { partitions: 4, replicationFactor: 1, replyPartitions: 4 }, authenticator: t.cloud.identity.authenticator,
      proxy: t.cloud.object.proxy, objectWriter: t.cloud.object.writer,
    });
    server = await startGrpcServer({ port: 0, tls: t.tls, root: protoRoot(), services: [{ name: IMAGE_SERVICE, implementation: api.implementation }] });
    imageUrl = `grpcs://127.0.0.1:${server.port}`;
  }
  const clients: StrataClient[] = [];
  const imageClient = (token: string) => {
    const c = new StrataClient({ url: imageUrl, caCert: t.tls.caCert, token });
    clients.push(c);
    return c;
  };
  const admin = t.client(await t.adminToken());
  const adminImages = imageClient(await t.adminToken());

  async function newMember() {
    const project = (await admin.call('CreateProject', { project: { name: `img-${randomUUID().slice(0, 8)}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `img-${randomUUID().slice(0, 8)}`, domainId: 'default' }, password: 'image-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    const token = await t.login(user.name, 'image-pw', { projectId: project.id });
    return { images: imageClient(token), projectId: project.id as string, token };
  }

  return {
    ...t,
    imageUrl,
    imageStore: (hosted ?? api)!.imageStore,
    imageClient,
    adminImages,
    newMember,
    async close() {
      for (const c of clients) c.close();
      await server?.close();
      await api?.close();
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
