// Acceptance a of usage metering: a scripted day of activity in a whole cloud (the gRPC API, the
// compute conductor with fake-driver hosts, a block agent on real files, object servers), driven
// through the API on ONE controllable clock that every part stamping commands reads (the APIs,
// the conductors, the compute and block agents). The clock stands still while an operation runs
// and moves between operations, so every event of an operation carries the time it was asked at.
// Servers are booted with two flavors, one resized (confirmed), one stopped and started, both
// deleted; volumes created, extended, one deleted, a snapshot taken and deleted; objects stored,
// replaced and deleted; an image uploaded. The usage that GetUsage and `strata usage show` give
// equals the seconds computed by hand below, exactly; the usage read model rebuilt from the log
// gives the same figures. Acceptance e too: after the day every read model equals its replay from
// offset 0 (ReplayReadModels), and time travel gives vm2 as it was before its resize.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostConfig } from '../../agents/compute/compute.agent.js';
import { FakeDriver } from '../../agents/compute/fake.driver.js';
import { roleId } from '../../api/identity/bootstrap.js';
import type { StrataClient } from '../../cli/client.js';
import { HOUR_MS } from '../../domains/metering/usage.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { SqliteStore } from '../../infra/store/sqlite-store.js';
import { usageProjection } from '../../projections/metering/usage.projection.js';
import { UsageQueries } from '../../projections/metering/usage.queries.js';
import { cliRunner } from '../support/cli-runner.js';
import { patternBody } from '../support/object-rig.js';
import { until } from '../support/wait.js';
import { codeOf, errorOf, startTestCloud, type TestCloud } from '../identity/cloud.js';

const PERMISSION_DENIED = 7;
/** The scripted day: 2026-03-02, UTC. */
const DAY = Date.UTC(2026, 2, 2);
const at = (h: number, m = 0, s = 0) => DAY + h * HOUR_MS + m * 60_000 + s * 1000;
const ISO_DAY = '2026-03-02T00:00:00Z';
const ISO_NEXT = '2026-03-03T00:00:00Z';

