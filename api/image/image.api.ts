// The image API process part: the image projection (read models), the command bus, the image
// store (the data in object storage, through the object proxy and the object domain's writer)
// and ImageService, mounted on the gRPC server beside the other services (infra/cloud.ts). Tokens
// are checked by the identity API's authenticator; the image deciders run in their worker and
// meet it through the log.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import { ImageStore } from '../../infra/image/image-store.js';
import type { Log } from '../../infra/log/log.js';
import type { ObjectProxy } from '../../infra/object/object-proxy.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { imageProjection } from '../../projections/image/image.projection.js';
import { ImageQueries } from '../../projections/image/image.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { DomainWriter } from '../domain.writer.js';
import { createImageService, IMAGE_SERVICE_NAME } from './image.service.js';
import { ImageWriter } from './image.writer.js';

export const IMAGE_SERVICE = IMAGE_SERVICE_NAME;

export interface ImageApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  /** The object storage data path (the object API's). */
  proxy: ObjectProxy;
  /** The object domain's writer (RecordObject, RecordObjectDeleted, CreateContainer). */
  objectWriter: DomainWriter;
  now?: () => number;
}

export interface ImageApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: ImageQueries;
  writer: ImageWriter;
  imageStore: ImageStore;
  bus: CommandBus;
  close(): Promise<void>;
}

export async function createImageApi(o: ImageApiOptions): Promise<ImageApi> {
  await ensureDomainTopics(o.log, IMAGE_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, imageProjection);
  const queries = new ImageQueries(o.store);
  await runner.start();
  const writer = new ImageWriter(bus, (position) => runner.waitFor(position), o.now);
  // The images container is made at the first upload (the object deciders may start after this API).
  const imageStore = new ImageStore({ proxy: o.proxy, objects: o.objectWriter, now: o.now });
  const implementation = createImageService({ writer, queries, authenticator: o.authenticator, imageStore });
  return {
    implementation,
    runner,
    queries,
    writer,
    imageStore,
    bus,
    async close() {
      await runner.stop();
      await bus.close();
    },
  };
}
