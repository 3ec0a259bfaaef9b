// The event-stream APIs' process part: the audit projection (every event of every domain, with its
// owner project) and the services that read the log as a whole: AuditService (history, time
// travel), SubscriptionService (event streams), UsageService (metering) and ReplayService
// (verification), mounted on the gRPC server beside the others (infra/cloud.ts).
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

export interface EventsApiOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  authenticator: Authenticator;
  now?: () => number;
}

export interface EventsApi {
  /** Service name -> implementation, for the gRPC server. */
  services: { name: string; implementation: UntypedServiceImplementation }[];
  auditRunner: ProjectionRunner;
  audit: AuditQueries;
  close(): Promise<void>;
}

export async function createEventsApi(o: EventsApiOptions): Promise<EventsApi> {
  for (const d of hostedDomains) await ensureDomainTopics(o.log, d.name, o.topology);
  const auditRunner = new ProjectionRunner(o.log, o.store, auditProjection());
  await auditRunner.start();
  const audit = new AuditQueries(o.store);
  const services = [{ name: AUDIT_SERVICE_NAME, implementation: createAuditService({ log: o.log, queries: audit, authenticator: o.authenticator }) }];
  return {
    services,
    auditRunner,
    audit,
    async close() {
      await auditRunner.stop();
    },
  };
}
