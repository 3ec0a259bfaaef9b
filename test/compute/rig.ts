// A compute control plane for tests on either log: the compute deciders (under a per-test domain
// name, so tests sharing one Kafka cluster never see each other's servers), the conductor, and a
// fleet of fake-driver hosts in this process, plus boot requests sent the way the API sends them
// and the audit of claims and quota recomputed from the log.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { FakeDriver, type FakeDriverOptions } from '../../agents/compute/fake.driver.js';
import { ComputeAgents, type HostConfig } from '../../agents/compute/compute.agent.js';
import type { ComputeDriver } from '../../agents/compute/driver.js';
import { ComputeWriter } from '../../api/compute/compute.writer.js';
import { createServers } from '../../api/compute/create-server.js';
import { ApiError } from '../../api/errors.js';
import type { Rejection } from '../../domains/kernel/rejection.js';
import { auditCompute, type AuditReport } from '../../domains/compute/compute.audit.js';
import type { ComputeEvent, InstanceView } from '../../domains/compute/compute.view.js';
import type { FlavorRef } from '../../domains/compute/instance.actions.js';
import type { Message } from '../../domains/kernel/decider.js';
import { computeCodecFor, computeDefinitions } from '../../infra/codecs/compute.codec.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { CommandBus } from '../../infra/runtime/command-bus.js';
import { DeciderWorker } from '../../infra/runtime/decider-worker.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import { Conductor, type ConductorOptions } from '../../infra/sagas/compute.conductor.js';
import { ComputeFeed, decodeComputeEvent } from '../../infra/sagas/compute.feed.js';
import { openTestLog, type Backend, type TestLog } from '../support/backends.js';
import { settledEndOffsets, until } from '../support/wait.js';

/** Starts a TypeScript entry point in its own node process and waits for its "ready" line. */
function spawnReady(relative: string, siblings: ChildProcess[], env: Record<string, string>): Promise<ChildProcess> {
  const script = fileURLToPath(new URL(relative, import.meta.url));
  // STRATA_RIG_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof", profiles the children.
  const nodeArgs = (process.env.STRATA_RIG_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
    child.on('exit', (code) => {
      // A child that failed to start leaves none of its siblings behind.
      for (const s of siblings) s.kill('SIGKILL');
      reject(new Error(`${relative} exited with ${code}`));
    });
  });
}

export const ADMIN: Actor = { userId: 'admin', projectId: 'admin', roles: ['admin'] };

export const flavor = (vcpus = 1, ramMb = 512, diskGb = 1): FlavorRef => ({
  id: `f-${vcpus}-${ramMb}-${diskGb}`, name: `m${vcpus}.${ramMb}`, vcpus, ramMb, diskGb, ephemeralGb: 0, swapMb: 0, extraSpecs: {},
});

export type BootOutcome = { ok: true; instanceId: string } | { ok: false; instanceId: ''; rejection: Rejection };

export interface RigOptions {
  backend: Backend;
  hosts: number;
  /** Availability zones the hosts are spread over (round robin). */
  zones?: string[];
  inventory?: HostConfig['inventory'];
  driver?: (hostId: string) => FakeDriverOptions;
  /** Another driver than the fake one for these hosts (the real qemu one). */
  driverFor?: (hostId: string) => ComputeDriver;
  conductor?: Partial<ConductorOptions>;
  heartbeatMs?: number;
  partitions?: number;
  /**
   * Run the deciders and the agents each in a process of their own, as deployed (the agents with
   * the default inventory and the plain fake driver); default: all in this process.
   */
  processes?: boolean;
  /** With processes: how many decider worker processes (default 1). */
  deciderProcesses?: number;
}

export interface Rig {
  t: TestLog;
  domain: string;
  feed: ComputeFeed;
  conductor: Conductor;
  /** In-process agents (absent when they run in a process of their own). */
  agents: ComputeAgents;
  drivers: Map<string, FakeDriver>;
  /** The in-process hosts' configurations (with their drivers), to start agents again. */
  hosts: HostConfig[];
  hostIds: string[];
  bus: CommandBus;
  send(aggregateType: string, id: string, command: Message & Record<string, unknown>, actor?: Actor): Promise<Reply>;
  /** One server, asked for exactly as the API's CreateServer asks (quota, group seat, instance). */
  boot(r: { name?: string; projectId?: string; flavor?: FlavorRef; imageId?: string; availabilityZone?: string; serverGroupId?: string }, bus?: CommandBus): Promise<BootOutcome>;
  createGroup(policy: string, projectId?: string, maxServerPerHost?: number): Promise<string>;
  /** Sends a server action as an admin and waits until it has ended (no action running); the server after it. */
  act(id: string, command: Message & Record<string, unknown>, timeoutMs?: number): Promise<InstanceView>;
  audit(): Promise<AuditReport>;
  close(): Promise<void>;
}

