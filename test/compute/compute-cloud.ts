// A real all-in-one cloud for compute API tests: the identity test cloud (embedded log, SQLite
// read models, TLS gRPC on loopback, bootstrapped) now serving ComputeService too, plus the
// compute conductor and a small fleet of fake-driver host agents on the same log, so servers
// really boot, stop, lock... And helpers to make projects with members in them.
import type { CloudOptions } from '../../infra/cloud.js';
import { randomUUID } from 'node:crypto';
import type { ComputeAgents, HostConfig } from '../../agents/compute/compute.agent.js';
import { FakeDriver, type FakeDriverOptions } from '../../agents/compute/fake.driver.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import type { Conductor } from '../../infra/sagas/compute.conductor.js';
import { startTestCloud, type TestCloud } from '../identity/cloud.js';

export const TOPOLOGY: TopologyOptions = { partitions: 4, replicationFactor: 1, replyPartitions: 4 };

export interface Member {
  project: { id: string; name: string };
  user: { id: string; name: string };
  password: string;
  token: string;
  client: StrataClient;
}

export interface ComputeCloudOptions {
  /** Fake-driver hosts (0: no conductor and no agents). */
  hosts?: number;
  zones?: string[];
  driver?: (hostId: string) => FakeDriverOptions;
  /** The cloud's metering policy (default: running servers only). */
  metering?: CloudOptions['metering'];
}

export interface ComputeTestCloud extends TestCloud {
  admin: StrataClient;
  hostIds: string[];
  drivers: Map<string, FakeDriver>;
  conductor?: Conductor;
  agents?: ComputeAgents;
  /** A new project with a user holding `role` on it (or a user added to the given project). */
  member(role?: string, project?: { id: string; name: string }): Promise<Member>;
}

const name = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

export async function startComputeCloud(o: ComputeCloudOptions = {}): Promise<ComputeTestCloud> {
  const drivers = new Map<string, FakeDriver>();
  const zones = o.zones ?? ['nova'];
  const hostIds = Array.from({ length: o.hosts ?? 0 }, (_, i) => `compute-${i + 1}`);
  const hosts: HostConfig[] = hostIds.map((hostId, i) => {
    const driver = new FakeDriver(hostId, o.driver?.(hostId) ?? {});
    drivers.set(hostId, driver);
    return {
      hostId,
      availabilityZone: zones[i % zones.length],
      inventory: { vcpus: { total: 8, allocationRatio: 4 }, ramMb: { total: 16384, reserved: 512, allocationRatio: 1 }, diskGb: { total: 200 } },
      driver,
    };
  });
  // The cloud's own conductor and in-process agents, as `npm start` with STRATA_COMPUTE_FAKE_HOSTS runs them.
  const t = await startTestCloud({}, { ...(hosts.length > 0 ? { conductor: { tickMs: 200 }, computeHosts: hosts } : {}), metering: o.metering });
  const admin = t.client(await t.adminToken());
  const conductor = t.cloud.conductor;
  const agents = t.cloud.agents;

  async function member(role = 'member', project?: { id: string; name: string }): Promise<Member> {
    const p = project ?? (await admin.call('CreateProject', { project: { name: name('proj'), domainId: 'default' } })).project;
    const password = `pw-${randomUUID()}`;
    const u = (await admin.call('CreateUser', { user: { name: name('user'), domainId: 'default' }, password })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, projectId: p.id, roleId: roleId(role) } });
    const token = await t.login(u.name, password, { projectId: p.id });
    return { project: p, user: u, password, token, client: t.client(token) };
  }

  return {
    ...t,
    admin,
    hostIds,
    drivers,
    conductor,
    agents,
    member,
    close: () => t.close(),
  };
}

/** Polls until check() returns a value (not undefined), or fails after timeoutMs. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000, what = 'the condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
