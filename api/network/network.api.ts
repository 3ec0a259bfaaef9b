// The network API process part: the network projection (read models), the command bus and
// NetworkService, mounted on the gRPC server beside IdentityService and ComputeService
// (infra/cloud.ts). Tokens are checked by the identity API's authenticator; the network deciders
// run in their worker and meet it through the log.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { NETWORK_DOMAIN } from '../../domains/network/network.types.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { networkProjection } from '../../projections/network/network.projection.js';
import { NetworkQueries } from '../../projections/network/network.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import type { SegmentRanges } from './network.sagas.js';
import { createNetworkService } from './network.service.js';
import { NetworkWriter } from './network.writer.js';

export const NETWORK_SERVICE = 'strata.network.v1.NetworkService';

export interface NetworkApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  now?: () => number;
  /** Tenant segment ranges (Neutron's vni_ranges and network_vlan_ranges); default VXLAN 1:65535. */
  segmentRanges?: SegmentRanges;
}

export interface NetworkApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: NetworkQueries;
  writer: NetworkWriter;
  bus: CommandBus;
  close(): Promise<void>;
}

export async function createNetworkApi(o: NetworkApiOptions): Promise<NetworkApi> {
  await ensureDomainTopics(o.log, NETWORK_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, networkProjection);
  const queries = new NetworkQueries(o.store);
  await runner.start();
  const writer = new NetworkWriter(bus, (position) => runner.waitFor(position), o.now);
  const implementation = createNetworkService({ writer, queries, authenticator: o.authenticator, segmentRanges: o.segmentRanges });
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
