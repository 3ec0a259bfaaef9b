// The all-in-one cloud's parts in one process: a decider worker per hosted domain and the
// identity API (projection, token keys, gRPC server). infra/main.ts runs it from the
// environment; tests start it on a temporary state directory.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startIdentityApi, type IdentityApi, type IdentityApiOptions } from '../api/identity/identity.api.js';
import { hostedDomains } from './domains.js';
import type { Log } from './log/log.js';
import { DeciderWorker } from './runtime/decider-worker.js';
import type { TopologyOptions } from './runtime/topology.js';
import type { Store } from './store/store.js';

export interface CloudOptions {
  log: Log;
  store: Store;
  topology: TopologyOptions;
  /** Token keys live in <stateDir>/token-keys. */
  stateDir: string;
  tls: IdentityApiOptions['tls'];
  host?: string;
  port?: number;
  identity?: Partial<Pick<IdentityApiOptions, 'tokenTtlMs' | 'lockoutAttempts' | 'lockoutDurationMs' | 'maxActiveKeys' | 'now' | 'adminProjectId'>>;
  onError?: (error: Error) => void;
}

export interface Cloud {
  identity: IdentityApi;
  workers: DeciderWorker[];
  close(): Promise<void>;
}

export async function startCloud(o: CloudOptions): Promise<Cloud> {
  mkdirSync(o.stateDir, { recursive: true });
  const workers = hostedDomains.map(
    (d) =>
      new DeciderWorker({
        log: o.log,
        domain: d.name,
        aggregates: d.aggregates,
        topology: o.topology,
        onError: o.onError ?? ((e) => console.error(`decider ${d.name}: ${e.message}`)),
      }),
  );
  for (const w of workers) await w.start();
  const identity = await startIdentityApi({
    log: o.log,
    store: o.store,
    topology: o.topology,
    keysDir: join(o.stateDir, 'token-keys'),
    tls: o.tls,
    host: o.host,
    port: o.port,
    ...o.identity,
  });
  return {
    identity,
    workers,
    async close() {
      await identity.close();
      for (const w of workers) await w.stop();
    },
  };
}
