// The compute read models fed by the real deciders: commands decided and folded as the runtime
// does, their events encoded by the compute codec, appended to an embedded log and projected by a
// ProjectionRunner into SQLite and PostgreSQL. Servers read as Nova shows them (statuses, faults,
// deleted ones hidden, marker paging), flavors as a project may see them, host usage and quota
// usage follow claims and reservations, and the instance actions log records each request.
// Rebuilt from offset 0 into a fresh store, the rows are the same.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeAggregate } from '../../domains/compute/compute.deciders.js';
import { COMPUTE_DOMAIN } from '../../domains/compute/compute.types.js';
import { instanceStatus, TASK_STATES, VM_STATES } from '../../domains/compute/instance.states.js';
import { QUOTA_DEFAULTS } from '../../domains/compute/quota.machine.js';
import type { ActorContext, Message } from '../../domains/kernel/decider.js';
import { computeCodecFor } from '../../infra/codecs/compute.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { COMPUTE_TABLES, computeProjection, STATUS_SQL } from './compute.projection.js';
import { ComputeQueries } from './compute.queries.js';

type M = Message & Record<string, unknown>;

const PARTITIONS = 4;
const EVENTS = domainTopics(COMPUTE_DOMAIN).events;
const stores = testStores('compute');

const alice: ActorContext = { userId: 'u1', projectId: 'p1', roles: ['member', 'reader'] };
const bob: ActorContext = { userId: 'u2', projectId: 'p2', roles: ['member', 'reader'] };

