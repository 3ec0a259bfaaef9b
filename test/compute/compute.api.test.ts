// Issue 4, the compute API: every ComputeService resource over a real TLS gRPC server on
// loopback, with servers that really boot (the conductor schedules, fake-driver agents spawn).
// The negative cases are the point: quota refusals that name the quota and leave nothing held,
// multi-create between min_count and max_count, tenancy (another project's server does not
// exist), admin-only actions, actions the instance machine refuses in the current state (named,
// and nothing changes), and the lock that stops a non-admin.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataClient } from '../../cli/client.js';
import { codeOf, errorOf } from '../identity/cloud.js';
import { eventually, startComputeCloud, type ComputeTestCloud, type Member } from './compute-cloud.js';

const PERMISSION_DENIED = 7;
const NOT_FOUND = 5;
const INVALID_ARGUMENT = 3;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;
const RESOURCE_EXHAUSTED = 8;

const uniq = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

describe('ComputeService', () => {
  let t: ComputeTestCloud;
  let admin: StrataClient;
  let alice: Member; // member of project A
  let bob: Member; // member of project B
  let flavorId: string;

  /** Boots a server and waits until its create operation is done. */
  async function boot(m: Member, extra: Record<string, unknown> = {}) {
    const res = await m.client.call('CreateServer', { name: uniq('vm'), flavorId, imageId: 'cirros', ...extra });
    const op = (await m.client.call('WaitOperation', { name: res.operations[0].name, serverId: res.servers[0].id, timeout: { seconds: 30 } })).operation;
    expect(op).toMatchObject({ done: true, result: 'success', action: 'create' });
    return (await m.client.call('GetServer', { id: res.servers[0].id })).server;
  }

  /** Runs an action and waits for its operation. */
  async function act(c: StrataClient, rpc: string, id: string, extra: Record<string, unknown> = {}) {
    const res = await c.call(rpc, { id, ...extra });
    const op = res.operation.done ? res.operation : (await c.call('WaitOperation', { name: res.operation.name, serverId: id, timeout: { seconds: 30 } })).operation;
    expect(op.result, `${rpc}: ${op.error}`).toBe('success');
    return (await c.call('GetServer', { id })).server;
  }

  beforeAll(async () => {
    t = await startComputeCloud({ hosts: 2 });
    admin = t.admin;
    alice = await t.member();
    bob = await t.member();
    flavorId = (await admin.call('CreateFlavor', { flavor: { name: uniq('m1.small'), vcpus: 1, ramMb: 512, diskGb: 1 } })).flavor.id;
  }, 120_000);
  afterAll(async () => t?.close());

  describe('flavors', () => {
    it('are created by admins (public unless said), listed, changed and deleted', async () => {
      const f = (await admin.call('CreateFlavor', { flavor: { id: 'm1.tiny', name: uniq('tiny'), vcpus: 1, ramMb: 256, diskGb: 1, extraSpecs: { 'hw:cpu_policy': 'shared' } } })).flavor;
      expect(f).toMatchObject({ id: 'm1.tiny', isPublic: true, extraSpecs: { 'hw:cpu_policy': 'shared' } });
      expect((await alice.client.call('GetFlavor', { id: 'm1.tiny' })).flavor.name).toBe(f.name);
      expect((await alice.client.call('ListFlavors', {})).flavors.map((x: { id: string }) => x.id)).toContain('m1.tiny');
      const updated = (await admin.call('UpdateFlavor', { flavor: { id: 'm1.tiny', description: 'the smallest', vcpus: 64 }, updateMask: { paths: ['description'] } })).flavor;
      expect(updated).toMatchObject({ description: 'the smallest', vcpus: 1 });
      const frozen = await errorOf(admin.call('UpdateFlavor', { flavor: { id: 'm1.tiny', vcpus: 64 }, updateMask: { paths: ['vcpus'] } }));
      expect(frozen).toMatchObject({ code: INVALID_ARGUMENT, field: 'flavor.vcpus' });
      expect(await errorOf(admin.call('CreateFlavor', { flavor: { id: 'm1.tiny', name: uniq('other'), vcpus: 1, ramMb: 1, diskGb: 0 } }))).toMatchObject({ code: ALREADY_EXISTS });
      expect(await errorOf(admin.call('CreateFlavor', { flavor: { name: f.name, vcpus: 1, ramMb: 1, diskGb: 0 } }))).toMatchObject({ code: ALREADY_EXISTS });
      await admin.call('DeleteFlavor', { id: 'm1.tiny' });
      expect(await codeOf(alice.client.call('GetFlavor', { id: 'm1.tiny' }))).toBe(NOT_FOUND);
      expect(await errorOf(admin.call('CreateFlavor', { flavor: { id: 'm1.tiny', name: uniq('tiny'), vcpus: 1, ramMb: 256, diskGb: 1 } }))).toMatchObject({
        code: ALREADY_EXISTS,
        details: 'Flavor with ID m1.tiny was used by a deleted flavor; choose another id.',
      });
    });

    it('refuses members, and bad sizes naming the field', async () => {
      expect(await errorOf(alice.client.call('CreateFlavor', { flavor: { name: uniq('x'), vcpus: 1, ramMb: 1, diskGb: 0 } }))).toMatchObject({
        code: PERMISSION_DENIED,
        details: expect.stringContaining('compute:create_flavor'),
      });
      expect(await errorOf(admin.call('CreateFlavor', { flavor: { name: uniq('x'), vcpus: 0, ramMb: 1, diskGb: 0 } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'flavor.vcpus' });
    });

    it('hides a private flavor from projects without access, and shows it once access is given', async () => {
      const f = (await admin.call('CreateFlavor', { flavor: { name: uniq('gpu'), vcpus: 4, ramMb: 4096, diskGb: 10 }, isPublic: false })).flavor;
      expect(f.isPublic).toBe(false);
      expect(await codeOf(alice.client.call('GetFlavor', { id: f.id }))).toBe(NOT_FOUND);
      expect((await alice.client.call('ListFlavors', {})).flavors.map((x: { id: string }) => x.id)).not.toContain(f.id);
      expect((await admin.call('AddFlavorAccess', { flavorId: f.id, projectId: alice.project.id })).projectIds).toEqual([alice.project.id]);
      expect(await codeOf(admin.call('AddFlavorAccess', { flavorId: f.id, projectId: alice.project.id }))).toBe(ALREADY_EXISTS);
      expect((await alice.client.call('GetFlavor', { id: f.id })).flavor.id).toBe(f.id);
      expect(await codeOf(bob.client.call('GetFlavor', { id: f.id }))).toBe(NOT_FOUND);
      expect((await admin.call('RemoveFlavorAccess', { flavorId: f.id, projectId: alice.project.id })).projectIds).toEqual([]);
      expect(await codeOf(alice.client.call('GetFlavor', { id: f.id }))).toBe(NOT_FOUND);
      expect(await codeOf(admin.call('AddFlavorAccess', { flavorId, projectId: alice.project.id }))).toBe(FAILED_PRECONDITION);
    });

    it('pages by id', async () => {
      const page = await admin.call('ListFlavors', { pageSize: 1 });
      expect(page.flavors).toHaveLength(1);
      expect(page.nextPageToken).toBe(page.flavors[0].id);
      const next = await admin.call('ListFlavors', { pageSize: 1, pageToken: page.nextPageToken });
      expect(next.flavors[0]?.id ?? '').not.toBe(page.flavors[0].id);
    });
  });

  describe('key pairs', () => {
    it('generates an ed25519 key pair whose private key ssh accepts, once', async () => {
      const requestId = randomUUID();
      const res = await alice.client.call('CreateKeypair', { name: 'laptop', requestId });
      expect(res.keypair).toMatchObject({ name: 'laptop', type: 'ssh', userId: alice.user.id });
      expect(res.keypair.publicKey).toMatch(/^ssh-ed25519 AAAA/);
      expect(res.keypair.fingerprint).toMatch(/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/);
      expect(res.privateKey).toContain('BEGIN OPENSSH PRIVATE KEY');
      const file = join(mkdtempSync(join(tmpdir(), 'strata-key-')), 'id');
      writeFileSync(file, res.privateKey, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
      expect(res.keypair.publicKey.startsWith(derived.split(' ').slice(0, 2).join(' '))).toBe(true);
      // The same request again: the same key pair, and no private key this time.
      const again = await alice.client.call('CreateKeypair', { name: 'laptop', requestId });
      expect(again.keypair.id).toBe(res.keypair.id);
      expect(again.privateKey).toBe('');
      expect(await errorOf(alice.client.call('CreateKeypair', { name: 'laptop' }))).toMatchObject({ code: ALREADY_EXISTS });
    });

    it('imports a public key, lists and deletes per user, and keeps users apart', async () => {
      const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII40b/54jx/pasaGnatbBpWowL0pw+sIrm54wTe3csWZ me@host';
      const k = (await bob.client.call('CreateKeypair', { name: 'imported', publicKey: pub })).keypair;
      expect(k.fingerprint).toBe('7b:40:f5:cd:ba:63:6b:26:9b:d7:cf:35:de:21:24:64');
      expect((await bob.client.call('ListKeypairs', {})).keypairs.map((x: { name: string }) => x.name)).toEqual(['imported']);
      expect(await codeOf(alice.client.call('GetKeypair', { name: 'imported' }))).toBe(NOT_FOUND);
      expect(await codeOf(alice.client.call('GetKeypair', { name: 'imported', userId: bob.user.id }))).toBe(PERMISSION_DENIED);
      expect((await admin.call('GetKeypair', { name: 'imported', userId: bob.user.id })).keypair.id).toBe(k.id);
      expect(await errorOf(bob.client.call('CreateKeypair', { name: 'bad', publicKey: 'ssh-rsa not-base64!' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'keypair.public_key' });
      expect(await errorOf(bob.client.call('CreateKeypair', { name: 'bad/name' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'keypair.name' });
      expect(await errorOf(bob.client.call('CreateKeypair', { name: 'cert', type: 'x509' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'public_key' });
      await bob.client.call('DeleteKeypair', { name: 'imported' });
      expect((await bob.client.call('ListKeypairs', {})).keypairs).toEqual([]);
    });

    it('counts against key_pairs', async () => {
      const m = await t.member();
      await admin.call('SetQuota', { projectId: m.project.id, limits: { key_pairs: 1 } });
      await m.client.call('CreateKeypair', { name: 'one' });
      expect(await errorOf(m.client.call('CreateKeypair', { name: 'two' }))).toMatchObject({ code: RESOURCE_EXHAUSTED, details: expect.stringContaining('key_pairs') });
    });
  });

  describe('quotas', () => {
    it("shows a project its limits (Nova's defaults) and usage; only admins set them", async () => {
      const q = (await alice.client.call('GetQuota', {})).quota;
      expect(q.projectId).toBe(alice.project.id);
      expect(q.limits).toMatchObject({ instances: 10, cores: 20, ram: 51200, metadata_items: 128, key_pairs: 100, server_groups: 10, server_group_members: 10 });
      expect(q.inUse).toHaveProperty('instances');
      expect(await codeOf(alice.client.call('GetQuota', { projectId: bob.project.id }))).toBe(PERMISSION_DENIED);
      expect(await codeOf(alice.client.call('SetQuota', { projectId: alice.project.id, limits: { instances: 100 } }))).toBe(PERMISSION_DENIED);
      expect(await errorOf(admin.call('SetQuota', { projectId: bob.project.id, limits: { gpus: 1 } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'limits' });
      expect(await errorOf(admin.call('SetQuota', { projectId: bob.project.id, limits: { cores: -2 } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'limits.cores' });
      const set = (await admin.call('SetQuota', { projectId: bob.project.id, limits: { cores: 40, server_groups: -1 } })).quota;
      expect(set.limits).toMatchObject({ cores: 40, server_groups: -1, instances: 10 });
    });
  });

  describe('server groups', () => {
    it("are their project's: created, shown with members, listed, deleted; another project's are not found", async () => {
      const g = (await alice.client.call('CreateServerGroup', { serverGroup: { name: 'web', policy: 'anti-affinity' } })).serverGroup;
      expect(g).toMatchObject({ name: 'web', policy: 'anti-affinity', projectId: alice.project.id, userId: alice.user.id, members: [] });
      expect((await alice.client.call('ListServerGroups', {})).serverGroups.map((x: { id: string }) => x.id)).toContain(g.id);
      expect(await codeOf(bob.client.call('GetServerGroup', { id: g.id }))).toBe(NOT_FOUND);
      expect(await codeOf(bob.client.call('DeleteServerGroup', { id: g.id }))).toBe(NOT_FOUND);
      expect((await bob.client.call('ListServerGroups', {})).serverGroups.map((x: { id: string }) => x.id)).not.toContain(g.id);
      expect(await errorOf(alice.client.call('CreateServerGroup', { serverGroup: { name: 'x', policy: 'together' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'server_group.policy' });
      await alice.client.call('DeleteServerGroup', { id: g.id });
      expect(await codeOf(alice.client.call('GetServerGroup', { id: g.id }))).toBe(NOT_FOUND);
    });

    it('counts against server_groups', async () => {
      const m = await t.member();
      await admin.call('SetQuota', { projectId: m.project.id, limits: { server_groups: 1 } });
      await m.client.call('CreateServerGroup', { serverGroup: { name: 'a', policy: 'affinity' } });
      expect(await errorOf(m.client.call('CreateServerGroup', { serverGroup: { name: 'b', policy: 'affinity' } }))).toMatchObject({
        code: RESOURCE_EXHAUSTED,
        field: 'server_groups',
      });
    });
  });

  describe('hosts and aggregates', () => {
    it('lists the hosts the agents registered; admins disable one with a reason and enable it', async () => {
      const hosts = (await admin.call('ListHosts', {})).hosts;
      expect(hosts.map((h: { id: string }) => h.id)).toEqual(t.hostIds);
      expect(hosts[0]).toMatchObject({ enabled: true, up: true, availabilityZone: 'nova', inventory: { vcpus: { total: 8 } } });
      expect(await codeOf(alice.client.call('ListHosts', {}))).toBe(PERMISSION_DENIED);
      expect(await codeOf(alice.client.call('DisableHost', { id: t.hostIds[1] }))).toBe(PERMISSION_DENIED);
      const off = (await admin.call('DisableHost', { id: t.hostIds[1], reason: 'bad DIMM' })).host;
      expect(off).toMatchObject({ enabled: false, disabledReason: 'bad DIMM' });
      expect((await admin.call('ListHosts', { enabled: false })).hosts.map((h: { id: string }) => h.id)).toEqual([t.hostIds[1]]);
      expect(await codeOf(admin.call('DisableHost', { id: t.hostIds[1] }))).toBe(FAILED_PRECONDITION);
      expect((await admin.call('EnableHost', { id: t.hostIds[1] })).host).toMatchObject({ enabled: true, disabledReason: '' });
      expect(await codeOf(admin.call('GetHost', { id: 'no-such-host' }))).toBe(NOT_FOUND);
    });

    it('manages aggregates: hosts, metadata, zones, and no delete while hosts remain', async () => {
      const a = (await admin.call('CreateAggregate', { aggregate: { name: uniq('ssd'), availabilityZone: 'az-ssd', metadata: { ssd: 'true' } } })).aggregate;
      expect(a).toMatchObject({ availabilityZone: 'az-ssd', metadata: { ssd: 'true' }, hosts: [] });
      expect(await codeOf(admin.call('CreateAggregate', { aggregate: { name: a.name } }))).toBe(ALREADY_EXISTS);
      expect((await admin.call('AddAggregateHost', { aggregateId: a.id, host: t.hostIds[0] })).aggregate.hosts).toEqual([t.hostIds[0]]);
      expect(await codeOf(admin.call('AddAggregateHost', { aggregateId: a.id, host: t.hostIds[0] }))).toBe(ALREADY_EXISTS);
      expect(await errorOf(admin.call('AddAggregateHost', { aggregateId: a.id, host: 'nowhere' }))).toMatchObject({ code: NOT_FOUND, field: 'host' });
      const b = (await admin.call('CreateAggregate', { aggregate: { name: uniq('other-zone'), availabilityZone: 'az-other' } })).aggregate;
      expect(await codeOf(admin.call('AddAggregateHost', { aggregateId: b.id, host: t.hostIds[0] }))).toBe(FAILED_PRECONDITION);
      const meta = (await admin.call('SetAggregateMetadata', { aggregateId: a.id, metadata: { gpu: 'none' }, removeKeys: ['ssd'] })).aggregate;
      expect(meta.metadata).toEqual({ gpu: 'none' });
      const renamed = (await admin.call('UpdateAggregate', { aggregate: { id: a.id, name: uniq('fast') }, updateMask: { paths: ['name'] } })).aggregate;
      expect(renamed.hosts).toEqual([t.hostIds[0]]);
      expect((await admin.call('GetHost', { id: t.hostIds[0] })).host.aggregates).toEqual([renamed.name]);
      expect((await admin.call('ListAggregates', { host: t.hostIds[0] })).aggregates.map((x: { id: string }) => x.id)).toEqual([a.id]);
      expect(await errorOf(admin.call('DeleteAggregate', { id: a.id }))).toMatchObject({ code: FAILED_PRECONDITION });
      await admin.call('RemoveAggregateHost', { aggregateId: a.id, host: t.hostIds[0] });
      await admin.call('DeleteAggregate', { id: a.id });
      await admin.call('DeleteAggregate', { id: b.id });
      expect(await codeOf(admin.call('GetAggregate', { id: a.id }))).toBe(NOT_FOUND);
      expect(await codeOf(alice.client.call('ListAggregates', {}))).toBe(PERMISSION_DENIED);
    });
  });

  describe('servers', () => {
    it('boots a server to ACTIVE, with its operation, actions and what it allows next', async () => {
      const res = await alice.client.call('CreateServer', { name: 'web-1', flavorId, imageId: 'cirros', metadata: { role: 'web' } });
      expect(res.servers).toHaveLength(1);
      const [s] = res.servers;
      expect(s).toMatchObject({ name: 'web-1', projectId: alice.project.id, userId: alice.user.id, status: 'BUILD', vmState: 'building', metadata: { role: 'web' } });
      expect(s.flavor).toMatchObject({ id: flavorId, vcpus: 1, ramMb: 512 });
      expect(res.operations[0]).toMatchObject({ serverId: s.id, action: 'create', done: false });
      const op = (await alice.client.call('WaitOperation', { name: res.operations[0].name, timeout: { seconds: 30 } })).operation;
      expect(op).toMatchObject({ done: true, result: 'success' });
      const active = (await alice.client.call('GetServer', { id: s.id })).server;
      expect(active).toMatchObject({ status: 'ACTIVE', vmState: 'active', powerState: 1, host: '' });
      expect(active.allowedActions).toEqual(expect.arrayContaining(['stop', 'reboot', 'reboot-hard', 'lock', 'delete']));
      expect(active.allowedActions).not.toContain('start');
      expect(active.allowedActions).not.toContain('migrate');
      expect((await admin.call('GetServer', { id: s.id })).server.host).toMatch(/^compute-/);
      expect((await admin.call('GetServer', { id: s.id })).server.allowedActions).toContain('migrate');
      expect((await alice.client.call('ListServerActions', { id: s.id })).operations.map((o: { action: string }) => o.action)).toEqual(['create']);
      expect((await alice.client.call('GetServerConsoleOutput', { id: s.id })).output).toContain('create');
      const quota = (await alice.client.call('GetQuota', {})).quota;
      expect(quota.inUse).toMatchObject({ instances: expect.any(Number), cores: expect.any(Number) });
    });

    it('stops and starts, following each operation; an illegal action is FAILED_PRECONDITION naming the state and changes nothing', async () => {
      const s = await boot(alice);
      const started = await errorOf(alice.client.call('StartServer', { id: s.id }));
      expect(started).toMatchObject({ code: FAILED_PRECONDITION, state: 'active' });
      expect(started.details).toBe(`Cannot 'start' instance ${s.id} while it is in vm_state active`);
      const unchanged = (await alice.client.call('GetServer', { id: s.id })).server;
      expect(unchanged).toEqual(s);
      expect((await alice.client.call('ListServerActions', { id: s.id })).operations).toHaveLength(1);

      const stopped = await act(alice.client, 'StopServer', s.id);
      expect(stopped).toMatchObject({ status: 'SHUTOFF', vmState: 'stopped', powerState: 4 });
      expect(stopped.allowedActions).toContain('start');
      expect(await errorOf(alice.client.call('PauseServer', { id: s.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'stopped' });
      expect((await act(alice.client, 'StartServer', s.id)).status).toBe('ACTIVE');
      expect((await act(alice.client, 'RebootServer', s.id, { hard: true })).status).toBe('ACTIVE');
      const actions = (await alice.client.call('ListServerActions', { id: s.id })).operations.map((o: { action: string; result: string }) => `${o.action}:${o.result}`);
      expect(actions).toEqual(['reboot:success', 'start:success', 'stop:success', 'create:success']);
    });

    it('sets and deletes metadata within metadata_items, and resizes to another flavor', async () => {
      const s = await boot(alice);
      const res = await alice.client.call('SetServerMetadata', { id: s.id, metadata: { tier: 'gold' } });
      expect(res.operation.done).toBe(true);
      expect(res.server.metadata).toEqual({ tier: 'gold' });
      expect((await alice.client.call('DeleteServerMetadata', { id: s.id, key: 'tier' })).server.metadata).toEqual({});
      expect(await codeOf(alice.client.call('DeleteServerMetadata', { id: s.id, key: 'tier' }))).toBe(NOT_FOUND);
      const m = await t.member('member', alice.project);
      await admin.call('SetQuota', { projectId: alice.project.id, limits: { metadata_items: 1 } });
      expect(await errorOf(m.client.call('SetServerMetadata', { id: s.id, metadata: { a: '1', b: '2' } }))).toMatchObject({
        code: RESOURCE_EXHAUSTED,
        details: expect.stringContaining('metadata_items'),
      });
      await admin.call('SetQuota', { projectId: alice.project.id, limits: { metadata_items: 128 } });
      const bigger = (await admin.call('CreateFlavor', { flavor: { name: uniq('m1.medium'), vcpus: 2, ramMb: 1024, diskGb: 1 } })).flavor;
      expect(await errorOf(alice.client.call('ResizeServer', { id: s.id, flavorId: 'nope' }))).toMatchObject({ code: NOT_FOUND, field: 'flavor_id' });
      const resized = await act(alice.client, 'ResizeServer', s.id, { flavorId: bigger.id });
      expect(resized).toMatchObject({ status: 'VERIFY_RESIZE', flavor: { id: bigger.id } });
      expect((await act(alice.client, 'ConfirmResizeServer', s.id)).status).toBe('ACTIVE');
    });

    it('keeps projects apart: another project\'s server is not found, for reading and acting alike', async () => {
      const s = await boot(alice);
      expect(await errorOf(bob.client.call('GetServer', { id: s.id }))).toMatchObject({ code: NOT_FOUND, details: `Instance ${s.id} could not be found.` });
      for (const rpc of ['StopServer', 'DeleteServer', 'LockServer', 'GetServerConsoleOutput', 'ListServerActions']) {
        expect(await codeOf(bob.client.call(rpc, { id: s.id })), rpc).toBe(NOT_FOUND);
      }
      expect(await codeOf(bob.client.call('GetOperation', { name: 'anything', serverId: s.id }))).toBe(NOT_FOUND);
      expect((await bob.client.call('ListServers', {})).servers.map((x: { id: string }) => x.id)).not.toContain(s.id);
      // A project_id filter from a non-admin does not widen the view.
      expect((await bob.client.call('ListServers', { projectId: alice.project.id, allProjects: true })).servers.map((x: { id: string }) => x.id)).not.toContain(s.id);
      expect((await alice.client.call('ListServers', {})).servers.map((x: { id: string }) => x.id)).toContain(s.id);
      expect((await admin.call('ListServers', { allProjects: true })).servers.map((x: { id: string }) => x.id)).toContain(s.id);
      expect((await admin.call('ListServers', { projectId: alice.project.id })).servers.map((x: { id: string }) => x.id)).toContain(s.id);
      expect((await alice.client.call('GetServer', { id: s.id })).server.status).toBe('ACTIVE');
    });

    it('refuses admin-only actions to members (PERMISSION_DENIED) and lets admins do them', async () => {
      const s = await boot(alice);
      for (const rpc of ['MigrateServer', 'LiveMigrateServer', 'EvacuateServer', 'ResetServerState']) {
        const e = await errorOf(alice.client.call(rpc, { id: s.id, vmState: 'error' }));
        expect(e.code, rpc).toBe(PERMISSION_DENIED);
      }
      expect((await alice.client.call('GetServer', { id: s.id })).server).toMatchObject({ status: 'ACTIVE', action: '' });
      const reset = await admin.call('ResetServerState', { id: s.id, vmState: 'error' });
      expect(reset.server.status).toBe('ERROR');
      expect(await errorOf(admin.call('ResetServerState', { id: s.id, vmState: 'paused' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'vm_state' });
      expect((await admin.call('ResetServerState', { id: s.id, vmState: 'active' })).server.status).toBe('ACTIVE');
      // Evacuate leaves a failed host only: this server's host still beats its heart.
      const host = (await admin.call('GetServer', { id: s.id })).server.host;
      expect(await errorOf(admin.call('EvacuateServer', { id: s.id }))).toMatchObject({
        code: FAILED_PRECONDITION,
        details: `Compute service of ${host} is still in use.`,
      });
      expect((await admin.call('GetServer', { id: s.id })).server).toMatchObject({ status: 'ACTIVE', host });
    });

    it('a reader reads but may not act', async () => {
      const s = await boot(alice);
      const reader = await t.member('reader', alice.project);
      expect((await reader.client.call('GetServer', { id: s.id })).server.id).toBe(s.id);
      expect(await errorOf(reader.client.call('StopServer', { id: s.id }))).toMatchObject({ code: PERMISSION_DENIED, details: expect.stringContaining('compute:stop_server') });
      expect(await codeOf(reader.client.call('CreateServer', { name: 'x', flavorId, imageId: 'cirros' }))).toBe(PERMISSION_DENIED);
    });

    it("a lock stops a non-admin's lock-checked actions, not an admin's; an admin's lock only an admin lifts", async () => {
      const s = await boot(alice);
      const colleague = await t.member('member', alice.project);
      const locked = (await alice.client.call('LockServer', { id: s.id, reason: 'change freeze' })).server;
      expect(locked).toMatchObject({ locked: true, lockedReason: 'change freeze' });
      expect(locked.allowedActions).not.toContain('stop');
      expect(locked.allowedActions).toContain('unlock');
      for (const c of [alice.client, colleague.client]) {
        const e = await errorOf(c.call('StopServer', { id: s.id }));
        expect(e).toMatchObject({ code: FAILED_PRECONDITION, state: 'locked', details: `Instance ${s.id} is locked: change freeze` });
      }
      expect(await codeOf(colleague.client.call('DeleteServer', { id: s.id }))).toBe(FAILED_PRECONDITION);
      // Regression: the admin role on an ordinary project is no cloud admin, and the instance
      // machine (which lets admins past locks) must not be told otherwise.
      const projectAdmin = await t.member('admin', alice.project);
      expect(await errorOf(projectAdmin.client.call('StopServer', { id: s.id }))).toMatchObject({ code: FAILED_PRECONDITION, state: 'locked' });
      expect(await codeOf(projectAdmin.client.call('MigrateServer', { id: s.id }))).toBe(PERMISSION_DENIED);
      expect((await alice.client.call('GetServer', { id: s.id })).server.status).toBe('ACTIVE');
      expect((await act(admin, 'StopServer', s.id)).status).toBe('SHUTOFF');
      await alice.client.call('UnlockServer', { id: s.id });
      expect((await act(alice.client, 'StartServer', s.id)).status).toBe('ACTIVE');
      await admin.call('LockServer', { id: s.id });
      expect(await errorOf(alice.client.call('UnlockServer', { id: s.id }))).toMatchObject({ code: PERMISSION_DENIED });
      expect((await admin.call('UnlockServer', { id: s.id })).server.locked).toBe(false);
    });

    it('refuses bad input naming the field, before anything is reserved', async () => {
      const before = (await alice.client.call('GetQuota', {})).quota.inUse;
      expect(await errorOf(alice.client.call('CreateServer', { name: '', flavorId, imageId: 'cirros' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'name' });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: '' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'image_id' });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId: 'nope', imageId: 'cirros' }))).toMatchObject({ code: NOT_FOUND, field: 'flavor_id' });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'i', keyName: 'nope' }))).toMatchObject({ code: NOT_FOUND, field: 'key_name' });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'i', availabilityZone: 'mars' }))).toMatchObject({
        code: INVALID_ARGUMENT,
        field: 'availability_zone',
      });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'i', minCount: 3, maxCount: 2 }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'max_count' });
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'i', metadata: { '': 'v' } }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'metadata' });
      const g = (await bob.client.call('CreateServerGroup', { serverGroup: { name: 'bobs', policy: 'affinity' } })).serverGroup;
      expect(await errorOf(alice.client.call('CreateServer', { name: 'x', flavorId, imageId: 'i', serverGroupId: g.id }))).toMatchObject({ code: NOT_FOUND, field: 'server_group_id' });
      expect((await alice.client.call('GetQuota', {})).quota.inUse).toEqual(before);
    });
  });

  describe('quota and multi-create', () => {
    let m: Member;
    const count = async () => (await m.client.call('ListServers', {})).servers.length;
    const usage = async () => (await m.client.call('GetQuota', {})).quota.inUse;

    beforeAll(async () => {
      m = await t.member();
      await admin.call('SetQuota', { projectId: m.project.id, limits: { instances: 3 } });
    });

    it('refuses a boot beyond the quota with RESOURCE_EXHAUSTED naming it, creating nothing and holding nothing', async () => {
      await admin.call('SetQuota', { projectId: m.project.id, limits: { cores: 2 } });
      const big = (await admin.call('CreateFlavor', { flavor: { name: uniq('big'), vcpus: 4, ramMb: 512, diskGb: 1 } })).flavor;
      const before = await usage();
      const e = await errorOf(m.client.call('CreateServer', { name: 'too-big', flavorId: big.id, imageId: 'cirros' }));
      expect(e).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'cores' });
      expect(e.details).toBe('Quota exceeded for cores: Requested 4, but already used 0 of 2 cores');
      expect(await count()).toBe(0);
      expect(await usage()).toEqual(before);
      await admin.call('SetQuota', { projectId: m.project.id, limits: { cores: 20 } });
    });

    it('creates max_count when it fits, as many as fit down to min_count, and none below it', async () => {
      const one = await m.client.call('CreateServer', { name: 'solo', flavorId, imageId: 'cirros' });
      expect(one.servers).toHaveLength(1);
      // 2 of 3 instances left: max 5 gets 2, named as Nova names them.
      const some = await m.client.call('CreateServer', { name: 'batch', flavorId, imageId: 'cirros', minCount: 1, maxCount: 5 });
      expect(some.servers.map((s: { name: string }) => s.name)).toEqual(['batch-1', 'batch-2']);
      expect(some.operations).toHaveLength(2);
      expect(await count()).toBe(3);
      expect(await usage()).toMatchObject({ instances: 3, cores: 3, ram: 1536 });
      // None left: min 1 is refused, naming instances, and nothing changes.
      const e = await errorOf(m.client.call('CreateServer', { name: 'more', flavorId, imageId: 'cirros', minCount: 1, maxCount: 2 }));
      expect(e).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'instances', details: expect.stringContaining('Quota exceeded for instances') });
      expect(await count()).toBe(3);
      expect(await usage()).toMatchObject({ instances: 3, cores: 3, ram: 1536 });
      // Room for 2 but min_count 3: refused, and the 2 reserved on the way are given back.
      await admin.call('SetQuota', { projectId: m.project.id, limits: { instances: 5 } });
      expect(await errorOf(m.client.call('CreateServer', { name: 'trio', flavorId, imageId: 'cirros', minCount: 3, maxCount: 3 }))).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'instances' });
      expect(await count()).toBe(3);
      expect(await usage()).toMatchObject({ instances: 3, cores: 3, ram: 1536 });
      for (const op of some.operations) {
        expect((await m.client.call('WaitOperation', { name: op.name, serverId: op.serverId, timeout: { seconds: 30 } })).operation.result).toBe('success');
      }
    });

    it('is idempotent by request_id: a retried create makes the same servers and counts them once', async () => {
      await admin.call('SetQuota', { projectId: m.project.id, limits: { instances: 10 } });
      const requestId = randomUUID();
      const first = await m.client.call('CreateServer', { name: 'again', flavorId, imageId: 'cirros', maxCount: 2, requestId });
      const used = await usage();
      const second = await m.client.call('CreateServer', { name: 'again', flavorId, imageId: 'cirros', maxCount: 2, requestId });
      expect(second.servers.map((s: { id: string }) => s.id)).toEqual(first.servers.map((s: { id: string }) => s.id));
      expect(await usage()).toEqual(used);
      expect(second.operations.map((o: { name: string }) => o.name)).toEqual([requestId, requestId]);
      expect(await errorOf(m.client.call('GetOperation', { name: requestId }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'server_id' });
      // The same request id in another project is another request.
      const other = await alice.client.call('CreateServer', { name: 'again', flavorId, imageId: 'cirros', requestId });
      expect(other.servers[0].id).not.toBe(first.servers[0].id);
    });

    it('caps a server group at server_group_members, giving back the quota of the servers refused', async () => {
      const p = await t.member();
      await admin.call('SetQuota', { projectId: p.project.id, limits: { server_group_members: 2 } });
      const g = (await p.client.call('CreateServerGroup', { serverGroup: { name: 'spread', policy: 'soft-anti-affinity' } })).serverGroup;
      const res = await p.client.call('CreateServer', { name: 'member', flavorId, imageId: 'cirros', serverGroupId: g.id, minCount: 1, maxCount: 3 });
      expect(res.servers).toHaveLength(2);
      expect((await p.client.call('GetServerGroup', { id: g.id })).serverGroup.members.sort()).toEqual(res.servers.map((s: { id: string }) => s.id).sort());
      expect((await p.client.call('GetQuota', {})).quota.inUse).toMatchObject({ instances: 2 });
      const e = await errorOf(p.client.call('CreateServer', { name: 'third', flavorId, imageId: 'cirros', serverGroupId: g.id }));
      expect(e).toMatchObject({ code: RESOURCE_EXHAUSTED, field: 'server_group_members' });
      expect((await p.client.call('GetQuota', {})).quota.inUse).toMatchObject({ instances: 2 });
      expect((await p.client.call('ListServers', {})).servers).toHaveLength(2);
    });

    it('deletes a server: it leaves the list, and its quota and group seat are given back', async () => {
      const p = await t.member();
      const g = (await p.client.call('CreateServerGroup', { serverGroup: { name: 'g', policy: 'affinity' } })).serverGroup;
      const s = await boot(p, { serverGroupId: g.id });
      expect((await p.client.call('GetQuota', {})).quota.inUse).toMatchObject({ instances: 1 });
      const res = await p.client.call('DeleteServer', { id: s.id });
      expect(res.operation.action).toBe('delete');
      await p.client.call('WaitOperation', { name: res.operation.name, serverId: s.id, timeout: { seconds: 30 } });
      expect(await codeOf(p.client.call('GetServer', { id: s.id }))).toBe(NOT_FOUND);
      expect((await p.client.call('ListServers', {})).servers).toEqual([]);
      expect((await p.client.call('ListServers', { status: 'DELETED' })).servers.map((x: { id: string }) => x.id)).toEqual([s.id]);
      await eventually(async () => ((await p.client.call('GetQuota', {})).quota.inUse.instances === 0 ? true : undefined), 20_000, 'the quota to be given back');
      await eventually(async () => ((await p.client.call('GetServerGroup', { id: g.id })).serverGroup.members.length === 0 ? true : undefined), 20_000, 'the group seat');
    });
  });

  describe('watching', () => {
    it("streams a project's server changes to its members, and nobody else's", async () => {
      const seen: { server: { id: string; status: string; projectId: string }; events: string[] }[] = [];
      const bobSaw: unknown[] = [];
      const w = alice.client.stream('WatchServers', {}, (m) => seen.push(m as never));
      const wb = bob.client.stream('WatchServers', {}, (m) => bobSaw.push(m));
      await new Promise((r) => setTimeout(r, 300));
      const s = await boot(alice);
      await eventually(async () => (seen.some((m) => m.server.id === s.id && m.server.status === 'ACTIVE') ? true : undefined), 10_000, 'ACTIVE on the stream');
      expect(seen.every((m) => m.server.projectId === alice.project.id)).toBe(true);
      expect(seen.find((m) => m.server.id === s.id)?.events).toContain('InstanceCreated');
      expect(bobSaw.filter((m) => (m as { server: { id: string } }).server.id === s.id)).toEqual([]);
      w.cancel();
      wb.cancel();
      await w.done;
      await wb.done;
      expect(await codeOf(alice.client.stream('WatchServers', { allProjects: true, projectId: bob.project.id }, () => undefined, 'garbage').done)).toBe(16);
    });
  });
});
