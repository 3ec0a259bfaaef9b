// The event-stream APIs' process part: the audit projection (every event of every domain, with its
// owner project) and the services that read the log as a whole: AuditService (history, time
// travel), SubscriptionService (event streams), UsageService (metering) and ReplayService
// (verification), mounted on the gRPC server beside the others (infra/cloud.ts).
import { mkdirSync } from 'node:fs';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { ensureDomainTopics, type TopologyOptions } from '../../infra/runtime/topology.js';
import { hostedDomains } from '../../infra/domains.js';
import type { Log } from '../../infra/log/log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import type { Store } from '../../infra/store/store.js';
import { auditProjection } from '../../projections/audit/audit.projection.js';
import { AuditQueries } from '../../projections/audit/audit.queries.js';
import type { Authenticator } from '../auth/authenticator.js';
import { AUDIT_SERVICE_NAME, createAuditService } from './audit.service.js';
import { createReplayService, REPLAY_SERVICE_NAME } from './replay.service.js';
import { createSubscriptionService, SUBSCRIPTION_SERVICE } from './subscription.service.js';
import { freshPostgresStore, freshSqliteStore, type FreshStore } from '../../infra/replay/replay.js';
import { PostgresStore } from '../../infra/store/postgres-store.js';
import type { MeteringPolicy } from '../../domains/metering/usage.js';
import { createUsageApi, USAGE_SERVICE, type UsageApi } from '../metering/usage.api.js';

export interface EventsApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  /** Where a replay's fresh SQLite store goes (a temporary directory beside the state). */
  scratchDir: string;
  now?: () => number;
  /** Which instance states bill besides the running ones (domains/metering/usage.ts; default none). */
  metering?: Partial<MeteringPolicy>;
}

export interface EventsApi {
  /** Service name -> implementation, for the gRPC server. */
  services: { name: string; implementation: UntypedServiceImplementation }[];
  auditRunner: ProjectionRunner;
  audit: AuditQueries;
  /** Usage metering (UsageService). */
  usage: UsageApi;
  /** Ends the event streams (UNAVAILABLE, with their resume cursors): before the gRPC server closes, which would wait for them. */
  endStreams(): Promise<void>;
  close(): Promise<void>;
}

/** An empty store of the live store's kind for a replay: SQLite in the scratch dir, or a new PostgreSQL schema. */
function freshStoreLike(store: Store, scratchDir: string): () => Promise<FreshStore> {
  if (store instanceof PostgresStore) return freshPostgresStore(store.connectionString);
  mkdirSync(scratchDir, { recursive: true });
  return freshSqliteStore(scratchDir);
}

export async function createEventsApi(o: EventsApiOptions): Promise<EventsApi> {
  for (const d of hostedDomains) await ensureDomainTopics(o.log, d.name, o.topology);
  const auditRunner = new ProjectionRunner(o.log, o.store, auditProjection());
  await auditRunner.start();
  const audit = new AuditQueries(o.store);
  const usage = await createUsageApi({ log: o.log, store: o.store, topology: o.topology, authenticator: o.authenticator, now: o.now, policy: o.metering });
  // Event streams learn each event's owner project from the audit projection.
  const subscriptions = createSubscriptionService({
    log: o.log,
    authenticator: o.authenticator,
    owners: { waitFor: (p) => auditRunner.waitFor(p), ownersAt: (t, p, from, to) => audit.ownersAt(t, p, from, to) },
  });
  const services = [
    { name: SUBSCRIPTION_SERVICE, implementation: subscriptions.implementation },
    { name: AUDIT_SERVICE_NAME, implementation: createAuditService({ log: o.log, queries: audit, authenticator: o.authenticator }) },
    { name: USAGE_SERVICE, implementation: usage.implementation },
    { name: REPLAY_SERVICE_NAME, implementation: createReplayService({ log: o.log, store: o.store, fresh: freshStoreLike(o.store, o.scratchDir), authenticator: o.authenticator, metering: o.metering }) },
  ];
  return {
    services,
    auditRunner,
    audit,
    usage,
    endStreams: () => subscriptions.close(),
    async close() {
      await subscriptions.close();
      await usage.close();
      await auditRunner.stop();
    },
  };
}
