// ReplayService: `strata admin replay`. Rebuilds every read model (or those named) from offset 0
// into a fresh store of the live store's kind and compares it with the live one at the live
// checkpoints (infra/replay/replay.ts). One replay at a time: a second one is refused while the
// first runs (each reads the whole log).
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { allReadModels } from '../../infra/replay/read-models.js';
import { describeDifferences, verifyReadModels, type FreshStore } from '../../infra/replay/replay.js';
import type { Log } from '../../infra/log/log.js';
import type { MeteringPolicy } from '../../domains/metering/usage.js';
import type { Store } from '../../infra/store/store.js';
import type { Authenticator } from '../auth/authenticator.js';
import { invalid, refuse } from '../errors.js';
import { auditPolicy, auditRule } from '../policy/audit.policy.js';
import { unaryRpcs } from '../unary-rpc.js';

export const REPLAY_SERVICE_NAME = 'strata.events.v1.ReplayService';

export interface ReplayServiceOptions {
  log: Log;
  /** The live read models' store. */
  store: Store;
  /** An empty store of the live store's kind, disposed after the replay. */
  fresh: () => Promise<FreshStore>;
  authenticator: Authenticator;
  /** The cloud's metering policy (the usage read model is replayed with it). */
  metering?: Partial<MeteringPolicy>;
}

export function createReplayService(o: ReplayServiceOptions): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  const rpc = unaryRpcs({ service: REPLAY_SERVICE_NAME, policy: auditPolicy, ruleOf: auditRule, authenticator: o.authenticator, impl, label: 'replay' });
  let running = false;

  rpc(
    'ReplayReadModels',
    async (req) => {
      const all = allReadModels({ metering: o.metering });
      const asked = ((req.readModels ?? []) as string[]).filter(Boolean);
      const unknown = asked.filter((n) => !all.some((p) => p.name === n));
      if (unknown.length > 0) throw invalid('read_models', `no read model ${unknown.join(', ')} (there are ${all.map((p) => p.name).join(', ')})`);
      if (running) throw refuse('ABORTED', 'a replay is running already: wait for it to finish');
      running = true;
      try {
        const report = await verifyReadModels({ log: o.log, live: o.store, fresh: o.fresh, projections: asked.length > 0 ? all.filter((p) => asked.includes(p.name)) : all });
        return {
          equal: report.equal,
          dialect: report.dialect,
          readModels: report.projections.map((p) => ({ readModel: p.projection, positions: p.positions, tables: p.tables.map((t) => ({ ...t, error: t.error ?? '' })), equal: p.equal })),
          recordsRead: report.recordsRead,
          eventsReplayed: report.eventsReplayed,
          seconds: report.seconds,
          differences: describeDifferences(report),
        };
      } finally {
        running = false;
      }
    },
    () => ({}),
  );

  return impl;
}
