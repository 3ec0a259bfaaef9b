// The block API process part: the block projection (read models), the command bus and
// VolumeService, mounted on the gRPC server beside the other services (infra/cloud.ts). Tokens
// are checked by the identity API's authenticator; servers named by attachments are looked up in
// the compute read models; the block deciders run in their worker and meet it through the log.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { blockProjection } from '../../projections/block/block.projection.js';
import { BlockQueries } from '../../projections/block/block.queries.js';
import type { ComputeQueries } from '../../projections/compute/compute.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { createBlockService } from './block.service.js';
import { BlockWriter } from './block.writer.js';
import type { BlockImages } from './block.images.js';

export const VOLUME_SERVICE = 'strata.block.v1.VolumeService';

export interface BlockApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  /** The servers that volumes are attached to. */
  servers: Pick<ComputeQueries, 'getServer'>;
  /** The image service (volumes from images, uploads to images). */
  images?: BlockImages;
  now?: () => number;
}

export interface BlockApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: BlockQueries;
  writer: BlockWriter;
  bus: CommandBus;
  close(): Promise<void>;
}

export async function createBlockApi(o: BlockApiOptions): Promise<BlockApi> {
  await ensureDomainTopics(o.log, BLOCK_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, blockProjection);
  const queries = new BlockQueries(o.store);
  await runner.start();
  const writer = new BlockWriter(bus, (position) => runner.waitFor(position), o.now);
  const implementation = createBlockService({ writer, queries, authenticator: o.authenticator, servers: o.servers, images: o.images, now: o.now });
  return {
    implementation,
    runner,
    queries,
    writer,
    bus,
    async close() {
      await runner.stop();
      await bus.close();
    },
  };
}
