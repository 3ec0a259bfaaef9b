// The object API process part: the object projection (listings), the object feed (the ring, for
// the proxy), the proxy to the object servers, the command bus and ObjectService, mounted on the
// gRPC server beside the other services (infra/cloud.ts). The ring of the default storage policy
// is created at start with the configured part power and replica count if the log has none.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { DEFAULT_RING, OBJECT_DOMAIN } from '../../domains/object/object.types.js';
import type { Log } from '../../infra/log/log.js';
import { ObjectProxy } from '../../infra/object/object-proxy.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import { followObjects, type ObjectFeed } from '../../infra/sagas/object.feed.js';
import type { Store } from '../../infra/store/store.js';
import { objectProjection } from '../../projections/object/object.projection.js';
import { ObjectQueries } from '../../projections/object/object.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { ApiError } from '../errors.js';
import { createObjectService } from './object.service.js';
import { ObjectWriter } from './object.writer.js';

export const OBJECT_SERVICE = 'strata.object.v1.ObjectService';

export interface ObjectApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  /** The ring made at first start (Swift's `swift-ring-builder create`): default 2^10 partitions, 3 replicas. */
  ring?: { partPower?: number; replicas?: number };
  now?: () => number;
}

export interface ObjectApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: ObjectQueries;
  writer: ObjectWriter;
  feed: ObjectFeed;
  proxy: ObjectProxy;
  bus: CommandBus;
  close(): Promise<void>;
}

export async function createObjectApi(o: ObjectApiOptions): Promise<ObjectApi> {
  await ensureDomainTopics(o.log, OBJECT_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, objectProjection);
  const queries = new ObjectQueries(o.store);
  await runner.start();
  const feed = await followObjects({ log: o.log, topology: o.topology });
  const writer = new ObjectWriter(bus, (position) => runner.waitFor(position), o.now);
  const system = { userId: 'strata-object-api', projectId: '', roles: ['admin'] };
  const created = await writer.reply('object_ring', DEFAULT_RING, { type: 'CreateRing', partPower: o.ring?.partPower ?? 10, replicas: o.ring?.replicas ?? 3 }, system);
  if (created.kind === 'rejected' && created.rejection.code !== 'ALREADY_EXISTS') throw new ApiError(created.rejection);
  const proxy = new ObjectProxy({ ring: () => feed.view.ring() });
  const implementation = createObjectService({ writer, queries, feed, proxy, authenticator: o.authenticator, now: o.now });
  return {
    implementation,
    runner,
    queries,
    writer,
    feed,
    proxy,
    bus,
    async close() {
      proxy.close();
      await feed.close();
      await runner.stop();
      await bus.close();
    },
  };
}
