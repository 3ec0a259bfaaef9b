// The identity API process part: the identity projection (read models + revocation list), the
// token key repository, the command bus, and IdentityService on the gRPC server. The deciders
// run elsewhere (a DeciderWorker in the same or another process) and meet it through the log.
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

export interface IdentityApi {
  port: number;
  server: GrpcServer;
  runner: ProjectionRunner;
  revocations: RevocationIndex;
  keys: KeyRepository;
  queries: IdentityQueries;
  writer: IdentityWriter;
  bus: CommandBus;
  close(): Promise<void>;
}

export async function startIdentityApi(o: IdentityApiOptions): Promise<IdentityApi> {
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
  const writer = new IdentityWriter(bus, (position) => runner.waitFor(position), o.now);
  const implementation = createIdentityService({
    writer,
    queries,
    tokens,
    revocations,
    adminProjectId: o.adminProjectId ?? defaultAdminProjectId(),
    tokenTtlMs: o.tokenTtlMs ?? 3_600_000,
    lockoutAttempts: o.lockoutAttempts ?? 6,
    lockoutDurationMs: o.lockoutDurationMs ?? 1_800_000,
    now: o.now,
  });
  const server = await startGrpcServer({
    host: o.host,
    port: o.port ?? 0,
    tls: o.tls,
    root: protoRoot(),
    services: [{ name: IDENTITY_SERVICE, implementation }],
  });
  return {
    port: server.port,
    server,
    runner,
    revocations,
    keys,
    queries,
    writer,
    bus,
    async close() {
      clearInterval(keyWatch);
      await server.close();
      await runner.stop();
      await bus.close();
    },
  };
}