export async function startRig(o: RigOptions): Promise<Rig> {
  const t = await openTestLog(o.backend, o.partitions ?? 8);
  const domain = `compute-${t.domain}`;
  const zones = o.zones ?? ['nova'];
  const children: ChildProcess[] = [];
  const partitions = String(t.topology.partitions);
  let worker: DeciderWorker | undefined;
  if (o.processes) {
    // Decider workers share the partitions through their consumer group.
    for (let i = 0; i < (o.deciderProcesses ?? 1); i++) {
      children.push(await spawnReady('../support/worker-process.ts', children, { ...t.env, STRATA_DOMAIN: domain, STRATA_PARTITIONS: partitions, STRATA_AGGREGATES: 'compute' }));
    }
  } else {
    worker = new DeciderWorker({ log: t.log, domain, aggregates: computeDefinitions, topology: t.topology, onError: (e) => console.error(`decider: ${e.message}`) });
    await worker.start();
  }
  const feed = await ComputeFeed.start(t.log, t.topology, domain);
  const drivers = new Map<string, FakeDriver>();
  const hostIds = Array.from({ length: o.hosts }, (_, i) => `host-${String(i).padStart(4, '0')}`);
  const hosts: HostConfig[] = hostIds.map((hostId, i) => {
    const fake = new FakeDriver(hostId, o.driver?.(hostId) ?? {});
    const driver = o.driverFor?.(hostId) ?? fake;
    if (driver === fake) drivers.set(hostId, fake);
    return {
      hostId,
      availabilityZone: zones[i % zones.length],
      inventory: o.inventory ?? { vcpus: { total: 16, allocationRatio: 4 }, ramMb: { total: 32768, reserved: 512, allocationRatio: 1.5 }, diskGb: { total: 200 } },
      driver,
    };
  });
  const onError = (e: Error) => console.error(e.message);
  let agents: ComputeAgents | undefined;
  if (o.processes) {
    children.push(
      await spawnReady('../../agents/compute/main.ts', children, {
        ...t.env, STRATA_COMPUTE_DOMAIN: domain, STRATA_BLOCK_DOMAIN: `${domain}-block`, STRATA_IMAGE_DOMAIN: `${domain}-image`, STRATA_OBJECT_DOMAIN: `${domain}-object`, STRATA_PARTITIONS: partitions, STRATA_REPLY_PARTITIONS: String(t.topology.replyPartitions ?? partitions), STRATA_AGENT_HOSTS: String(o.hosts), STRATA_AGENT_HOST_ID: 'host',
        STRATA_AGENT_AZ: zones.join(','), STRATA_AGENT_HEARTBEAT_S: String(Math.round((o.heartbeatMs ?? 5_000) / 1000)),
      }),
    );
    await until(() => hostIds.every((h) => feed.view.hosts.get(h)?.registered && feed.view.hosts.get(h)!.lastHeartbeatMs > 0), 'the agents to register', 120_000);
  } else {
    agents = await ComputeAgents.start({ log: t.log, topology: t.topology, feed, hosts, heartbeatMs: o.heartbeatMs ?? 5_000, syncMs: 60_000, onError });
  }
  const conductor = await Conductor.start({ log: t.log, topology: t.topology, feed, tickMs: 200, onError, ...o.conductor });
  const bus = await CommandBus.connect({ log: t.log, timeoutMs: 60_000 });
  const send = (aggregateType: string, id: string, command: Message & Record<string, unknown>, actor = ADMIN) =>
    bus.send({ domain, aggregateType, aggregateId: id, type: command.type, payload: computeCodecFor(aggregateType).encodeCommand(command), actor });
  return {
    t, domain, feed, conductor, agents: agents!, drivers, hosts, hostIds, bus, send,
    async boot(r, via = bus) {
      const projectId = r.projectId ?? 'p1';
      const requestId = randomUUID();
      try {
        const [instanceId] = await createServers(new ComputeWriter(via, undefined, Date.now, domain), {
          requestId, projectId, userId: 'u1', actor: { ...ADMIN, projectId }, name: r.name ?? `vm-${requestId.slice(0, 6)}`, flavor: r.flavor ?? flavor(),
          imageId: r.imageId ?? 'cirros', keyName: '', availabilityZone: r.availabilityZone ?? '', serverGroupId: r.serverGroupId ?? '', metadata: {},
          minCount: 1, maxCount: 1, maxGroupMembers: -1,
        });
        return { ok: true, instanceId };
      } catch (e) {
        if (e instanceof ApiError) return { ok: false, instanceId: '', rejection: e.rejection };
        throw e;
      }
    },
    async act(id, command, timeoutMs = 20_000) {
      const view = () => feed.view.instances.get(id)!;
      const before = view().version;
      const reply = await send('instance', id, command);
      if (reply.kind === 'rejected') throw new Error(`${command.type} refused: ${reply.rejection.message}`);
      await until(() => view().version > before && view().action === null, `${command.type} to end`, timeoutMs);
      return view();
    },
    async createGroup(policy, projectId = 'p1', maxServerPerHost = 1) {
      const id = randomUUID();
      const reply = await send('server_group', id, { type: 'CreateServerGroup', serverGroup: { id, name: `g-${id.slice(0, 4)}`, projectId, userId: 'u1', policy, maxServerPerHost } });
      if (reply.kind !== 'accepted') throw new Error(reply.rejection.message);
      await feed.caughtUp(reply.position, reply.events.length);
      return id;
    },
    async audit() {
      const topic = domainTopics(domain).events;
      const ends = await settledEndOffsets(t.log, topic);
      const events: ComputeEvent[] = [];
      for (let p = 0; p < ends.length; p++) {
        for await (const batch of t.log.read(topic, p, 0, ends[p])) {
          for (const r of batch) events.push(decodeComputeEvent(r));
        }
      }
      return auditCompute(events);
    },
    async close() {
      await conductor.close();
      await agents?.close();
      await bus.close();
      await feed.close();
      await worker?.stop();
      for (const c of children) {
        // A child that ended makes spawnReady SIGKILL its siblings: one may be gone before its turn
        // here, and its 'exit' came already (waiting for it would hang: Node exits 13 with nothing left to run).
        if (c.exitCode !== null || c.signalCode !== null) continue;
        const exited = new Promise((r) => c.once('exit', r));
        c.kill('SIGTERM');
        await exited;
      }
      await t.close();
    },
  };
}
