// A real all-in-one cloud for identity tests: embedded log and SQLite read models in a temporary
// directory, the identity decider worker, and the identity API on a TLS gRPC server on loopback,
// bootstrapped. The API's clock can be moved forward (expiry, lockout) with advance().
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootstrap, type BootstrapResult } from '../../api/identity/bootstrap.js';
import { ensureTlsMaterial, type TlsMaterial } from '../../api/grpc/tls.js';
import { StrataClient } from '../../cli/client.js';
import { startCloud, type Cloud, type CloudOptions } from '../../infra/cloud.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import type { Log } from '../../infra/log/log.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';

export const ADMIN_PASSWORD = 'correct horse battery staple';

export interface TestCloud {
  dir: string;
  url: string;
  tls: TlsMaterial;
  cloud: Cloud;
  boot: BootstrapResult;
  log: Log;
  store: SqliteStore;
  logPath: string;
  /** Moves the API's clock forward. */
  advance(ms: number): void;
  client(token?: string): StrataClient;
  /** A token for a user by name in the default domain, scoped as asked (default: unscoped). */
  login(user: string, password: string, scope?: Record<string, unknown>): Promise<string>;
  adminToken(): Promise<string>;
  close(): Promise<void>;
}

export async function startTestCloud(
  identity: CloudOptions['identity'] = {},
  options: { log?: Log; replicationFactor?: number } & Pick<CloudOptions, 'conductor' | 'computeHosts' | 'blockHosts' | 'objectDevices' | 'objectAgent' | 'objectRing' | 'metering'> = {},
): Promise<TestCloud> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-identity-'));
  const logPath = join(dir, 'log.db');
  const log = options.log ?? new EmbeddedLog({ path: logPath, sessionTimeoutMs: 1500 });
  const store = new SqliteStore(join(dir, 'read-models.db'));
  const tls = await ensureTlsMaterial(join(dir, 'tls'));
  let skew = 0;
  const cloud = await startCloud({
    log,
    store,
    topology: { partitions: 4, replicationFactor: options.replicationFactor ?? 1, replyPartitions: 4 },
    stateDir: dir,
    tls,
    port: 0,
    identity: { now: () => Date.now() + skew, ...identity },
    // Identity tests need no conductor; compute tests ask for one (and for hosts).
    conductor: options.conductor ?? false,
    computeHosts: options.computeHosts,
    blockHosts: options.blockHosts,
    objectDevices: options.objectDevices,
    objectAgent: options.objectAgent,
    objectRing: options.objectRing,
    metering: options.metering,
  });
  const url = `grpcs://127.0.0.1:${cloud.identity.port}`;
  const boot = await bootstrap(cloud.identity.writer, { adminPassword: ADMIN_PASSWORD, identityUrl: url });
  const clients: StrataClient[] = [];
  const client = (token?: string) => {
    const c = new StrataClient({ url, caCert: tls.caCert, token });
    clients.push(c);
    return c;
  };
  const anonymous = client();
  const login = async (user: string, password: string, scope?: Record<string, unknown>) => {
    const res = await anonymous.call('IssueToken', {
      password: { userName: user, domainName: 'Default', password },
      ...(scope ? { scope } : { scope: { unscoped: true } }),
    });
    return res.token as string;
  };
  return {
    dir,
    url,
    tls,
    cloud,
    boot,
    log,
    store,
    logPath,
    advance: (ms) => (skew += ms),
    client,
    login,
    adminToken: () => login('admin', ADMIN_PASSWORD, { projectId: boot.adminProjectId }),
    async close() {
      for (const c of clients) c.close();
      await cloud.close();
      await store.close();
      await log.close();
    },
  };
}

/** The gRPC status code of a rejected call (or 0 if it succeeded). */
export async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (e) {
    return (e as { code: number }).code;
  }
}

export async function errorOf(p: Promise<unknown>): Promise<{ code: number; details: string; field?: string; state?: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: number; details: string; field?: string; state?: string };
  }
  throw new Error('expected the call to fail, and it succeeded');
}