describe('usage metering over a scripted day (acceptance a)', () => {
  let t: TestCloud;
  let clock = at(0) - HOUR_MS; // setup happens the evening before
  let admin: StrataClient;
  let alice: StrataClient;
  let bob: StrataClient;
  let aliceToken = '';
  let bobToken = '';
  let adminToken = '';
  let project = '';
  let bobProject = '';
  let gold = '';
  let silver = '';
  const flavors: Record<string, string> = {};
  const blockDir = mkdtempSync(join(tmpdir(), 'strata-metering-'));
  const cli = cliRunner('metering', () => t);
  const storageHost = `storage-${randomUUID().slice(0, 6)}`;
  let vm2Id = '';

  /** Moves the one clock; waits until the storage host has reported at the new time (the block API schedules only on hosts heard from lately). */
  async function clockTo(ms: number) {
    expect(ms).toBeGreaterThanOrEqual(clock);
    clock = ms;
    await until(async () => (await admin.call('ListStorageHosts', {})).hosts.some((h: { hostId: string; up: boolean }) => h.hostId === storageHost && h.up), 'the storage host up at the new time', 30_000);
  }

  async function act(rpc: string, id: string, extra: Record<string, unknown> = {}) {
    const res = await alice.call(rpc, { id, ...extra });
    const op = res.operation.done ? res.operation : (await alice.call('WaitOperation', { name: res.operation.name, serverId: id, timeout: { seconds: 60 } })).operation;
    expect(op.result, `${rpc}: ${op.error}`).toBe('success');
    return (await alice.call('GetServer', { id })).server;
  }

  async function boot(name: string, flavor: string): Promise<string> {
    const s = (await alice.call('CreateServer', { name, flavorId: flavors[flavor], imageId: 'cirros' })).servers[0];
    await until(async () => (await alice.call('GetServer', { id: s.id })).server.status === 'ACTIVE', `${name} ACTIVE`, 60_000);
    return s.id;
  }

  async function volumeStatus(id: string, status: string) {
    await until(async () => (await alice.call('GetVolume', { id })).volume.status === status, `volume ${id} ${status}`, 60_000);
  }

  async function volumeGone(id: string) {
    await until(async () => (await codeOf(alice.call('GetVolume', { id }))) === 5, `volume ${id} deleted`, 60_000);
  }

  const put = (container: string, name: string, size: number) =>
    alice.upload('PutObject', { container, name, contentType: 'application/octet-stream', contentLength: size }, patternBody(size, size));

  /** Waits until the usage read model has every event of the log. */
  const settled = () => until(async () => (await t.cloud.events.usage.runner.lag()) === 0, 'the usage read model caught up', 30_000);

  const totalsOf = (records: { projectId: string; metric: string; key: string; quantitySeconds: number }[], p = project) =>
    Object.fromEntries(records.filter((r) => r.projectId === p).map((r) => [`${r.metric}/${r.key}`, r.quantitySeconds]));

  beforeAll(async () => {
    const hosts: HostConfig[] = ['compute-1', 'compute-2'].map((hostId) => ({
      hostId,
      availabilityZone: 'nova',
      inventory: { vcpus: { total: 16, allocationRatio: 4 }, ramMb: { total: 65536, allocationRatio: 1 }, diskGb: { total: 500 } },
      driver: new FakeDriver(hostId),
    }));
    t = await startTestCloud(
      // Tokens outlive the day; the clock is the test's.
      { now: () => clock, tokenTtlMs: 3 * 24 * HOUR_MS },
      {
        // Hosts are not taken for down when the clock jumps hours ahead between two heartbeats.
        conductor: { tickMs: 200, serviceDownMs: 7 * 24 * HOUR_MS },
        computeHosts: hosts,
        blockHosts: [{ hostId: storageHost, backend: 'local', availabilityZone: 'nova', stateDir: join(blockDir, 'block'), totalGb: 500, resyncMs: 200, heartbeatMs: 200 }],
        objectDevices: [1, 2, 3].map((deviceId) => ({ deviceId, root: join(blockDir, `object-${deviceId}`), port: 0, zone: deviceId })),
        objectRing: { partPower: 6, replicas: 3 },
      },
    );
    adminToken = await t.adminToken();
    admin = t.client(adminToken);
    const member = async (name: string) => {
      const p = (await admin.call('CreateProject', { project: { name: `${name}-${randomUUID().slice(0, 6)}`, domainId: 'default' } })).project;
      const u = (await admin.call('CreateUser', { user: { name: `${name}-${randomUUID().slice(0, 6)}`, domainId: 'default' }, password: 'pw-metering' })).user;
      await admin.call('CreateRoleAssignment', { assignment: { userId: u.id, projectId: p.id, roleId: roleId('member') } });
      const token = await t.login(u.name, 'pw-metering', { projectId: p.id });
      return { client: t.client(token), token, projectId: p.id as string };
    };
    ({ client: alice, token: aliceToken, projectId: project } = await member('alice'));
    ({ client: bob, token: bobToken, projectId: bobProject } = await member('bob'));
    for (const [name, vcpus, ramMb] of [['m1.small', 1, 2048], ['m1.medium', 2, 4096], ['m1.large', 4, 8192]] as const) {
      flavors[name] = (await admin.call('CreateFlavor', { flavor: { name, vcpus, ramMb, diskGb: 1 } })).flavor.id;
    }
    gold = (await admin.call('CreateVolumeType', { name: `gold-${randomUUID().slice(0, 6)}` })).volumeType.id;
    silver = (await admin.call('CreateVolumeType', { name: `silver-${randomUUID().slice(0, 6)}` })).volumeType.id;
    await alice.call('CreateContainer', { container: { name: 'c1' } });
    await clockTo(clock);

    // The day.
    await clockTo(at(1));
    const vm1 = await boot('vm1', 'm1.small'); // small billed from 01:00:00
    const vm2 = await boot('vm2', 'm1.medium'); // medium billed from 01:00:00
    vm2Id = vm2;
    await clockTo(at(2, 30));
    const vol1 = (await alice.call('CreateVolume', { sizeGb: 10, volumeType: gold, name: 'vol1' })).volume.id; // 10 GiB gold from 02:30
    await volumeStatus(vol1, 'available');
    await clockTo(at(3));
    expect((await act('ResizeServer', vm2, { flavorId: flavors['m1.large'] })).status).toBe('VERIFY_RESIZE'); // large from 03:00
    await clockTo(at(3, 20));
    expect((await act('ConfirmResizeServer', vm2)).status).toBe('ACTIVE'); // no change
    await clockTo(at(4, 15, 27));
    expect((await act('StopServer', vm1)).status).toBe('SHUTOFF'); // small stops at 04:15:27
    await clockTo(at(5, 45));
    expect((await act('StartServer', vm1)).status).toBe('ACTIVE'); // small again from 05:45:00
    await clockTo(at(6));
    await alice.call('ExtendVolume', { id: vol1, newSizeGb: 25 }); // 25 GiB from 06:00
    await volumeStatus(vol1, 'available');
    await clockTo(at(6, 30));
    const vol2 = (await alice.call('CreateVolume', { sizeGb: 5, volumeType: silver, name: 'vol2' })).volume.id; // 5 GiB silver from 06:30
    await volumeStatus(vol2, 'available');
    await clockTo(at(6, 45));
    const snap = (await alice.call('CreateSnapshot', { volumeId: vol1, name: 'snap1' })).snapshot.id; // 25 GiB from 06:45
    await until(async () => (await alice.call('GetSnapshot', { id: snap })).snapshot.status === 'available', 'the snapshot available', 60_000);
    await clockTo(at(7, 10));
    await put('c1', 'o1', 3000); // 3000 B from 07:10
    await clockTo(at(7, 30));
    // An image: its data lives in the image service's account (AUTH_glance), metered as the owner's image_bytes, not object_bytes.
    const image = (await alice.call('CreateImage', { image: { name: 'img1', diskFormat: 'raw', containerFormat: 'bare' } })).image.id;
    const uploaded = (await alice.upload('UploadImage', { imageId: image, contentLength: 4096 }, patternBody(4096, 7))).image;
    expect(uploaded).toMatchObject({ status: 'active' }); // 4096 B from 07:30
    await clockTo(at(8));
    await put('c1', 'o1', 5000); // replaced: 5000 B from 08:00
    await put('c1', 'o2', 1000); // 1000 B from 08:00
    await clockTo(at(9));
    await alice.call('DeleteObject', { container: 'c1', name: 'o2' }); // o2 gone at 09:00
    await clockTo(at(9, 30));
    await alice.call('DeleteSnapshot', { id: snap }); // snapshot gone at 09:30
    await until(async () => (await codeOf(alice.call('GetSnapshot', { id: snap }))) === 5, 'the snapshot gone', 60_000);
    await clockTo(at(10));
    await alice.call('DeleteServer', { id: vm1 }); // small ends at 10:00:00
    await until(async () => (await codeOf(alice.call('GetServer', { id: vm1 }))) === 5, 'vm1 deleted', 60_000);
    await clockTo(at(11));
    await alice.call('DeleteVolume', { id: vol2 }); // silver ends at 11:00
    await volumeGone(vol2);
    await clockTo(at(12));
    await alice.call('DeleteServer', { id: vm2 }); // large ends at 12:00:00
    await until(async () => (await codeOf(alice.call('GetServer', { id: vm2 }))) === 5, 'vm2 deleted', 60_000);
    await clockTo(at(13)); // the question is asked at 13:00:00: vol1 and o1 still count
    await settled();
  }, 600_000);

  afterAll(async () => {
    await t?.close();
    rmSync(blockDir, { recursive: true, force: true });
  }, 60_000);

  // Computed by hand (seconds; quantity x seconds for vCPU, MiB, GiB and bytes):
  //   vm1 on m1.small (1 vCPU, 2048 MiB): 01:00:00-04:15:27 = 3 h 15 min 27 s = 11727 s, and
  //     05:45:00-10:00:00 = 4 h 15 min = 15300 s: 27027 s
  //   vm2 on m1.medium (2 vCPU, 4096 MiB): 01:00:00-03:00:00 = 7200 s
  //   vm2 on m1.large (4 vCPU, 8192 MiB): 03:00:00-12:00:00 = 9 h = 32400 s (resized runs on the
  //     new flavor; the confirm changes nothing)
  //   vCPU: 27027 x 1 + 7200 x 2 + 32400 x 4 = 27027 + 14400 + 129600 = 171027
  //   RAM: 27027 x 2048 + 7200 x 4096 + 32400 x 8192 = 55351296 + 29491200 + 265420800 = 350263296 MiB-s
  //   vol1 gold: 10 GiB x (02:30-06:00 = 12600 s) + 25 GiB x (06:00-13:00 = 25200 s) = 126000 + 630000 = 756000
  //   vol2 silver: 5 GiB x (06:30-11:00 = 16200 s) = 81000
  //   objects: o1 3000 B x (07:10-08:00 = 3000 s) + o1 5000 B x (08:00-13:00 = 18000 s)
  //     + o2 1000 B x (08:00-09:00 = 3600 s) = 9000000 + 90000000 + 3600000 = 102600000
  //   snapshot of vol1: 25 GiB x (06:45-09:30 = 9900 s) = 247500
  //   image: 4096 B x (07:30-13:00 = 19800 s) = 81100800 (its data in AUTH_glance is no tenant's object_bytes)
  const expected = () => ({
    'instance/m1.small': 27027,
    'instance/m1.medium': 7200,
    'instance/m1.large': 32400,
    'vcpu/': 171027,
    'ram_mb/': 350263296,
    [`volume_gb/${gold}`]: 756000,
    [`volume_gb/${silver}`]: 81000,
    'object_bytes/': 102600000,
    'snapshot_gb/': 247500,
    'image_bytes/': 81100800,
  });

  it('GetUsage in total equals the hand-computed seconds, to the second', async () => {
    const res = await alice.call('GetUsage', { startMs: at(0), endMs: at(24), granularity: 'GRANULARITY_TOTAL' });
    expect(totalsOf(res.records)).toEqual(expected());
    expect(Number(res.countedToMs)).toBe(at(13));
    const small = res.records.find((r: { metric: string; key: string }) => r.metric === 'instance' && r.key === 'm1.small');
    expect(small).toMatchObject({ amount: 27027 / 3600, unit: 'instance-hours', startMs: at(0) });
    const ram = res.records.find((r: { metric: string }) => r.metric === 'ram_mb');
    expect(ram).toMatchObject({ amount: 350263296 / 3600 / 1024, unit: 'GiB-hours' });
  });

  it('GetUsage per hour: each hour of the instances as computed by hand', async () => {
    const res = await alice.call('GetUsage', { startMs: at(0), endMs: at(24) });
    const hours = res.records.filter((r: { metric: string }) => r.metric === 'instance').map((r: { startMs: number; key: string; quantitySeconds: number }) => [(Number(r.startMs) - DAY) / HOUR_MS, r.key, r.quantitySeconds]);
    expect(hours).toEqual([
      [1, 'm1.medium', 3600], [1, 'm1.small', 3600],
      [2, 'm1.medium', 3600], [2, 'm1.small', 3600],
      [3, 'm1.large', 3600], [3, 'm1.small', 3600],
      [4, 'm1.large', 3600], [4, 'm1.small', 927], // 04:00:00-04:15:27
      [5, 'm1.large', 3600], [5, 'm1.small', 900], // 05:45:00-06:00:00
      [6, 'm1.large', 3600], [6, 'm1.small', 3600],
      [7, 'm1.large', 3600], [7, 'm1.small', 3600],
      [8, 'm1.large', 3600], [8, 'm1.small', 3600],
      [9, 'm1.large', 3600], [9, 'm1.small', 3600],
      [10, 'm1.large', 3600], // vm1 ended at 10:00:00
      [11, 'm1.large', 3600], // vm2 ended at 12:00:00
    ]);
    // The hours add up to the total.
    const sum: Record<string, number> = {};
    for (const r of res.records) if (r.projectId === project) sum[`${r.metric}/${r.key}`] = (sum[`${r.metric}/${r.key}`] ?? 0) + r.quantitySeconds;
    expect(sum).toEqual(expected());
    // The object storage of hour 8: o1 5000 B and o2 1000 B for the whole hour.
    expect(res.records.find((r: { metric: string; startMs: number }) => r.metric === 'object_bytes' && Number(r.startMs) === at(8)).quantitySeconds).toBe(6000 * 3600);
  });

  it('strata usage show gives the same figures', async () => {
    const total = cli.json(await cli.strata(['--output', 'json', 'usage', 'show', '--start', ISO_DAY, '--end', ISO_NEXT, '--by', 'total'], aliceToken));
    expect(totalsOf(total.records)).toEqual(expected());
    expect(total).toMatchObject({ start: ISO_DAY, end: ISO_NEXT, counted_to: '2026-03-02T13:00:00Z' });
    const table = await cli.strata(['usage', 'show', '--start', ISO_DAY, '--end', ISO_NEXT, '--by', 'total'], aliceToken);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/m1\.small\s+7\.5075\s+instance-hours/); // 27027 s = 7.5075 h
    expect(table.stdout).toMatch(/vcpu\s+47\.5075\s+vCPU-hours/); // 171027 s = 47.5075 h
    // An admin names the project.
    const asAdmin = cli.json(await cli.strata(['--output', 'json', 'usage', 'show', '--project', project, '--start', ISO_DAY, '--end', ISO_NEXT, '--by', 'total'], adminToken));
    expect(totalsOf(asAdmin.records)).toEqual(expected());
  });

  it('tenants see their own project only; admins any or all', async () => {
    const denied = await errorOf(bob.call('GetUsage', { projectId: project, startMs: at(0), endMs: at(24) }));
    expect(denied).toMatchObject({ code: PERMISSION_DENIED, field: 'project_id' });
    expect((await errorOf(bob.call('GetUsage', { allProjects: true, startMs: at(0), endMs: at(24) }))).code).toBe(PERMISSION_DENIED);
    expect((await bob.call('GetUsage', { startMs: at(0), endMs: at(24) })).records).toEqual([]);
    expect(await errorOf(alice.call('GetUsage', { startMs: at(5), endMs: at(4) }))).toMatchObject({ code: 3, field: 'end_ms' });
    const all = await admin.call('GetUsage', { allProjects: true, startMs: at(0), endMs: at(24), granularity: 'GRANULARITY_TOTAL' });
    expect(totalsOf(all.records)).toEqual(expected());
    expect(all.records.some((r: { projectId: string }) => r.projectId === bobProject)).toBe(false);
    const cliDenied = await cli.strata(['usage', 'show', '--project', project], bobToken);
    expect(cliDenied.code).toBe(4);
    expect(cliDenied.stderr).toMatch(/project_id/);
  });

  it('the usage read model rebuilt from the log gives the same figures (a replay)', async () => {
    const fresh = new SqliteStore(join(blockDir, 'replayed.db'));
    try {
      await ProjectionRunner.rebuild(t.log, fresh, usageProjection());
      const rows = await new UsageQueries(fresh).usage({ projectId: project, fromMs: at(0), toMs: at(24), nowMs: at(13), granularity: 'total' });
      expect(Object.fromEntries(rows.map((r) => [`${r.metric}/${r.key}`, r.quantityMs / 1000]))).toEqual(expected());
    } finally {
      await fresh.close();
    }
  });

  it('acceptance e: after the day every read model equals its replay from the log, and time travel gives vm2 before its resize', { timeout: 180_000 }, async () => {
    const report = await admin.call('ReplayReadModels', {}, undefined, { timeoutMs: 170_000 });
    expect(report.differences).toEqual([]);
    expect(report.equal).toBe(true);
    expect(report.readModels.map((r: { readModel: string }) => r.readModel).sort()).toEqual(['audit', 'block', 'compute', 'identity', 'image', 'metering_usage', 'network', 'object']);
    for (const m of report.readModels) for (const table of m.tables) expect(table.liveHash, `${m.readModel} ${table.table}`).toBe(table.replayedHash);
    const timestamp = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
    // Just before the resize (03:00:00): active on m1.medium; during it, resized on m1.large; after the confirm, active on m1.large.
    const before = await alice.call('GetResourceAt', { resourceId: vm2Id, time: timestamp(at(3) - 1) });
    expect(before.state).toBe('active');
    expect(before.stateJson).toContain(flavors['m1.medium']);
    expect(before.stateJson).not.toContain(flavors['m1.large']);
    const during = await alice.call('GetResourceAt', { resourceId: vm2Id, time: timestamp(at(3, 10)) });
    expect(during.state).toBe('resized');
    expect(during.stateJson).toContain(flavors['m1.large']);
    const after = await alice.call('GetResourceAt', { resourceId: vm2Id, time: timestamp(at(3, 30)) });
    expect(after.state).toBe('active');
    expect(after.stateJson).not.toContain(flavors['m1.medium']);
    expect(Number(after.version)).toBeGreaterThan(Number(during.version));
    const cliBefore = await cli.strata(['audit', 'resource', vm2Id, '--at', '2026-03-02T02:59:59Z'], aliceToken);
    expect(cliBefore.code, cliBefore.stderr).toBe(0);
    expect(cliBefore.stdout).toContain(flavors['m1.medium']);
  });
});
