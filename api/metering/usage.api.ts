// The usage API's process part: the usage projection (its own meter, restored from the store)
// following the events of compute, block, network, object and image, its queries, and
// UsageService, mounted beside the other services (api/events/events.api.ts).
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { IMAGE_DOMAIN } from '../../domains/image/image.types.js';
import type { MeteringPolicy } from '../../domains/metering/usage.js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import { OBJECT_DOMAIN } from '../../domains/object/object.types.js';
import type { Log } from '../../infra/log/log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { usageProjection } from '../../projections/metering/usage.projection.js';
import { UsageQueries } from '../../projections/metering/usage.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { createUsageService, USAGE_SERVICE_NAME } from './usage.service.js';

export const USAGE_SERVICE = USAGE_SERVICE_NAME;

export interface UsageApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  now?: () => number;
  /** Which instance states bill besides the running ones (default: none). Changing it needs a rebuild of the usage read model. */
  policy?: Partial<MeteringPolicy>;
}

export interface UsageApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: UsageQueries;
  close(): Promise<void>;
}

export async function createUsageApi(o: UsageApiOptions): Promise<UsageApi> {
  for (const d of [COMPUTE_DOMAIN, BLOCK_DOMAIN, NETWORK_DOMAIN, OBJECT_DOMAIN, IMAGE_DOMAIN]) await ensureDomainTopics(o.log, d, o.topology);
  const runner = new ProjectionRunner(o.log, o.store, usageProjection(o.policy));
  await runner.start();
  const queries = new UsageQueries(o.store);
  const implementation = createUsageService({ queries, authenticator: o.authenticator, now: o.now });
  return {
    implementation,
    runner,
    queries,
    async close() {
      await runner.stop();
    },
  };
}
