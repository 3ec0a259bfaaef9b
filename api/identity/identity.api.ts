// The identity API process part: the identity projection (read models + revocation list), the
// token key repository, the command bus, and IdentityService on the gRPC server. The deciders
// run elsewhere (a DeciderWorker in the same or another process) and meet it through the log.
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { IDENTITY_DOMAIN } from '../../domains/identity/identity.types.js';
import { protoRoot } from '../../infra/envelope/envelope.codec.js';
import type { Log } from '../../infra/log/log.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { enableAsyncContext } from '../../infra/telemetry/telemetry.js';
import { domainTopics, ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { identityProjection } from '../../projections/identity/identity.projection.js';
import { IdentityQueries } from '../../projections/identity/identity.queries.js';
import { Authenticator } from '../auth/authenticator.js';
import { KeyRepository } from '../auth/key-repository.js';
import { RevocationIndex } from '../auth/revocations.js';
import { TokenCodec } from '../auth/token.js';
import { startGrpcServer, type GrpcServer } from '../grpc/server.js';
import type { TlsMaterial } from '../grpc/tls.js';
import { adminProjectId as defaultAdminProjectId } from './bootstrap.js';
import { createIdentityService } from './identity.service.js';
import { IdentityWriter } from './identity.writer.js';

export const IDENTITY_SERVICE = 'strata.identity.v1.IdentityService';

export interface IdentityApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  keysDir: string;
  tls: TlsMaterial | 'insecure';
  host?: string;
  /** 0: any free port. */
  port?: number;
  adminProjectId?: string;
  tokenTtlMs?: number;
  lockoutAttempts?: number;
  lockoutDurationMs?: number;
  maxActiveKeys?: number;
  now?: () => number;
}

/** The identity API's parts, without a gRPC server: mounted by startIdentityApi or with other services (infra/cloud.ts). */
export interface IdentityApiParts {
  implementation: UntypedServiceImplementation;
  runner: ProjectionRunner;
  revocations: RevocationIndex;
  keys: KeyRepository;
  queries: IdentityQueries;
  writer: IdentityWriter;
  bus: CommandBus;
  /** Token authentication, for every service of the same server. */
  authenticator: Authenticator;
  /** Stops the projection, the key watch and the bus (not a server). */
  close(): Promise<void>;
}

export interface IdentityApi extends Omit<IdentityApiParts, 'implementation'> {
  port: number;
  server: GrpcServer;
}

export async function createIdentityApi(o: Omit<IdentityApiOptions, 'tls' | 'host' | 'port'>): Promise<IdentityApiParts> {
  enableAsyncContext();
  await ensureDomainTopics(o.log, IDENTITY_DOMAIN, o.topology);
  const bus = await CommandBus.connect({ log: o.log, timeoutMs: 30_000 });
  const runner = new ProjectionRunner(o.log, o.store, identityProjection(domainTopics(IDENTITY_DOMAIN).events));
  const revocations = new RevocationIndex(o.store);
  const queries = new IdentityQueries(o.store);
  runner.onApplied(revocations.onApplied);
  runner.onApplied((events) => {
    if (events.some((e) => e.aggregateType === 'service' || e.aggregateType === 'endpoint')) queries.invalidateCatalog();
  });
  await runner.start();
  await revocations.reload();
  const keys = KeyRepository.open(o.keysDir, { maxActiveKeys: o.maxActiveKeys ?? 3 });
  // A rotation done by `strata keys rotate` (another process) reaches this server within a second.
  const keyWatch = setInterval(() => keys.reloadIfChanged(), 1000);
  keyWatch.unref();
  const tokens = new TokenCodec(keys);
  const authenticator = new Authenticator({ tokens, revocations, adminProjectId: o.adminProjectId ?? defaultAdminProjectId(), now: o.now });
  const writer = new IdentityWriter(bus, (position) => runner.waitFor(position), o.now);
  const implementation = createIdentityService({
    writer,
    queries,
    tokens,
    authenticator,
    tokenTtlMs: o.tokenTtlMs ?? 3_600_000,
    lockoutAttempts: o.lockoutAttempts ?? 6,
    lockoutDurationMs: o.lockoutDurationMs ?? 1_800_000,
    now: o.now,
  });
  return {
    implementation,
    runner,
    revocations,
    keys,
    queries,
    writer,
    bus,
    authenticator,
    async close() {
      clearInterval(keyWatch);
      await runner.stop();
      await bus.close();
    },
  };
}

/** The identity API alone on its own gRPC server. */
export async function startIdentityApi(o: IdentityApiOptions): Promise<IdentityApi> {
  const { implementation, ...parts } = await createIdentityApi(o);
  const server = await startGrpcServer({
    host: o.host,
    port: o.port ?? 0,
    tls: o.tls,
    root: protoRoot(),
    services: [{ name: IDENTITY_SERVICE, implementation }],
  });
  return {
    ...parts,
    port: server.port,
    server,
    async close() {
      await server.close();
      await parts.close();
    },
  };
}
