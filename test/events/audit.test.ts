// The audit trail and time travel through AuditService, on a real all-in-one cloud with fake-driver
// hosts: a server's whole history with who, when, from which request and trace and what changed;
// a user's actions; tenants kept to their own project's resources; the state before a resize.
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enableAsyncContext } from '../../infra/telemetry/telemetry.js';
import { errorOf } from '../identity/cloud.js';
import { startComputeCloud, type ComputeTestCloud, type Member } from '../compute/compute-cloud.js';
import { cliRunner } from '../support/cli-runner.js';

const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const INVALID_ARGUMENT = 3;

const uniq = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const msOf = (t: { seconds: number | string; nanos: number }) => Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6);

describe('AuditService', () => {
  let t: ComputeTestCloud;
  let alice: Member;
  let bob: Member;
  let serverId: string;
  let small: { id: string };
  let medium: { id: string };

  async function act(m: Member, rpc: string, extra: Record<string, unknown> = {}) {
    const res = await m.client.call(rpc, { id: serverId, ...extra });
    if (!res.operation.done) await m.client.call('WaitOperation', { name: res.operation.name, serverId, timeout: { seconds: 30 } });
  }

  beforeAll(async () => {
    // Tracing on, as in a deployed cloud: every event then carries the trace of its request.
    enableAsyncContext();
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    // Stopped servers billed too: the replay must fold the usage read model with the cloud's policy.
    t = await startComputeCloud({ hosts: 2, metering: { stopped: true } });
    alice = await t.member();
    bob = await t.member();
    small = (await t.admin.call('CreateFlavor', { flavor: { name: uniq('small'), vcpus: 1, ramMb: 512, diskGb: 1 } })).flavor;
    medium = (await t.admin.call('CreateFlavor', { flavor: { name: uniq('medium'), vcpus: 2, ramMb: 1024, diskGb: 1 } })).flavor;
    const res = await alice.client.call('CreateServer', { name: 'audited', flavorId: small.id, imageId: 'cirros', requestId: 'req-audited-boot' });
    serverId = res.servers[0].id;
    await alice.client.call('WaitOperation', { name: res.operations[0].name, serverId, timeout: { seconds: 30 } });
    await act(alice, 'ResizeServer', { flavorId: medium.id });
    await act(alice, 'ConfirmResizeServer');
    await act(alice, 'StopServer');
  }, 120_000);
  afterAll(async () => t?.close());
  const cli = cliRunner('audit', () => t);

  /** The server's history once the audit projection has every event of the stop. */
  async function history(m = alice) {
    for (let i = 0; i < 100; i++) {
      const events = (await m.client.call('ListResourceEvents', { resourceId: serverId, pageSize: 1000 })).events;
      if (events.some((e: { type: string; payloadJson: string }) => e.type === 'InstanceActionCompleted' && JSON.parse(e.payloadJson).vmState === 'stopped')) return events;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the stop never reached the audit trail');
  }

  it("lists a resource's events in order with who, when, request, trace and what changed", async () => {
    const events = await history();
    expect(events.map((e: { version: number }) => Number(e.version))).toEqual(events.map((_: unknown, i: number) => i + 1));
    const created = events[0];
    expect(created).toMatchObject({ type: 'InstanceCreated', domain: 'compute', aggregateType: 'instance', aggregateId: serverId, projectId: alice.project.id });
    expect(created.actor).toMatchObject({ userId: alice.user.id, projectId: alice.project.id });
    expect(created.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(created.causationId).not.toBe('');
    expect(created.correlationId).toBe('req-audited-boot');
    expect(JSON.parse(created.payloadJson)).toMatchObject({ name: 'audited', projectId: alice.project.id, flavor: { id: small.id } });
    // The resize: started by alice, completed by the host (the agent's service actor), new flavor in the payload.
    const resize = events.find((e: { type: string; payloadJson: string }) => e.type === 'InstanceActionStarted' && JSON.parse(e.payloadJson).action === 'resize');
    expect(resize.actor.userId).toBe(alice.user.id);
    expect(JSON.parse(resize.payloadJson).newFlavor.id).toBe(medium.id);
    const times = events.map((e: { occurredAt: { seconds: number; nanos: number } }) => msOf(e.occurredAt));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // A time range: only the events from the resize on.
    const since = (await alice.client.call('ListResourceEvents', { resourceId: serverId, startTime: resize.occurredAt, pageSize: 1000 })).events;
    expect(since[0].version).toBe(resize.version);
    // Pages.
    const page1 = await alice.client.call('ListResourceEvents', { resourceId: serverId, pageSize: 2 });
    const page2 = await alice.client.call('ListResourceEvents', { resourceId: serverId, pageSize: 2, pageToken: page1.nextPageToken });
    expect([...page1.events, ...page2.events].map((e: { eventId: string }) => e.eventId)).toEqual(events.slice(0, 4).map((e: { eventId: string }) => e.eventId));
  });

  it("lists what a user did; a tenant sees its own project's resources only", async () => {
    await history();
    const mine = (await alice.client.call('ListUserEvents', { userId: alice.user.id, pageSize: 1000 })).events;
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((e: { actor: { userId: string } }) => e.actor.userId === alice.user.id)).toBe(true);
    expect(mine.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['InstanceCreated', 'InstanceActionStarted']));
    const byAdmin = (await t.admin.call('ListUserEvents', { userId: alice.user.id, pageSize: 1000 })).events;
    expect(byAdmin.map((e: { eventId: string }) => e.eventId)).toEqual(expect.arrayContaining(mine.map((e: { eventId: string }) => e.eventId)));
    // Bob's view of alice's actions: none of them are his project's.
    expect((await bob.client.call('ListUserEvents', { userId: alice.user.id, pageSize: 1000 })).events).toEqual([]);
    expect(await errorOf(bob.client.call('ListUserEvents', { userId: alice.user.id, projectId: alice.project.id }))).toMatchObject({ code: PERMISSION_DENIED, field: 'project_id' });
    expect(await errorOf(bob.client.call('ListResourceEvents', { resourceId: serverId }))).toMatchObject({ code: NOT_FOUND, field: 'resource_id' });
    expect(await errorOf(bob.client.call('GetResourceAt', { resourceId: serverId, time: { seconds: Math.floor(Date.now() / 1000), nanos: 0 } }))).toMatchObject({ code: NOT_FOUND });
    expect(await errorOf(alice.client.call('ListResourceEvents', {}))).toMatchObject({ code: INVALID_ARGUMENT, field: 'resource_id' });
    expect(await errorOf(alice.client.call('ListResourceEvents', { resourceId: serverId, aggregateType: 'spaceship' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'aggregate_type' });
  });

  it('travels in time: the state before the resize has the old flavor, after it the new one', async () => {
    const events = await history();
    const resize = events.find((e: { type: string; payloadJson: string }) => e.type === 'InstanceActionStarted' && JSON.parse(e.payloadJson).action === 'resize');
    const before = await alice.client.call('GetResourceAt', { resourceId: serverId, offset: Number(resize.offset) - 1 });
    expect(before.version).toBe(Number(resize.version) - 1);
    expect(before.state).toBe('active');
    expect(JSON.stringify(JSON.parse(before.stateJson))).toContain(`"id":"${small.id}"`);
    expect(before.stateJson).not.toContain(medium.id);
    const byTime = await alice.client.call('GetResourceAt', { resourceId: serverId, time: { seconds: Math.floor((msOf(resize.occurredAt) - 1) / 1000), nanos: ((msOf(resize.occurredAt) - 1) % 1000) * 1e6 } });
    expect(byTime.stateJson).not.toContain(medium.id);
    const now = await alice.client.call('GetResourceAt', { resourceId: serverId, time: { seconds: Math.floor(Date.now() / 1000) + 60, nanos: 0 } });
    expect(now.version).toBe(events.length);
    expect(now.state).toBe('stopped');
    expect(now.stateJson).toContain(medium.id);
    expect(now.asOf.eventId).toBe(events[events.length - 1].eventId);
    expect(await errorOf(alice.client.call('GetResourceAt', { resourceId: serverId }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'at' });
  });

  it('replays the whole log into a fresh store: every read model identical; a changed row is named', { timeout: 120_000 }, async () => {
    await history();
    const report = await t.admin.call('ReplayReadModels', {}, undefined, { timeoutMs: 110_000 });
    expect(report.differences).toEqual([]);
    expect(report.equal).toBe(true);
    const names = report.readModels.map((r: { readModel: string }) => r.readModel);
    expect(names).toEqual(expect.arrayContaining(['identity', 'compute', 'network', 'block', 'object', 'image', 'metering_usage', 'audit']));
    const audit = report.readModels.find((r: { readModel: string }) => r.readModel === 'audit');
    const events = audit.tables.find((x: { table: string }) => x.table === 'audit_events');
    expect(Number(events.liveRows)).toBeGreaterThan(10);
    expect(events.liveHash).toBe(events.replayedHash);
    expect(Number(report.eventsReplayed)).toBeGreaterThan(0);
    // A read model that drifted from the log: the replay names the table.
    await t.store.apply([{ sql: "UPDATE audit_events SET payload = '{}' WHERE aggregate_id = $1 AND version = 1", params: [serverId] }], []);
    const drifted = await t.admin.call('ReplayReadModels', { readModels: ['audit'] }, undefined, { timeoutMs: 110_000 });
    expect(drifted.equal).toBe(false);
    expect(drifted.differences).toEqual([expect.stringMatching(/^audit: audit_events differs: live \d+ rows/)]);
    // Admins only; unknown read models are named.
    expect(await errorOf(alice.client.call('ReplayReadModels', {}))).toMatchObject({ code: PERMISSION_DENIED });
    expect(await errorOf(t.admin.call('ReplayReadModels', { readModels: ['nope'] }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'read_models' });
  });

  it('the CLI: audit resource, time travel, audit user, admin replay', { timeout: 120_000 }, async () => {
    const events = await history();
    const table = await cli.strata(['audit', 'resource', serverId], alice.token);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toContain('InstanceCreated');
    expect(table.stdout).toContain(alice.user.id);
    const json = cli.json(await cli.strata(['--output', 'json', 'audit', 'resource', serverId], alice.token));
    expect(json.map((e: { eventId: string }) => e.eventId)).toEqual(events.map((e: { eventId: string }) => e.eventId));
    const resize = events.find((e: { type: string; payloadJson: string }) => e.type === 'InstanceActionStarted' && JSON.parse(e.payloadJson).action === 'resize');
    const before = await cli.strata(['audit', 'resource', serverId, '--at-offset', String(Number(resize.offset) - 1)], alice.token);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain(small.id);
    expect(before.stdout).not.toContain(medium.id);
    const user = cli.json(await cli.strata(['--output', 'json', 'audit', 'user', alice.user.id, '--since', new Date(Date.now() - 3_600_000).toISOString()], alice.token));
    expect(user.length).toBeGreaterThan(0);
    expect((await cli.strata(['audit', 'resource', serverId], bob.token)).code).toBe(3);
    expect((await cli.strata(['audit', 'resource', serverId, '--at', 'yesterday'], alice.token)).code).toBe(2);
    const replay = await cli.strata(['admin', 'replay', '--read-model', 'compute', '--read-model', 'identity'], await t.adminToken());
    expect(replay.code, replay.stderr).toBe(0);
    expect(replay.stdout).toContain('every read model is identical to its replay');
    expect((await cli.strata(['admin', 'replay'], alice.token)).code).toBe(4);
  });
});