const small = { id: 'f-small', name: 'm1.small', vcpus: 1, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const inventory = {
  vcpus: { total: 8, reserved: 0, allocationRatio: 4 },
  ramMb: { total: 65536, reserved: 512, allocationRatio: 1 },
  diskGb: { total: 1000, reserved: 0, allocationRatio: 1 },
};

const dump = (store: Store) => dumpTables(store, COMPUTE_TABLES);

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`compute read models on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let cloud: DecidedLog;
    let q: ComputeQueries;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };

    /** A server booted on a host to ACTIVE: quota reserved, resources claimed, then the create completes. */
    const boot = (id: string, name: string, actor: ActorContext, options: { atMs?: number; host?: string } = {}) => {
      const requestId = `req-boot-${id}`;
      cloud.send('instance', id, { type: 'CreateInstance', name, projectId: actor.projectId, userId: actor.userId, flavor: small, imageId: 'img-1', keyName: '', availabilityZone: '', serverGroupId: '', metadata: { role: 'web' } }, { actor, requestId, atMs: options.atMs });
      cloud.send('quota', actor.projectId, { type: 'ReserveQuota', consumerId: id, usage: { instances: 1, cores: 1, ram: 2048 } }, { requestId });
      return {
        place: (host = options.host ?? 'h1') => {
          cloud.send('host', host, { type: 'ClaimResources', consumerId: id, vcpus: 1, ramMb: 2048, diskGb: 20, groupId: '', policy: '' }, { requestId });
          cloud.send('instance', id, { type: 'AssignInstanceHost', host, availabilityZone: 'az1' }, { requestId });
          cloud.send('instance', id, { type: 'AdvanceInstanceTask', taskState: 'spawning' }, { requestId });
          return { complete: () => cloud.send('instance', id, { type: 'CompleteInstanceAction', action: 'create' }, { requestId }) };
        },
      };
    };
    const act = (id: string, command: M, action: string, actor = alice) => {
      const requestId = `req-${action}-${id}`;
      cloud.send('instance', id, command, { actor, requestId });
      cloud.send('instance', id, { type: 'CompleteInstanceAction', action }, { requestId });
    };

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-compute-log-')), 'log.db') });
      await log.ensureTopics([{ name: EVENTS, partitions: PARTITIONS }]);
      store = open();
      runner = new ProjectionRunner(log, store, computeProjection);
      await runner.start();
      cloud = new DecidedLog({ log, runner: () => runner, eventsTopic: EVENTS, partitions: PARTITIONS, aggregate: (t) => ({ decider: computeAggregate(t).decider, codec: computeCodecFor(t) }) });
      q = new ComputeQueries(store);

      // Hosts, flavors, key pairs, a server group, an aggregate, quota limits.
      cloud.send('host', 'h1', { type: 'RegisterHost', inventory, availabilityZone: 'az1' });
      cloud.send('host', 'h2', { type: 'RegisterHost', inventory, availabilityZone: 'az2' });
      cloud.send('host', 'h2', { type: 'DisableHost', reason: 'bad DIMM' });
      cloud.send('host', 'h1', { type: 'RecordHostHeartbeat' }, { atMs: Date.UTC(2026, 0, 1, 0, 30) });
      cloud.send('flavor', 'f-small', { type: 'CreateFlavor', flavor: { ...small, isPublic: true, description: 'small' } });
      cloud.send('flavor', 'f-gpu', { type: 'CreateFlavor', flavor: { ...small, id: 'f-gpu', name: 'g1.large', extraSpecs: { 'pci_passthrough:alias': 'a100:1' }, isPublic: false, description: '' } });
      cloud.send('flavor', 'f-gpu', { type: 'AddFlavorAccess', projectId: 'p1' });
      cloud.send('flavor', 'f-secret', { type: 'CreateFlavor', flavor: { ...small, id: 'f-secret', name: 's1', isPublic: false, description: '' } });
      cloud.send('flavor', 'f-secret', { type: 'AddFlavorAccess', projectId: 'p2' });
      cloud.send('flavor', 'f-secret', { type: 'AddFlavorAccess', projectId: 'p1' });
      cloud.send('flavor', 'f-secret', { type: 'RemoveFlavorAccess', projectId: 'p1' });
      cloud.send('flavor', 'f-gone', { type: 'CreateFlavor', flavor: { ...small, id: 'f-gone', name: 'old', isPublic: true, description: '' } });
      cloud.send('flavor', 'f-gone', { type: 'DeleteFlavor' });
      cloud.send('flavor', 'f-small', { type: 'UpdateFlavor', flavor: { description: 'the small one' }, updateMask: ['description'] });
      cloud.send('keypair', 'k1', { type: 'CreateKeypair', keypair: { id: 'k1', name: 'laptop', userId: 'u1', publicKey: 'ssh-ed25519 AAAA laptop', fingerprint: 'fp1', type: 'ssh' } }, { actor: alice });
      cloud.send('keypair', 'k2', { type: 'CreateKeypair', keypair: { id: 'k2', name: 'desktop', userId: 'u1', publicKey: 'ssh-ed25519 AAAA desktop', fingerprint: 'fp2', type: 'ssh' } }, { actor: alice });
      cloud.send('keypair', 'k3', { type: 'CreateKeypair', keypair: { id: 'k3', name: 'laptop', userId: 'u2', publicKey: 'ssh-ed25519 AAAA bob', fingerprint: 'fp3', type: 'ssh' } }, { actor: bob });
      cloud.send('keypair', 'k4', { type: 'CreateKeypair', keypair: { id: 'k4', name: 'old', userId: 'u1', publicKey: 'ssh-ed25519 AAAA old', fingerprint: 'fp4', type: 'ssh' } }, { actor: alice });
      cloud.send('keypair', 'k4', { type: 'DeleteKeypair' }, { actor: alice });
      cloud.send('server_group', 'g1', { type: 'CreateServerGroup', serverGroup: { id: 'g1', name: 'web', projectId: 'p1', userId: 'u1', policy: 'anti-affinity', maxServerPerHost: 0 } }, { actor: alice });
      cloud.send('server_group', 'g1', { type: 'AddServerGroupMember', instanceId: 'i-active', maxMembers: 10 });
      cloud.send('server_group', 'g1', { type: 'AddServerGroupMember', instanceId: 'i-off', maxMembers: 10 });
      cloud.send('server_group', 'g1', { type: 'AddServerGroupMember', instanceId: 'i-del', maxMembers: 10 });
      cloud.send('server_group', 'g1', { type: 'RemoveServerGroupMember', instanceId: 'i-del' });
      cloud.send('server_group', 'g2', { type: 'CreateServerGroup', serverGroup: { id: 'g2', name: 'db', projectId: 'p2', userId: 'u2', policy: 'affinity', maxServerPerHost: 0 } }, { actor: bob });
      cloud.send('aggregate', 'a1', { type: 'CreateAggregate', aggregate: { id: 'a1', name: 'ssd', availabilityZone: 'az1', metadata: { ssd: 'true' } } });
      cloud.send('aggregate', 'a1', { type: 'AddAggregateHost', host: 'h1' });
      cloud.send('aggregate', 'a1', { type: 'AddAggregateHost', host: 'h2' });
      cloud.send('aggregate', 'a1', { type: 'RemoveAggregateHost', host: 'h2' });
      cloud.send('aggregate', 'a1', { type: 'UpdateAggregate', aggregate: { metadata: { ssd: 'true', gen: '4' } }, updateMask: ['metadata'] });
      cloud.send('aggregate', 'a2', { type: 'CreateAggregate', aggregate: { id: 'a2', name: 'gpu', availabilityZone: '', metadata: {} } });
      cloud.send('quota', 'p1', { type: 'SetQuotaLimits', limits: { cores: 40, instances: 20 } });

      // Servers of p1 in every state the list shows, and one of p2.
      boot('i-active', 'web-1', alice).place().complete();
      boot('i-off', 'web-2', alice).place().complete();
      act('i-off', { type: 'StopInstance' }, 'stop');
      boot('i-paused', 'batch-1', alice).place().complete();
      act('i-paused', { type: 'PauseInstance' }, 'pause');
      boot('i-build', 'web-3', alice).place();
      boot('i-err', 'web-4', alice).place();
      cloud.send('instance', 'i-err', { type: 'FailInstanceAction', action: 'create', code: 500, message: 'Build of instance i-err aborted: spawn failed' }, { requestId: 'req-boot-i-err' });
      boot('i-del', 'web-5', alice).place().complete();
      boot('i-reboot', 'web-6', alice).place().complete();
      cloud.send('instance', 'i-reboot', { type: 'RebootInstance' }, { actor: alice, requestId: 'req-reboot-i-reboot' });
      boot('i-other', 'bob-1', bob).place().complete();
      // Two servers created in the same millisecond: the id breaks the tie.
      const tie = cloud.clockMs + 1000;
      boot('i-tie-b', 'tie-b', alice, { atMs: tie });
      boot('i-tie-a', 'tie-a', alice, { atMs: tie });
      // Metadata and a lock on the active server.
      cloud.send('instance', 'i-active', { type: 'SetInstanceMetadata', items: { owner: 'alice', 'quote"d': 'back\\slash' }, maxItems: 128 }, { actor: alice });
      cloud.send('instance', 'i-active', { type: 'DeleteInstanceMetadata', key: 'role' }, { actor: alice });
      cloud.send('instance', 'i-active', { type: 'LockInstance', reason: 'maintenance' }, { actor: alice, requestId: 'req-lock-i-active' });
      await cloud.flush();
    });

    afterAll(async () => {
      await runner?.stop();
      await log?.close();
      for (const s of opened) await discardStore(s);
    });

    it("computes every (vm_state, task_state) status exactly as Nova's table does", async () => {
      // One query per vm_state: SQLite allows at most 500 terms in a compound SELECT.
      for (const vm of VM_STATES) {
        const tasks = [null, ...TASK_STATES];
        const rows = await store.query<{ vm_state: string; task_state: string | null; s: string }>(
          `SELECT vm_state, task_state, ${STATUS_SQL} AS s FROM (${tasks
            .map((task) => `SELECT '${vm}' AS vm_state, ${task === null ? 'CAST(NULL AS TEXT)' : `'${task}'`} AS task_state`)
            .join(' UNION ALL ')}) t`,
        );
        expect(rows.length).toBe(tasks.length);
        for (const r of rows) expect(r.s, `${r.vm_state}/${r.task_state}`).toBe(instanceStatus(vm, r.task_state as never));
      }
    });

    it('shows servers with the status strings of Nova, ERROR with its fault, deleted ones hidden', async () => {
      expect((await q.getServer('i-active'))!).toMatchObject({
        status: 'ACTIVE', vmState: 'active', taskState: null, powerState: 1, host: 'h1', availabilityZone: 'az1', launched: true,
        flavor: small, projectId: 'p1', userId: 'u1', locked: true, lockedReason: 'maintenance', lockedBy: 'owner', fault: null,
        metadata: { owner: 'alice', 'quote"d': 'back\\slash' },
      });
      expect(await q.getServer('i-off')).toMatchObject({ status: 'SHUTOFF', vmState: 'stopped', powerState: 4 });
      expect(await q.getServer('i-paused')).toMatchObject({ status: 'PAUSED', vmState: 'paused', powerState: 3 });
      expect(await q.getServer('i-build')).toMatchObject({ status: 'BUILD', vmState: 'building', taskState: 'spawning', action: 'create', launched: false });
      expect(await q.getServer('i-reboot')).toMatchObject({ status: 'REBOOT', vmState: 'active', taskState: 'rebooting', action: 'reboot' });
      expect(await q.getServer('i-err')).toMatchObject({
        status: 'ERROR', vmState: 'error', taskState: null, fault: { code: 500, message: 'Build of instance i-err aborted: spawn failed' },
      });

      // Deleted: the row stays (vm_state deleted), hidden unless asked for.
      act('i-del', { type: 'DeleteInstance', soft: false }, 'delete');
      cloud.send('host', 'h1', { type: 'ReleaseResources', consumerId: 'i-del' });
      cloud.send('quota', 'p1', { type: 'ReleaseQuota', consumerId: 'i-del' });
      await cloud.flush();
      expect(await q.getServer('i-del')).toBeUndefined();
      expect(await q.getServer('i-del', { includeDeleted: true })).toMatchObject({ status: 'DELETED', vmState: 'deleted', host: '' });
      const p1 = (await q.listServers({ projectId: 'p1' })).servers.map((s) => s.id);
      expect(p1).not.toContain('i-del');
      expect(p1).not.toContain('i-other');
      expect((await q.listServers({ projectId: 'p1', status: 'deleted' })).servers.map((s) => s.id)).toEqual(['i-del']);
      expect((await q.listServers({ allProjects: true })).servers.map((s) => s.id)).toContain('i-other');
      expect((await q.listServers({ projectId: 'p1', status: 'ACTIVE' })).servers.map((s) => s.id).sort()).toEqual(['i-active']);
      expect((await q.listServers({ projectId: 'p1', name: 'WEB' })).servers.map((s) => s.name).sort()).toEqual(['web-1', 'web-2', 'web-3', 'web-4', 'web-6']);
      expect((await q.listServers({ allProjects: true, host: 'h1', status: 'SHUTOFF' })).servers.map((s) => s.id)).toEqual(['i-off']);
      expect(await q.serverCountByStatus({ projectId: 'p1' })).toEqual({ ACTIVE: 1, BUILD: 3, ERROR: 1, PAUSED: 1, REBOOT: 1, SHUTOFF: 1 });
      expect(await q.serverCountByStatus({ allProjects: true, includeDeleted: true })).toMatchObject({ ACTIVE: 2, DELETED: 1 });
    });

    it('pages servers newest first (or oldest first) by (created_at, id) with a marker', async () => {
      for (const sortDir of ['desc', 'asc'] as const) {
        const all = (await q.listServers({ projectId: 'p1', sortDir })).servers;
        const sorted = [...all].sort((a, b) => a.createdAtMs - b.createdAtMs || a.id.localeCompare(b.id));
        expect(all.map((s) => s.id)).toEqual((sortDir === 'asc' ? sorted : sorted.reverse()).map((s) => s.id));
        const ids: string[] = [];
        let marker = '';
        let pages = 0;
        do {
          const page = await q.listServers({ projectId: 'p1', sortDir, limit: 3, marker: marker || undefined });
          expect(page.servers.length).toBeLessThanOrEqual(3);
          ids.push(...page.servers.map((s) => s.id));
          marker = page.nextMarker;
          pages++;
        } while (marker);
        expect(ids).toEqual(all.map((s) => s.id));
        expect(pages).toBe(Math.ceil(all.length / 3));
      }
      const asc = (await q.listServers({ projectId: 'p1', sortDir: 'asc' })).servers.map((s) => s.id);
      expect(asc.slice(-2)).toEqual(['i-tie-a', 'i-tie-b']);
      await expect(q.listServers({ projectId: 'p1', marker: 'nope' })).rejects.toThrow('marker [nope] not found');
    });

    it('shows a project the public flavors and the private ones it was given', async () => {
      const ids = async (projectId?: string) => (await q.listFlavors({ projectId })).map((f) => f.id);
      expect(await ids('p1')).toEqual(['f-gpu', 'f-small']);
      expect(await ids('p2')).toEqual(['f-secret', 'f-small']);
      expect(await ids('p3')).toEqual(['f-small']);
      expect(await ids()).toEqual(['f-gpu', 'f-secret', 'f-small']);
      expect((await q.listFlavors({ isPublic: false })).map((f) => f.id)).toEqual(['f-gpu', 'f-secret']);
      expect(await q.getFlavor('f-gpu', { projectId: 'p2' })).toBeUndefined();
      expect(await q.getFlavor('f-gpu', { projectId: 'p1' })).toMatchObject({ name: 'g1.large', isPublic: false, access: ['p1'], extraSpecs: { 'pci_passthrough:alias': 'a100:1' } });
      expect(await q.getFlavor('f-small')).toMatchObject({ vcpus: 1, ramMb: 2048, diskGb: 20, isPublic: true, description: 'the small one', access: [] });
      expect(await q.getFlavor('f-gone')).toBeUndefined();
      expect((await q.listFlavors({ limit: 1, marker: 'f-gpu' })).map((f) => f.id)).toEqual(['f-secret']);
    });

    it('lists key pairs per user, server groups per project, aggregates with their hosts', async () => {
      expect((await q.listKeypairs('u1')).map((k) => k.name)).toEqual(['desktop', 'laptop']);
      expect((await q.listKeypairs('u2')).map((k) => k.id)).toEqual(['k3']);
      expect(await q.getKeypair('k4')).toBeUndefined();
      expect(await q.getKeypairByName('u2', 'laptop')).toMatchObject({ id: 'k3', publicKey: 'ssh-ed25519 AAAA bob', type: 'ssh' });
      expect(await q.getServerGroup('g1')).toEqual({ id: 'g1', name: 'web', projectId: 'p1', userId: 'u1', policy: 'anti-affinity', maxServerPerHost: 0, members: ['i-active', 'i-off'] });
      expect((await q.listServerGroups('p2')).map((g) => g.id)).toEqual(['g2']);
      expect((await q.listServerGroups()).map((g) => g.name)).toEqual(['db', 'web']);
      expect(await q.getAggregate('a1')).toMatchObject({ name: 'ssd', availabilityZone: 'az1', metadata: { ssd: 'true', gen: '4' }, hosts: ['h1'] });
      expect((await q.listAggregates()).map((a) => a.name)).toEqual(['gpu', 'ssd']);
      expect((await q.listAggregates({ host: 'h1' })).map((a) => a.id)).toEqual(['a1']);
    });

    it('keeps host usage in step with claims and releases, and quota usage with reservations', async () => {
      // Placed on h1: i-active, i-off, i-paused, i-build, i-err, i-reboot, i-other (i-del released).
      expect(await q.getHost('h1')).toMatchObject({
        availabilityZone: 'az1', enabled: true, inventory, used: { vcpus: 7, ramMb: 14336, diskGb: 140 }, claims: 7, lastHeartbeatMs: Date.UTC(2026, 0, 1, 0, 30),
      });
      expect(await q.getHost('h2')).toMatchObject({ enabled: false, disabledReason: 'bad DIMM', used: { vcpus: 0, ramMb: 0, diskGb: 0 }, claims: 0 });
      expect((await q.listHosts({ enabled: true })).map((h) => h.id)).toEqual(['h1']);
      expect((await q.listHosts({ availabilityZone: 'az2' })).map((h) => h.id)).toEqual(['h2']);
      // p1: 9 booted, i-del released; limits set for cores and instances, defaults for the rest.
      expect(await q.getQuota('p1')).toEqual({ projectId: 'p1', limits: { ...QUOTA_DEFAULTS, cores: 40, instances: 20 }, used: { instances: 8, cores: 8, ram: 16384 } });
      expect(await q.getQuota('p-none')).toEqual({ projectId: 'p-none', limits: { ...QUOTA_DEFAULTS }, used: { instances: 0, cores: 0, ram: 0 } });

      cloud.send('host', 'h1', { type: 'ReleaseResources', consumerId: 'i-err' });
      cloud.send('host', 'h1', { type: 'ReleaseResources', consumerId: 'i-err' }); // given back once
      cloud.send('quota', 'p1', { type: 'ReleaseQuota', consumerId: 'i-err' });
      cloud.send('host', 'h1', { type: 'ClaimResources', consumerId: 'i-big', vcpus: 4, ramMb: 8192, diskGb: 100, groupId: '', policy: '' });
      cloud.send('quota', 'p1', { type: 'ReserveQuota', consumerId: 'i-big', usage: { instances: 1, cores: 4, ram: 8192 } });
      cloud.send('quota', 'p1', { type: 'SetQuotaLimits', limits: { cores: -1 } });
      await cloud.flush();
      expect(await q.getHost('h1')).toMatchObject({ used: { vcpus: 10, ramMb: 20480, diskGb: 220 }, claims: 7 });
      expect(await q.getQuota('p1')).toMatchObject({ limits: { cores: -1, instances: 20, ram: 51200 }, used: { instances: 8, cores: 11, ram: 22528 } });
    });

    it("records each request in the server's instance actions log", async () => {
      const summary = async (id: string) => (await q.listInstanceActions(id)).map((a) => [a.action, a.requestId, a.result, a.message]);
      expect(await summary('i-off')).toEqual([
        ['stop', 'req-stop-i-off', 'success', ''],
        ['create', 'req-boot-i-off', 'success', ''],
      ]);
      expect(await summary('i-err')).toEqual([['create', 'req-boot-i-err', 'error', 'Build of instance i-err aborted: spawn failed']]);
      expect(await summary('i-reboot')).toEqual([
        ['reboot', 'req-reboot-i-reboot', null, ''],
        ['create', 'req-boot-i-reboot', 'success', ''],
      ]);
      expect(await summary('i-active')).toEqual([
        ['lock', 'req-lock-i-active', 'success', ''],
        ['create', 'req-boot-i-active', 'success', ''],
      ]);
      expect(await summary('i-del')).toEqual([
        ['delete', 'req-delete-i-del', 'success', ''],
        ['create', 'req-boot-i-del', 'success', ''],
      ]);
      const [stop] = await q.listInstanceActions('i-off');
      expect(stop).toMatchObject({ instanceId: 'i-off', userId: 'u1', projectId: 'p1' });
      expect(stop.finishedAtMs! > stop.startedAtMs).toBe(true);
      expect(await q.getInstanceAction('i-reboot', 'req-reboot-i-reboot')).toMatchObject({ action: 'reboot', finishedAtMs: null, result: null });

      // The reboot finishes; a power sync finds the guest off (an action without a start).
      cloud.send('instance', 'i-reboot', { type: 'CompleteInstanceAction', action: 'reboot' }, { requestId: 'req-reboot-i-reboot' });
      cloud.send('instance', 'i-reboot', { type: 'ReportPowerState', powerState: 4 }, { requestId: 'req-sync' });
      await cloud.flush();
      expect(await summary('i-reboot')).toEqual([
        ['sync_power_state', 'req-sync', 'success', ''],
        ['reboot', 'req-reboot-i-reboot', 'success', ''],
        ['create', 'req-boot-i-reboot', 'success', ''],
      ]);
      expect(await q.getServer('i-reboot')).toMatchObject({ status: 'SHUTOFF', powerState: 4 });
    });

    it('rebuilt from offset 0 into a fresh store gives the same rows', async () => {
      const live = await dump(store);
      expect(live.compute_instances.length).toBe(10);
      expect(live.compute_instance_actions.length).toBeGreaterThan(12);
      const fresh = open();
      const reached = await ProjectionRunner.rebuild(log, fresh, computeProjection);
      expect([...reached.values()].reduce((a, b) => a + b, 0)).toBe(cloud.all.length);
      expect(await dump(fresh)).toEqual(live);
      // And the queries read the same from both.
      const [a, b] = [new ComputeQueries(store), new ComputeQueries(fresh)];
      expect(await b.listServers({ allProjects: true, includeDeleted: true })).toEqual(await a.listServers({ allProjects: true, includeDeleted: true }));
      expect(await b.getQuota('p1')).toEqual(await a.getQuota('p1'));
    });
  });
}
