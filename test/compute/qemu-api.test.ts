// Issue 5 (a): a real guest through the public gRPC API. A cloud with the compute API and the
// conductor, and one compute agent running the qemu driver (under TCG) that serves its console
// over gRPC (ComputeAgentService) at the endpoint it registered with its host. Through the API:
// create -> ACTIVE and the guest's marker in GetServerConsoleOutput (read from the agent, not a
// hook), stop -> SHUTOFF with the qemu process gone, start -> boots again, reboot -> boots again,
// pause -> PAUSED (QMP says paused), unpause -> running, delete -> gone, process and directory
// too. Then what the API says when a host's agent cannot be reached, and the agent's NOT_FOUND.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComputeAgents, type HostConfig } from '../../agents/compute/compute.agent.js';
import { FakeDriver } from '../../agents/compute/fake.driver.js';
import { QemuDriver, processAlive, testImageBoot } from '../../agents/compute/qemu.driver.js';
import { AgentCallError, AgentConsoleClient } from '../../api/compute/agent-console.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import { KafkaLog } from '../../infra/log/kafka/kafka-log.js';
import type { TopologyOptions } from '../../infra/runtime/topology.js';
import { BACKENDS, KAFKA_NODES } from '../support/backends.js';
import { codeOf, startTestCloud, type TestCloud } from '../identity/cloud.js';
import { eventually } from './compute-cloud.js';

const MARKER = 'STRATA-GUEST-READY';
const NOT_FOUND = 5;
const root = new URL('../..', import.meta.url).pathname;
const inventory = (vcpus: number, ramMb: number, diskGb: number): HostConfig['inventory'] => ({
  vcpus: { total: vcpus, allocationRatio: 1 },
  ramMb: { total: ramMb, allocationRatio: 1 },
  diskGb: { total: diskGb, allocationRatio: 1 },
});
const count = (text: string, s: string) => text.split(s).length - 1;

