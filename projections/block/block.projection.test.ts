// The block storage read models fed by the real block deciders: commands decided and folded as
// the runtime does, their events encoded by the block codec, appended to an embedded log and
// projected by a ProjectionRunner into SQLite and PostgreSQL. Volume types (public and private),
// volumes through create, attach (reserve, update, export, complete), extend, snapshot, backup,
// detach and delete, with their attach_status, storage host and failure reasons; a multiattach
// volume; a restore that grows its volume, a retype, an admin's status reset; snapshots and
// backups; quotas; the storage hosts with what their volumes allocate. Rebuilt from offset 0 into
// a fresh store, the rows are the same.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockAggregate } from '../../domains/block/block.deciders.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { blockCodecFor, blockEventTypes } from '../../infra/codecs/block.codec.js';
import { EmbeddedLog } from '../../infra/log/embedded/embedded-log.js';
import { ProjectionRunner } from '../../infra/runtime/projection-runner.js';
import { domainTopics } from '../../infra/runtime/topology.js';
import type { Store } from '../../infra/store/store.js';
import { DecidedLog, discardStore, dumpTables, pgReachable, testStores } from '../../test/support/projection-harness.js';
import { BLOCK_PROJECTED_EVENTS, BLOCK_SCHEMA, BLOCK_TABLES, blockProjection, blockStatements } from './block.projection.js';
import { BlockQueries, type VolumeRecord } from './block.queries.js';

const PARTITIONS = 4;
const EVENTS = domainTopics(BLOCK_DOMAIN).events;
const stores = testStores('block');
const dump = (store: Store) => dumpTables(store, BLOCK_TABLES);

const volumeType = (id: string, name: string, extra: Record<string, unknown> = {}) => ({
  id, name, description: '', isPublic: true, extraSpecs: {} as Record<string, string>, backend: '', ...extra,
});
const volume = (id: string, projectId: string, sizeGb: number, extra: Record<string, unknown> = {}) => ({
  id, projectId, userId: 'u1', name: id, description: '', sizeGb, volumeTypeId: 't1', backend: 'lvm', availabilityZone: 'nova', bootable: false,
  multiattach: false, metadata: {}, format: 'raw', source: { kind: '', id: '' }, createdAtMs: 0, ...extra,
});
const attachment = (id: string, serverId: string, hostId: string) => ({
  id, serverId, hostId, mode: 'rw', deleteOnTermination: false, status: 'reserved', connection: { host: '', port: 0, exportName: '' }, device: '',
});

describe('block projection', () => {
  it('handles only event types the block deciders emit (a misspelt one would never match)', () => {
    for (const type of BLOCK_PROJECTED_EVENTS) expect(blockEventTypes).toContain(type);
  });
});

