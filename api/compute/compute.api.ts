// The compute API process part: the compute projection (read models) with its watch hook, the
// command bus and ComputeService, to be mounted on the gRPC server beside IdentityService
// (infra/cloud.ts). Tokens are checked by the identity API's authenticator. The deciders and
// the conductor run elsewhere and meet it through the log.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { computeProjection } from '../../projections/compute/compute.projection.js';
import { ComputeQueries, type Server } from '../../projections/compute/compute.queries.js';
import type { NetworkQueries } from '../../projections/network/network.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { AgentConsoleClient } from './agent-console.js';
import { createComputeService, type ComputeServiceOptions } from './compute.service.js';
import { ComputeWriter } from './compute.writer.js';
import { ServerWatch } from './server-watch.js';

export const COMPUTE_SERVICE = 'strata.compute.v1.ComputeService';

export interface ComputeApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  now?: () => number;
  /** A server's console instead of its host agent's (tests); see ComputeServiceOptions. */
  consoleOutput?: (server: Server, length: number) => Promise<string | undefined>;
  /** How long a call to a host agent may take (console output); default 5 s. */
  agentTimeoutMs?: number;
  /** The network read models (the networks and ports servers ask for); absent: servers get no networks. */
  networks?: NetworkQueries;
  /** The servers' volume attachments; see ComputeServiceOptions. */
  volumes?: ComputeServiceOptions['volumes'];
  /** The image service (boot images, snapshots); absent: hosts' image directories decide. */
  images?: ComputeServiceOptions['images'];
}

export interface ComputeApi {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  queries: ComputeQueries;
  writer: ComputeWriter;
  watch: ServerWatch;
  bus: CommandBus;
  /** Ends watch streams; call before the gRPC server stops so they do not hold it up. */
  drain(): void;
  close(): Promise<void>;
}

export async function createComputeApi(o: ComputeApiOptions): Promise<ComputeApi> {
  await ensureDomainTopics(o.log, COMPUTE_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, computeProjection);
  const queries = new ComputeQueries(o.store);
  const watch = new ServerWatch(queries);
  runner.onApplied(watch.onApplied);
  await runner.start();
  const writer = new ComputeWriter(bus, (position) => runner.waitFor(position), o.now);
  const agents = new AgentConsoleClient(o.agentTimeoutMs);
  const implementation = createComputeService({ writer, queries, authenticator: o.authenticator, watch, now: o.now, consoleOutput: o.consoleOutput, agents, networks: o.networks, volumes: o.volumes, images: o.images });
  return {
    implementation,
    runner,
    queries,
    writer,
    watch,
    bus,
    drain: () => watch.close(),
    async close() {
      watch.close();
      agents.close();
      await runner.stop();
      await bus.close();
    },
  };
}