describe.each(BACKENDS)('a real qemu guest through the gRPC API on the %s log', (backend) => {
  let t: TestCloud;
  let agents: ComputeAgents;
  let qemu: QemuDriver;
  let stateDir: string;
  let admin: StrataClient;
  let member: StrataClient;
  let flavorId: string;
  let topology: TopologyOptions;
  const hostId = `qemu-${randomUUID().slice(0, 8)}`;
  // On Kafka the cloud's topics are shared with other runs: a zone of this run's own keeps its servers on its hosts.
  const zone = `az-${randomUUID().slice(0, 8)}`;
  const errors: Error[] = [];

  beforeAll(async () => {
    const imageDir = execFileSync('bash', [join(root, 'scripts/build-test-image.sh')], { encoding: 'utf8' }).trim();
    // Short: QMP socket paths are limited to about 107 bytes.
    stateDir = mkdtempSync('/tmp/sq-');
    qemu = new QemuDriver({ stateDir, accelerator: 'tcg', resolveImage: () => testImageBoot(imageDir) });
    let replicationFactor = 1;
    let log: KafkaLog | undefined;
    if (backend === 'kafka') {
      const { ensureKafka } = await import('../../infra/kafka/cluster.js');
      const { brokers } = await ensureKafka({ nodes: KAFKA_NODES });
      log = new KafkaLog({ brokers, replicationFactor: KAFKA_NODES, minInsyncReplicas: 2 });
      replicationFactor = KAFKA_NODES;
    }
    t = await startTestCloud({}, { log, replicationFactor, conductor: { tickMs: 200 } });
    topology = { partitions: 4, replicationFactor, replyPartitions: 4 };
    // The host's agent as its own process would run it (its own feed and bus), serving its console on loopback.
    agents = await ComputeAgents.start({
      log: t.log,
      topology,
      hosts: [{ hostId, availabilityZone: zone, inventory: inventory(4, 4096, 20), driver: qemu }],
      listen: '127.0.0.1:0',
      heartbeatMs: 1000,
      onError: (e) => errors.push(e),
    });
    admin = t.client(await t.adminToken());
    const project = (await admin.call('CreateProject', { project: { name: `qa-${randomUUID().slice(0, 8)}`, domainId: 'default' } })).project;
    const user = (await admin.call('CreateUser', { user: { name: `qa-${randomUUID().slice(0, 8)}`, domainId: 'default' }, password: 'qemu-api-pw' })).user;
    await admin.call('CreateRoleAssignment', { assignment: { userId: user.id, projectId: project.id, roleId: roleId('member') } });
    member = t.client(await t.login(user.name, 'qemu-api-pw', { projectId: project.id }));
    flavorId = (await admin.call('CreateFlavor', { flavor: { name: `tiny-${randomUUID().slice(0, 8)}`, vcpus: 1, ramMb: 256, diskGb: 1 } })).flavor.id;
    // The API sees the host up, with the endpoint its agent registered.
    await eventually(async () => ((await admin.call('GetHost', { id: hostId })).host.up ? true : undefined), 30_000, 'the qemu host up in the API');
  }, 240_000);

  afterAll(async () => {
    await agents?.close();
    await t?.close();
    for (const id of (await qemu?.list()) ?? []) await qemu.destroy(id);
    qemu?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  }, 60_000);

  const consoleOf = async (id: string, length = 0): Promise<string> => (await member.call('GetServerConsoleOutput', { id, length })).output;
  const pidOf = async (id: string) => Number((await readFile(join(stateDir, id, 'qemu.pid'), 'utf8')).trim());
  /** Waits until the console read through the API shows the marker `n` times (n boots). */
  const boots = (id: string, n: number) =>
    eventually(async () => {
      const text = await consoleOf(id);
      return count(text, MARKER) >= n ? text : undefined;
    }, 90_000, `boot ${n} of ${id} on its console`);

  /** Runs a server action through the API and waits for its operation. */
  async function act(rpc: string, id: string, extra: Record<string, unknown> = {}) {
    const res = await member.call(rpc, { id, ...extra });
    const op = res.operation.done ? res.operation : (await member.call('WaitOperation', { name: res.operation.name, serverId: id, timeout: { seconds: 120 } })).operation;
    expect(op.result, `${rpc}: ${op.error}`).toBe('success');
    return (await member.call('GetServer', { id })).server;
  }

  it('registers the agent endpoint with the host', async () => {
    expect(agents.endpoint).toMatch(/^127\.0\.0\.1:\d+$/);
    expect((await admin.call('GetHost', { id: hostId })).host.endpoint).toBe(agents.endpoint);
  });

  it('creates, reads the console from the agent, stops, starts, reboots, pauses, unpauses and deletes a real guest', async () => {
    const created = await member.call('CreateServer', { name: 'real', flavorId, imageId: 'strata-test', availabilityZone: zone });
    const id: string = created.servers[0].id;
    const op = (await member.call('WaitOperation', { name: created.operations[0].name, serverId: id, timeout: { seconds: 120 } })).operation;
    expect(op, op.error).toMatchObject({ done: true, result: 'success', action: 'create' });
    const server = (await member.call('GetServer', { id })).server;
    expect(server).toMatchObject({ status: 'ACTIVE' });
    expect((await admin.call('GetServer', { id })).server.host).toBe(hostId);
    const firstPid = await pidOf(id);
    expect(await processAlive(firstPid)).toBe(true);

    // The console is the guest's serial port, from the agent: the marker, and none of the control plane's record.
    const first = await boots(id, 1);
    expect(first).not.toContain('login: (console of');
    expect(first).not.toContain('[strata]');
    expect(count(first, MARKER)).toBe(1);
    // length: the last N lines, as Nova's os-getConsoleOutput.
    await eventually(async () => ((await consoleOf(id)).includes('tick 2') ? true : undefined), 60_000, 'two ticks');
    const tail = await consoleOf(id, 2);
    expect(tail.replace(/\n$/, '').split('\n')).toHaveLength(2);
    expect(tail).toMatch(/tick \d+\n$/);
    const whole = await consoleOf(id);
    expect(whole.replace(/\n$/, '').split('\n').length).toBeGreaterThan(2);

    // stop: SHUTOFF, and the qemu process is gone.
    expect((await act('StopServer', id)).status).toBe('SHUTOFF');
    expect(await processAlive(firstPid)).toBe(false);
    expect(await qemu.pid(id)).toBeUndefined();

    // start: ACTIVE, a new process, and the guest boots again.
    expect((await act('StartServer', id)).status).toBe('ACTIVE');
    const secondPid = await pidOf(id);
    expect(secondPid).not.toBe(firstPid);
    expect(await processAlive(secondPid)).toBe(true);
    expect(count(await boots(id, 2), MARKER)).toBe(2);

    // reboot: the same process, the guest boots a third time.
    expect((await act('RebootServer', id)).status).toBe('ACTIVE');
    expect(count(await boots(id, 3), MARKER)).toBe(3);
    expect(await pidOf(id)).toBe(secondPid);

    // pause: PAUSED, and QEMU says so over QMP; unpause: running.
    expect((await act('PauseServer', id)).status).toBe('PAUSED');
    expect((await qemu.execute<{ status: string }>(id, 'query-status')).status).toBe('paused');
    expect((await act('UnpauseServer', id)).status).toBe('ACTIVE');
    expect((await qemu.execute<{ status: string }>(id, 'query-status')).status).toBe('running');
    // The guest runs again: its tick counter moves on.
    const ticks = (text: string) => Math.max(...[...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
    const before = ticks(await consoleOf(id));
    await eventually(async () => (ticks(await consoleOf(id)) > before ? true : undefined), 30_000, 'a tick after unpause');

    // delete: gone from the API, the process ended, the guest's directory removed.
    const res = await member.call('DeleteServer', { id });
    if (!res.operation.done) await member.call('WaitOperation', { name: res.operation.name, serverId: id, timeout: { seconds: 120 } });
    await eventually(async () => ((await codeOf(member.call('GetServer', { id }))) === NOT_FOUND ? true : undefined), 60_000, 'the server gone');
    await eventually(async () => (!(await processAlive(secondPid)) && !existsSync(join(stateDir, id)) ? true : undefined), 30_000, 'qemu and the directory gone');
    expect(await qemu.list()).toEqual([]);
    expect(errors).toEqual([]);
  }, 420_000);

  it("answers NOT_FOUND for a guest it does not run, and the API says so when a host's agent is unreachable", async () => {
    // Straight to the agent: no such instance on its host.
    const client = new AgentConsoleClient(5000);
    try {
      const err = await client.consoleOutput(agents.endpoint, 'no-such-server').then(
        () => undefined,
        (e: AgentCallError) => e,
      );
      expect(err).toMatchObject({ code: NOT_FOUND });
      expect(err!.details).toContain('no-such-server');
    } finally {
      client.close();
    }

    // A host whose registered endpoint answers nothing (port 1 on loopback): the API gives the
    // control plane's record and says plainly that it is not the console.
    const deadZone = `dead-${randomUUID().slice(0, 8)}`;
    const deadHost = `dead-${randomUUID().slice(0, 8)}`;
    const dead = await ComputeAgents.start({
      log: t.log,
      topology,
      hosts: [{ hostId: deadHost, availabilityZone: deadZone, inventory: inventory(4, 4096, 20), driver: new FakeDriver(deadHost) }],
      listen: '127.0.0.1:0',
      advertise: '127.0.0.1:1',
      heartbeatMs: 1000,
      onError: (e) => errors.push(e),
    });
    try {
      await eventually(async () => ((await admin.call('GetHost', { id: deadHost })).host.up ? true : undefined), 30_000, 'the unreachable host up');
      const created = await member.call('CreateServer', { name: 'far', flavorId, imageId: 'strata-test', availabilityZone: deadZone });
      const id: string = created.servers[0].id;
      const op = (await member.call('WaitOperation', { name: created.operations[0].name, serverId: id, timeout: { seconds: 60 } })).operation;
      expect(op.result, op.error).toBe('success');
      const text = await consoleOf(id);
      expect(text).toContain(`login: (console of ${id} on ${deadHost})`);
      expect(text).toMatch(new RegExp(`\\[strata\\] console unavailable: the agent of host ${deadHost} at 127\\.0\\.0\\.1:1 is unreachable \\(UNAVAILABLE`));
      // The note is the last line, so that a length keeps it.
      expect((await consoleOf(id, 1)).trim()).toMatch(/^\[strata\] console unavailable/);
      expect(await consoleOf(id)).not.toContain(MARKER);
      const del = await member.call('DeleteServer', { id });
      if (!del.operation.done) await member.call('WaitOperation', { name: del.operation.name, serverId: id, timeout: { seconds: 60 } });
    } finally {
      await dead.close();
    }
  }, 180_000);
});