for (const kind of ['sqlite', 'postgres'] as const) {
  (kind === 'postgres' && !pgReachable ? describe.skip : describe)(`block read models on ${kind}`, () => {
    let log: EmbeddedLog;
    let store: Store;
    let runner: ProjectionRunner;
    let cloud: DecidedLog;
    let q: BlockQueries;
    const opened: Store[] = [];
    const open = () => {
      const s = stores[kind]();
      opened.push(s);
      return s;
    };
    // Volumes as the API saw them on their way (v1: reserved, attaching with an export, attached, extending, detaching).
    const seen: Record<string, VolumeRecord | undefined> = {};
    const look = async (label: string, id = 'v1') => {
      await cloud.flush();
      seen[label] = await q.getVolume(id);
    };

    beforeAll(async () => {
      log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-block-log-')), 'log.db') });
      await log.ensureTopics([{ name: EVENTS, partitions: PARTITIONS }]);
      store = open();
      runner = new ProjectionRunner(log, store, blockProjection);
      await runner.start();
      cloud = new DecidedLog({ log, runner: () => runner, eventsTopic: EVENTS, partitions: PARTITIONS, aggregate: (t) => ({ decider: blockAggregate(t).decider, codec: blockCodecFor(t) }) });
      q = new BlockQueries(store);

      // Storage hosts: h1 reports its capacity, h3 goes away.
      cloud.send('block_host', 'h1', { type: 'RegisterBlockHost', hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, backupStore: true });
      cloud.send('block_host', 'h2', { type: 'RegisterBlockHost', hostId: 'h2', backend: 'lvm', availabilityZone: 'az2', totalGb: 50, backupStore: false });
      cloud.send('block_host', 'h3', { type: 'RegisterBlockHost', hostId: 'h3', backend: 'ceph', availabilityZone: 'nova', totalGb: 10, backupStore: false });
      cloud.send('block_host', 'h1', { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 90 });
      cloud.send('block_host', 'h3', { type: 'RemoveBlockHost' });

      // Volume types: a public one, a private one, a multiattach one, one deleted.
      cloud.send('volume_type', 't1', { type: 'CreateVolumeType', volumeType: volumeType('t1', 'fast', { extraSpecs: { volume_backend_name: 'lvm' }, backend: 'lvm' }) });
      cloud.send('volume_type', 't1', { type: 'UpdateVolumeType', volumeType: { description: 'SSD' }, updateMask: ['description'] });
      cloud.send('volume_type', 't2', { type: 'CreateVolumeType', volumeType: volumeType('t2', 'secret', { isPublic: false }) });
      cloud.send('volume_type', 't3', { type: 'CreateVolumeType', volumeType: volumeType('t3', 'shared', { extraSpecs: { multiattach: '<is> True' } }) });
      cloud.send('volume_type', 't4', { type: 'CreateVolumeType', volumeType: volumeType('t4', 'gone') });
      cloud.send('volume_type', 't4', { type: 'DeleteVolumeType' });

      // Quotas of p1: one limit set, three consumers, one released, one grown by an extend.
      cloud.send('block_quota', 'p1', { type: 'SetBlockQuotaLimits', limits: { volumes: 5 } });
      cloud.send('block_quota', 'p1', { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 10 } });
      cloud.send('block_quota', 'p1', { type: 'ReserveBlockQuota', consumerId: 'v2', usage: { volumes: 1, gigabytes: 5 } });
      cloud.send('block_quota', 'p1', { type: 'ReserveBlockQuota', consumerId: 'sn1', usage: { snapshots: 1, gigabytes: 10 } });
      cloud.send('block_quota', 'p1', { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { gigabytes: 20 } });
      cloud.send('block_quota', 'p1', { type: 'ReleaseBlockQuota', consumerId: 'v2' });

      // v1 on h1: created, renamed, attached to s1 step by step, extended while in-use.
      cloud.send('volume', 'v1', { type: 'CreateVolume', volume: volume('v1', 'p1', 10), hostId: 'h1' });
      cloud.send('volume', 'v1', { type: 'ReportVolumeCreated', hostId: 'h1' });
      cloud.send('volume', 'v1', { type: 'UpdateVolume', volume: { name: 'data', metadata: { role: 'db' }, bootable: true }, updateMask: ['name', 'metadata', 'bootable'] });
      cloud.send('volume', 'v1', { type: 'ReserveAttachment', attachment: attachment('a1', 's1', 'c1') });
      await look('reserved');
      cloud.send('volume', 'v1', { type: 'UpdateAttachment', attachmentId: 'a1' });
      cloud.send('volume', 'v1', { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: { host: '10.0.0.5', port: 10809, exportName: 'v1' } });
      await look('attaching');
      cloud.send('volume', 'v1', { type: 'CompleteAttachment', attachmentId: 'a1', device: '/dev/vdb' });
      await look('attached');
      cloud.send('volume', 'v1', { type: 'ExtendVolume', newSizeGb: 20 });
      await look('extending');
      cloud.send('volume', 'v1', { type: 'ReportVolumeExtended', hostId: 'h1', sizeGb: 20 });
      // A snapshot of v1 (sn1), one failed (sn2), one deleted (sn3).
      for (const sn of ['sn1', 'sn2', 'sn3']) {
        cloud.send('volume', 'v1', { type: 'AddVolumeSnapshot', snapshotId: sn });
        cloud.send('snapshot', sn, {
          type: 'CreateSnapshot', hostId: 'h1',
          snapshot: { id: sn, projectId: 'p1', volumeId: 'v1', name: sn, description: '', sizeGb: 20, metadata: {}, createdAtMs: 0 },
        });
      }
      cloud.send('snapshot', 'sn1', { type: 'ReportSnapshotCreated', hostId: 'h1' });
      cloud.send('snapshot', 'sn1', { type: 'UpdateSnapshot', snapshot: { name: 'nightly', metadata: { k: 'v' } }, updateMask: ['name', 'metadata'] });
      cloud.send('snapshot', 'sn2', { type: 'ReportSnapshotFailed', hostId: 'h1', reason: 'lvcreate failed' });
      cloud.send('snapshot', 'sn3', { type: 'ReportSnapshotCreated', hostId: 'h1' });
      cloud.send('snapshot', 'sn3', { type: 'DeleteSnapshot', force: false });
      cloud.send('snapshot', 'sn3', { type: 'ReportSnapshotDeleted', hostId: 'h1' });
      cloud.send('volume', 'v1', { type: 'RemoveVolumeSnapshot', snapshotId: 'sn3' });
      // A backup of the in-use v1 (forced), stored with its checksum; another that failed.
      const backup = (id: string) => ({ id, projectId: 'p1', volumeId: 'v1', snapshotId: '', name: id, description: '', sizeGb: 20, createdAtMs: 0 });
      cloud.send('volume', 'v1', { type: 'BeginVolumeBackup', backupId: 'bk1', force: true });
      cloud.send('backup', 'bk1', { type: 'CreateBackup', backup: backup('bk1'), hostId: 'h1' });
      cloud.send('backup', 'bk1', { type: 'ReportBackupCreated', hostId: 'h1', checksum: 'ab'.repeat(32), sizeBytes: 21474836480 });
      cloud.send('volume', 'v1', { type: 'EndVolumeBackup', backupId: 'bk1' });
      cloud.send('backup', 'bk2', { type: 'CreateBackup', backup: backup('bk2'), hostId: 'h1' });
      cloud.send('backup', 'bk2', { type: 'ReportBackupFailed', hostId: 'h1', reason: 'store unreachable' });
      // Detached again.
      cloud.send('volume', 'v1', { type: 'BeginDetaching', attachmentId: 'a1' });
      await look('detaching');
      cloud.send('volume', 'v1', { type: 'ReportAttachmentDetached', attachmentId: 'a1' });

      // v2 on h2: created, attached then deleted (its attachment row goes with it).
      cloud.send('volume', 'v2', { type: 'CreateVolume', volume: volume('v2', 'p1', 5), hostId: 'h2' });
      cloud.send('volume', 'v2', { type: 'ReportVolumeCreated', hostId: 'h2' });
      cloud.send('volume', 'v2', { type: 'ReserveAttachment', attachment: attachment('a9', 's9', 'c1') });
      cloud.send('volume', 'v2', { type: 'DeleteAttachment', attachmentId: 'a9' });
      cloud.send('volume', 'v2', { type: 'DeleteVolume', cascade: false, force: false });
      cloud.send('volume', 'v2', { type: 'ReportVolumeDeleted', hostId: 'h2' });
      // v3 of p2 on h2: its creation failed.
      cloud.send('volume', 'v3', { type: 'CreateVolume', volume: volume('v3', 'p2', 1, { volumeTypeId: 't2', source: { kind: 'snapshot', id: 'sn1' } }), hostId: 'h2' });
      cloud.send('volume', 'v3', { type: 'ReportVolumeFailed', hostId: 'h2', reason: 'out of space' });
      await look('v3 failed', 'v3');
      // ... repaired by an admin, then its extend failed: the reason is the last change's.
      cloud.send('volume', 'v3', { type: 'ResetVolumeStatus', status: 'available', reason: 'repaired by hand' });
      await look('v3 reset', 'v3');
      cloud.send('volume', 'v3', { type: 'ExtendVolume', newSizeGb: 4 });
      cloud.send('volume', 'v3', { type: 'ReportVolumeFailed', hostId: 'h2', reason: 'lvextend failed' });
      // v5 on h1: bk1 restored into it (it grows to the backup's size), then retyped.
      cloud.send('volume', 'v5', { type: 'CreateVolume', volume: volume('v5', 'p1', 1), hostId: 'h1' });
      cloud.send('volume', 'v5', { type: 'ReportVolumeCreated', hostId: 'h1' });
      cloud.send('backup', 'bk1', { type: 'RestoreBackup', volumeId: 'v5' });
      cloud.send('volume', 'v5', { type: 'BeginVolumeRestore', backupId: 'bk1' });
      await look('v5 restoring', 'v5');
      cloud.send('backup', 'bk1', { type: 'ReportBackupRestored', hostId: 'h1', volumeId: 'v5' });
      cloud.send('volume', 'v5', { type: 'EndVolumeRestore', backupId: 'bk1', sizeGb: 20 });
      cloud.send('volume', 'v5', { type: 'RetypeVolume', volumeTypeId: 't3', backend: '', multiattach: true });
      // v4 on h2, multiattach: attached to s2, and a second attachment reserved for s3.
      cloud.send('volume', 'v4', { type: 'CreateVolume', volume: volume('v4', 'p1', 2, { volumeTypeId: 't3', multiattach: true }), hostId: 'h2' });
      cloud.send('volume', 'v4', { type: 'ReportVolumeCreated', hostId: 'h2' });
      cloud.send('volume', 'v4', { type: 'ReserveAttachment', attachment: attachment('a2', 's2', 'c2') });
      cloud.send('volume', 'v4', { type: 'UpdateAttachment', attachmentId: 'a2' });
      cloud.send('volume', 'v4', { type: 'ReportAttachmentExported', attachmentId: 'a2', hostId: 'h2', connection: { host: '10.0.0.6', port: 10809, exportName: 'v4' } });
      cloud.send('volume', 'v4', { type: 'CompleteAttachment', attachmentId: 'a2', device: '/dev/vdc' });
      cloud.send('volume', 'v4', { type: 'ReserveAttachment', attachment: attachment('a3', 's3', 'c3') });
      await cloud.flush();
    });
    afterAll(async () => {
      await runner?.stop();
      for (const s of opened) await discardStore(s);
      await log?.close();
    });

    it('shows volume types by id or name, the public ones to all, and how many volumes use one', async () => {
      expect(await q.getVolumeType('t1')).toEqual({ id: 't1', name: 'fast', description: 'SSD', isPublic: true, extraSpecs: { volume_backend_name: 'lvm' }, backend: 'lvm' });
      expect((await q.getVolumeType('secret'))?.id).toBe('t2');
      expect(await q.getVolumeType('t4')).toBeUndefined();
      expect(await q.getVolumeType('gone')).toBeUndefined();
      expect((await q.listVolumeTypes()).map((t) => t.id)).toEqual(['t1', 't3']);
      expect((await q.listVolumeTypes({ includePrivate: true })).map((t) => t.id)).toEqual(['t1', 't2', 't3']);
      expect((await q.listVolumeTypes({ includePrivate: true, after: 't1', limit: 1 })).map((t) => t.id)).toEqual(['t2']);
      expect(await q.volumesOfType('t1')).toBe(1);
      expect(await q.volumesOfType('t3')).toBe(2);
      expect(await q.volumesOfType('t4')).toBe(0);
    });

    it('follows an attachment through reserve, update, export and complete, and back through detach', async () => {
      expect(seen.reserved).toMatchObject({ status: 'reserved', attachStatus: 'reserved' });
      expect(seen.reserved?.attachments).toEqual([
        { id: 'a1', volumeId: 'v1', serverId: 's1', hostId: 'c1', status: 'reserved', device: '', mode: 'rw', deleteOnTermination: false, connection: { host: '', port: 0, exportName: '' } },
      ]);
      expect(seen.attaching).toMatchObject({ status: 'attaching', attachStatus: 'attaching' });
      expect(seen.attaching?.attachments[0]).toMatchObject({ status: 'attaching', device: '', connection: { host: '10.0.0.5', port: 10809, exportName: 'v1' } });
      expect(seen.attached).toMatchObject({ status: 'in-use', attachStatus: 'attached', sizeGb: 10 });
      expect(seen.attached?.attachments[0]).toMatchObject({ status: 'attached', device: '/dev/vdb' });
      expect(seen.extending).toMatchObject({ status: 'extending', attachStatus: 'attached', sizeGb: 10 });
      expect(seen.detaching).toMatchObject({ status: 'detaching', attachStatus: 'detaching', sizeGb: 20 });
      expect(seen.detaching?.attachments[0]).toMatchObject({ status: 'detaching', device: '/dev/vdb' });
    });

    it('shows a volume with its fields, status, host, type name and no attachment once detached', async () => {
      expect(await q.getVolume('v1')).toEqual({
        id: 'v1', projectId: 'p1', userId: 'u1', name: 'data', description: '', sizeGb: 20, volumeTypeId: 't1', volumeTypeName: 'fast', backend: 'lvm',
        availabilityZone: 'nova', bootable: true, multiattach: false, metadata: { role: 'db' }, format: 'raw', source: { kind: '', id: '' },
        createdAtMs: seen.reserved?.createdAtMs, status: 'available', attachStatus: 'detached', hostId: 'h1', statusReason: '', attachments: [],
      });
      expect(seen.reserved?.createdAtMs).toBeGreaterThan(Date.UTC(2026, 0, 1));
      expect(await q.getVolume('v2')).toBeUndefined();
      expect(seen['v3 failed']).toMatchObject({ status: 'error', statusReason: 'out of space', volumeTypeName: 'secret', source: { kind: 'snapshot', id: 'sn1' } });
      expect(seen['v3 reset']).toMatchObject({ status: 'available', statusReason: 'repaired by hand' });
      expect(await q.getVolume('v3')).toMatchObject({ status: 'error_extending', statusReason: 'lvextend failed', sizeGb: 1 });
    });

    it('shows a restore growing its volume, and a retype changing its type and multiattach', async () => {
      expect(seen['v5 restoring']).toMatchObject({ status: 'restoring-backup', sizeGb: 1 });
      expect(await q.getVolume('v5')).toMatchObject({ status: 'available', sizeGb: 20, volumeTypeId: 't3', volumeTypeName: 'shared', multiattach: true, backend: 'lvm' });
      expect(await q.getBackup('bk1')).toMatchObject({ status: 'available', restoreVolumeId: 'v5' });
    });

    it('derives attach_status from every attachment of a multiattach volume', async () => {
      const v4 = await q.getVolume('v4');
      expect(v4?.attachStatus).toBe('attached');
      expect(v4?.attachments.map((a) => [a.id, a.serverId, a.status])).toEqual([['a2', 's2', 'attached'], ['a3', 's3', 'reserved']]);
      expect((await q.attachmentsOfServer('s3')).map((a) => [a.id, a.volumeId, a.status])).toEqual([['a3', 'v4', 'reserved']]);
      expect(await q.attachmentsOfServer('s1')).toEqual([]);
      expect(await q.attachmentsOfServer('s9')).toEqual([]);
    });

    it('lists volumes by project, status and name, paged by id', async () => {
      expect((await q.listVolumes()).map((v) => v.id)).toEqual(['v1', 'v3', 'v4', 'v5']);
      expect((await q.listVolumes({ projectId: 'p1' })).map((v) => v.id)).toEqual(['v1', 'v4', 'v5']);
      expect((await q.listVolumes({ status: 'error_extending' })).map((v) => v.id)).toEqual(['v3']);
      expect((await q.listVolumes({ projectId: 'p1', status: 'available' })).map((v) => v.id)).toEqual(['v1', 'v5']);
      expect((await q.listVolumes({ name: 'data' })).map((v) => v.id)).toEqual(['v1']);
      expect((await q.listVolumes({ after: 'v1', limit: 1 })).map((v) => v.id)).toEqual(['v3']);
      expect((await q.listVolumes({ projectId: 'p1' }))[1].attachments.map((a) => a.id)).toEqual(['a2', 'a3']);
    });

    it('shows snapshots with their status and reason, and the ones of a volume', async () => {
      expect(await q.getSnapshot('sn1')).toEqual({
        id: 'sn1', projectId: 'p1', volumeId: 'v1', name: 'nightly', description: '', sizeGb: 20, metadata: { k: 'v' }, status: 'available', statusReason: '',
        hostId: 'h1', createdAtMs: expect.any(Number),
      });
      expect(await q.getSnapshot('sn2')).toMatchObject({ status: 'error', statusReason: 'lvcreate failed' });
      expect(await q.getSnapshot('sn3')).toBeUndefined();
      expect(await q.snapshotsOfVolume('v1')).toEqual(['sn1', 'sn2']);
      expect((await q.listSnapshots({ projectId: 'p1', volumeId: 'v1', after: 'sn1' })).map((s) => s.id)).toEqual(['sn2']);
      expect(await q.listSnapshots({ projectId: 'p2' })).toEqual([]);
    });

    it('shows backups with their checksum, size in bytes and failure reason', async () => {
      expect(await q.getBackup('bk1')).toEqual({
        id: 'bk1', projectId: 'p1', volumeId: 'v1', snapshotId: '', name: 'bk1', description: '', sizeGb: 20, status: 'available', statusReason: '',
        checksum: 'ab'.repeat(32), sizeBytes: 21474836480, hostId: 'h1', restoreVolumeId: 'v5', createdAtMs: expect.any(Number),
      });
      expect(await q.getBackup('bk2')).toMatchObject({ status: 'error', statusReason: 'store unreachable', checksum: '', sizeBytes: 0 });
      expect((await q.listBackups({ volumeId: 'v1' })).map((k) => k.id)).toEqual(['bk1', 'bk2']);
      expect((await q.listBackups({ projectId: 'p1', limit: 1 })).map((k) => k.id)).toEqual(['bk1']);
    });

    it("shows a project's every quota limit (Cinder's defaults unless set) and what it holds", async () => {
      expect(await q.getBlockQuota('p1')).toEqual({
        projectId: 'p1',
        limits: { volumes: 5, gigabytes: 1000, snapshots: 10, backups: 10, backup_gigabytes: 1000 },
        inUse: { volumes: 1, gigabytes: 30, snapshots: 1, backups: 0, backup_gigabytes: 0 },
      });
      expect((await q.getBlockQuota('p9')).inUse).toEqual({ volumes: 0, gigabytes: 0, snapshots: 0, backups: 0, backup_gigabytes: 0 });
    });

    it('shows the storage hosts with their last capacity report and what their volumes allocate', async () => {
      expect(await q.storageHosts()).toEqual([
        { hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, freeGb: 90, allocatedGb: 40, volumes: 2, backupStore: true, enabled: true, reportedAtMs: expect.any(Number) },
        { hostId: 'h2', backend: 'lvm', availabilityZone: 'az2', totalGb: 50, freeGb: 50, allocatedGb: 3, volumes: 2, backupStore: false, enabled: true, reportedAtMs: expect.any(Number) },
      ]);
      // The time of the last registration or report: the heartbeat the API judges a host up by.
      const [h1, h2] = await q.storageHosts();
      expect(h1.reportedAtMs).toBeGreaterThan(0);
      expect(h2.reportedAtMs).toBeGreaterThan(0);
    });

    it('rebuilt from offset 0 into a fresh store gives the same rows', async () => {
      const live = await dump(store);
      expect(live.block_volumes.length).toBe(4);
      expect(live.block_volume_attachments.length).toBe(2);
      const fresh = open();
      const reached = await ProjectionRunner.rebuild(log, fresh, blockProjection);
      expect([...reached.values()].reduce((a, b) => a + b, 0)).toBe(cloud.all.length);
      expect(await dump(fresh)).toEqual(live);
      expect(await new BlockQueries(fresh).listVolumes()).toEqual(await q.listVolumes());
      expect(await new BlockQueries(fresh).storageHosts()).toEqual(await q.storageHosts());
    });

    it('gives the same rows whatever the order between aggregates (each row is one aggregate\'s)', async () => {
      const live = await dump(store);
      // Aggregate after aggregate, the last created first: each one's own events stay in order.
      const keys = [...new Set(cloud.all.map((e) => `${e.aggregateType}/${e.aggregateId}`))].reverse();
      const other = open();
      await other.migrate(BLOCK_SCHEMA);
      for (const key of keys) {
        for (const e of cloud.all.filter((x) => `${x.aggregateType}/${x.aggregateId}` === key)) {
          if ((BLOCK_PROJECTED_EVENTS as readonly string[]).includes(e.type)) await other.apply(blockStatements(e), []);
        }
      }
      expect(await dump(other)).toEqual(live);
    });
  });
}
