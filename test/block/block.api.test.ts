// VolumeService end to end: the gRPC API, the block deciders on the embedded log, the read models,
// the block conductor, a real block agent on real files (qemu-img, qemu-storage-daemon NBD
// exports) and fake-driver compute hosts whose agents take the attach and detach steps.
//   - volume types (admins), create -> available with the file on the storage host, extend,
//     update, retype, the read model's status and attach status,
//   - attach to a server -> reserved/attaching -> an NBD export -> the compute agent plugs it ->
//     in-use with the device; detach -> available and the export gone,
//   - illegal transitions through the API are FAILED_PRECONDITION naming the status, and change nothing,
//   - acceptance c: snapshot, then change the volume, then a volume from the snapshot holds the old
//     data; backup then restore into a new volume and into the volume itself: checksums equal,
//   - quotas (named as Cinder names them) and their release on delete, the conductor's follow-ups,
//   - a deleted server's volumes are detached, and deleted when delete_on_termination.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { volumeChecksum } from '../../agents/block/checksum.js';
import { findVolumeFile } from '../../agents/block/volume-store.js';
import { codeOf, errorOf } from '../identity/cloud.js';
import { BACKENDS } from '../support/backends.js';
import { startBlockRig, type BlockRig } from '../support/block-rig.js';
import { until } from '../support/wait.js';

const run = promisify(execFile);
const FAILED_PRECONDITION = 9;
const RESOURCE_EXHAUSTED = 8;
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const ALREADY_EXISTS = 6;

describe.each(BACKENDS)('VolumeService with a real block agent and fake compute hosts (%s log)', (backend) => {
  let rig: BlockRig;

  beforeAll(async () => {
    rig = await startBlockRig({ computeHosts: 2, backend });
  }, 120_000);
  afterAll(async () => rig?.close(), 60_000);

  const storageDir = () => rig.storage[0].volumes.stateDir;
  const fileOf = async (volumeId: string) => (await findVolumeFile(storageDir(), volumeId))!;
  /** Writes `pattern` at offset 0 (1 MiB) into the volume's file, as a guest would. */
  const writePattern = async (volumeId: string, pattern: string) => {
    const f = await fileOf(volumeId);
    await run('qemu-io', ['-f', f.format, '-c', `write -P ${pattern} 0 1M`, f.path]);
  };
  const holdsPattern = async (volumeId: string, pattern: string) => {
    const f = await fileOf(volumeId);
    const { stdout } = await run('qemu-io', ['-f', f.format, '-r', '-U', '-c', `read -P ${pattern} 0 1M`, f.path]).catch((e) => ({ stdout: String(e.stdout) }));
    return !/Pattern verification failed/.test(stdout) && /read 1048576/.test(stdout);
  };
  const create = async (req: Record<string, unknown>) => (await rig.member.call('CreateVolume', { sizeGb: 1, ...req })).volume;

  async function bootServer(): Promise<string> {
    const s = (await rig.member.call('CreateServer', { name: 'vm', flavorId: rig.flavorId, imageId: 'cirros' })).servers[0];
    await until(async () => (await rig.member.call('GetServer', { id: s.id })).server.status === 'ACTIVE', 'the server ACTIVE', 60_000);
    return s.id;
  }

  it('volume types are the admins\', and a type picks the backend and multiattach', async () => {
    // Kafka's topics outlive a run: names of this run's own.
    const [goldName, sharedName, nowhereName] = ['gold', 'shared', 'nowhere'].map((n) => `${n}-${randomUUID().slice(0, 6)}`);
    const denied = await errorOf(rig.member.call('CreateVolumeType', { name: goldName }));
    expect(denied.code).toBe(PERMISSION_DENIED);
    const gold = (await rig.admin.call('CreateVolumeType', { name: goldName, extraSpecs: { volume_backend_name: 'local' } })).volumeType;
    expect(gold).toMatchObject({ name: goldName, backend: 'local', isPublic: true });
    const taken = await errorOf(rig.admin.call('CreateVolumeType', { name: goldName }));
    expect(taken.code).toBe(ALREADY_EXISTS);
    const shared = (await rig.admin.call('CreateVolumeType', { name: sharedName, extraSpecs: { multiattach: '<is> True' } })).volumeType;
    const nowhere = (await rig.admin.call('CreateVolumeType', { name: nowhereName, extraSpecs: { volume_backend_name: 'ceph' } })).volumeType;
    expect((await rig.member.call('ListVolumeTypes', { pageSize: 1000 })).volumeTypes.map((t: { name: string }) => t.name)).toEqual(expect.arrayContaining([goldName, sharedName, nowhereName]));
    const v = await create({ volumeType: goldName, name: 'g' });
    expect(v).toMatchObject({ status: 'creating', volumeTypeName: goldName, hostId: '' });
    const m = await create({ volumeType: shared.id });
    expect(m.multiattach).toBe(true);
    // No storage host has backend ceph: the scheduler says so, and nothing is held.
    const before = (await rig.member.call('GetBlockQuota', {})).quota.inUse;
    const none = await errorOf(create({ volumeType: nowhere.id }));
    expect(none.code).toBe(RESOURCE_EXHAUSTED);
    expect(none.details).toMatch(/No valid backend/i);
    expect((await rig.member.call('GetBlockQuota', {})).quota.inUse).toEqual(before);
    const used = await errorOf(rig.admin.call('DeleteVolumeType', { id: gold.id }));
    expect(used.code).toBe(FAILED_PRECONDITION);
    await rig.volumeStatus(v.id, 'available');
    await rig.volumeStatus(m.id, 'available');
  });

  it('creates a volume file on its storage host, extends it, and deletes it, giving the quota back', async () => {
    const v = await create({ name: 'data', sizeGb: 1, metadata: { tier: 'a' } });
    const available = await rig.volumeStatus(v.id, 'available');
    expect(available).toMatchObject({ attachStatus: 'detached', metadata: { tier: 'a' } });
    expect((await rig.admin.call('GetVolume', { id: v.id })).volume.hostId).toBe(rig.storage[0].hostId);
    expect((await rig.storage[0].volumes.info(v.id))!.virtualSizeBytes).toBe(1024 ** 3);
    const q = (await rig.member.call('GetBlockQuota', {})).quota;
    expect(q.limits).toMatchObject({ volumes: 10, gigabytes: 1000 });

    const small = await errorOf(rig.member.call('ExtendVolume', { id: v.id, newSizeGb: 1 }));
    expect(small).toMatchObject({ code: INVALID_ARGUMENT });
    expect(small.details).toMatch(/new_size/);
    expect((await rig.member.call('ExtendVolume', { id: v.id, newSizeGb: 3 })).volume.status).toBe('extending');
    const grown = await rig.volumeStatus(v.id, 'available');
    expect(grown.sizeGb).toBe(3);
    expect((await rig.storage[0].volumes.info(v.id))!.virtualSizeBytes).toBe(3 * 1024 ** 3);

    await rig.member.call('UpdateVolume', { id: v.id, name: 'renamed', updateMask: { paths: ['name'] } });
    expect((await rig.member.call('GetVolume', { id: v.id })).volume.name).toBe('renamed');

    const usedBefore = Number((await rig.member.call('GetBlockQuota', {})).quota.inUse.gigabytes);
    await rig.member.call('DeleteVolume', { id: v.id });
    await until(async () => (await codeOf(rig.member.call('GetVolume', { id: v.id }))) === NOT_FOUND, 'the volume gone', 30_000);
    expect(await findVolumeFile(storageDir(), v.id)).toBeUndefined();
    await until(async () => Number((await rig.member.call('GetBlockQuota', {})).quota.inUse.gigabytes) === usedBefore - 3, 'the gigabytes given back', 30_000);
  }, 180_000);

  it('refuses illegal transitions naming the status, and changes nothing', async () => {
    const v = await create({ name: 'busy' });
    await rig.volumeStatus(v.id, 'available');
    const server = await bootServer();
    await rig.member.call('AttachVolume', { serverId: server, volumeId: v.id });
    const inUse = await rig.volumeStatus(v.id, 'in-use');
    expect(inUse.attachments[0]).toMatchObject({ serverId: server, status: 'attached', device: '/dev/vdb' });
    const del = await errorOf(rig.member.call('DeleteVolume', { id: v.id }));
    expect(del.code).toBe(FAILED_PRECONDITION);
    expect(del.details).toMatch(/in-use/);
    const again = await errorOf(rig.member.call('AttachVolume', { serverId: server, volumeId: v.id, requestId: 'another' }));
    expect(again.code).toBe(FAILED_PRECONDITION);
    expect(again.details).toMatch(/in-use/);
    // A server with volumes does not move (its guest would come up without them).
    const move = await errorOf(rig.admin.call('MigrateServer', { id: server }));
    expect(move.code).toBe(FAILED_PRECONDITION);
    expect(move.details).toMatch(new RegExp(`volumes are attached to it \\(${v.id}\\)`));
    expect((await rig.member.call('GetServer', { id: server })).server.status).toBe('ACTIVE');
    const restore = await errorOf(rig.member.call('ResetVolumeStatus', { id: v.id, status: 'available' }));
    expect(restore.code).toBe(PERMISSION_DENIED);
    const after = (await rig.member.call('GetVolume', { id: v.id })).volume;
    expect(after).toMatchObject({ status: 'in-use', sizeGb: 1, attachStatus: 'attached' });

    // Detach: the compute agent unplugs it, the export stops, the volume is available again.
    await rig.member.call('DetachVolume', { serverId: server, volumeId: v.id });
    const free = await rig.volumeStatus(v.id, 'available');
    expect(free.attachments).toEqual([]);
    await until(async () => (await rig.storage[0].exports.list()).length === 0 || !(await rig.storage[0].exports.list()).includes(inUse.attachments[0].id), 'the export stopped', 30_000);
    expect(await rig.drivers.get((await rig.admin.call('GetServer', { id: server })).server.host)!.listVolumes(server)).toEqual([]);
  }, 180_000);

  it('a snapshot keeps the old data; a backup restores to equal checksums (acceptance c)', async () => {
    const v = await create({ name: 'precious' });
    await rig.volumeStatus(v.id, 'available');
    await writePattern(v.id, '0xab');
    const snap = (await rig.member.call('CreateSnapshot', { volumeId: v.id, name: 's1' })).snapshot;
    await until(async () => (await rig.member.call('GetSnapshot', { id: snap.id })).snapshot.status === 'available', 'the snapshot available', 60_000);
    await writePattern(v.id, '0xcd');
    expect(await holdsPattern(v.id, '0xcd')).toBe(true);
    // A volume with snapshots is not deleted without cascade.
    const held = await errorOf(rig.member.call('DeleteVolume', { id: v.id }));
    expect(held.code).toBe(FAILED_PRECONDITION);
    expect(held.details).toMatch(/snapshot/);

    const fromSnap = await create({ snapshotId: snap.id, sizeGb: 0 });
    expect(fromSnap.snapshotId).toBe(snap.id);
    await rig.volumeStatus(fromSnap.id, 'available');
    expect(await holdsPattern(fromSnap.id, '0xab')).toBe(true);
    expect(await holdsPattern(fromSnap.id, '0xcd')).toBe(false);

    const backup = (await rig.member.call('CreateBackup', { volumeId: v.id, name: 'b1' })).backup;
    expect((await rig.member.call('GetVolume', { id: v.id })).volume.status).toMatch(/backing-up|available/);
    await until(async () => (await rig.member.call('GetBackup', { id: backup.id })).backup.status === 'available', 'the backup available', 60_000);
    const stored = (await rig.member.call('GetBackup', { id: backup.id })).backup;
    const original = await volumeChecksum((await fileOf(v.id)).path);
    expect(stored.checksum).toBe(original.sha256);
    await rig.volumeStatus(v.id, 'available');

    const restored = (await rig.member.call('RestoreBackup', { id: backup.id, name: 'restored' })).volume;
    await rig.volumeStatus(restored.id, 'available');
    expect(await volumeChecksum((await fileOf(restored.id)).path)).toEqual(original);

    // Restore onto the volume itself after changing it again: the backup's data is back.
    await writePattern(v.id, '0xee');
    expect(await holdsPattern(v.id, '0xee')).toBe(true);
    await rig.member.call('RestoreBackup', { id: backup.id, volumeId: v.id });
    await rig.volumeStatus(v.id, 'available');
    await until(async () => (await rig.member.call('GetBackup', { id: backup.id })).backup.status === 'available', 'the backup available again', 30_000);
    expect(await volumeChecksum((await fileOf(v.id)).path)).toEqual(original);

    // Cascade: the volume and its snapshot go, files and quota too.
    await rig.member.call('DeleteVolume', { id: v.id, cascade: true });
    await until(async () => (await codeOf(rig.member.call('GetSnapshot', { id: snap.id }))) === NOT_FOUND, 'the snapshot gone', 30_000);
    await until(async () => (await codeOf(rig.member.call('GetVolume', { id: v.id }))) === NOT_FOUND, 'the volume gone', 30_000);
    expect(existsSync(rig.storage[0].volumes.snapshotPath(snap.id))).toBe(false);
    await rig.member.call('DeleteBackup', { id: backup.id });
    await until(async () => (await codeOf(rig.member.call('GetBackup', { id: backup.id }))) === NOT_FOUND, 'the backup gone', 30_000);
    expect(existsSync(rig.storage[0].backups.backupDir(backup.id))).toBe(false);
  }, 240_000);

  it('a multiattach volume is attached to two servers at once; another volume to one only', async () => {
    const typeName = `multi-${randomUUID().slice(0, 6)}`;
    await rig.admin.call('CreateVolumeType', { name: typeName, extraSpecs: { multiattach: '<is> True' } });
    const shared = await create({ volumeType: typeName, name: 'shared' });
    const single = await create({ name: 'single' });
    expect(shared.multiattach).toBe(true);
    await rig.volumeStatus(shared.id, 'available');
    await rig.volumeStatus(single.id, 'available');
    const [a, b] = [await bootServer(), await bootServer()];
    await rig.member.call('AttachVolume', { serverId: a, volumeId: shared.id });
    await rig.volumeStatus(shared.id, 'in-use');
    await rig.member.call('AttachVolume', { serverId: b, volumeId: shared.id });
    await until(async () => (await rig.member.call('GetVolume', { id: shared.id })).volume.attachments.filter((x: { status: string }) => x.status === 'attached').length === 2, 'two attachments attached', 30_000);
    const both = (await rig.member.call('GetVolume', { id: shared.id })).volume;
    expect(both).toMatchObject({ status: 'in-use', attachStatus: 'attached' });
    expect(both.attachments.map((x: { serverId: string }) => x.serverId).sort()).toEqual([a, b].sort());
    // Each NBD export is its own (one per attachment), on one daemon for the volume.
    expect(new Set(both.attachments.map((x: { id: string }) => x.id)).size).toBe(2);

    await rig.member.call('AttachVolume', { serverId: a, volumeId: single.id });
    await rig.volumeStatus(single.id, 'in-use');
    const second = await errorOf(rig.member.call('AttachVolume', { serverId: b, volumeId: single.id }));
    expect(second.code).toBe(FAILED_PRECONDITION);
    expect(second.details).toMatch(/in-use/);

    // Detaching one of two leaves the volume in-use on the other.
    await rig.member.call('DetachVolume', { serverId: a, volumeId: shared.id });
    await until(async () => (await rig.member.call('GetVolume', { id: shared.id })).volume.attachments.length === 1, 'one attachment left', 30_000);
    expect((await rig.member.call('GetVolume', { id: shared.id })).volume).toMatchObject({ status: 'in-use', attachStatus: 'attached' });
    await rig.member.call('DetachVolume', { serverId: b, volumeId: shared.id });
    await rig.member.call('DetachVolume', { serverId: a, volumeId: single.id });
    await rig.volumeStatus(shared.id, 'available');
    await rig.volumeStatus(single.id, 'available');
  }, 180_000);

  it('quota: a volume beyond gigabytes is refused naming it, and nothing is made', async () => {
    const { client, projectId } = await rig.newMember();
    await rig.admin.call('SetBlockQuota', { projectId, limits: { gigabytes: 2 } });
    const big = await errorOf(client.call('CreateVolume', { sizeGb: 3 }));
    expect(big.code).toBe(RESOURCE_EXHAUSTED);
    expect(big.details).toMatch(/gigabytes/);
    expect((await client.call('ListVolumes', {})).volumes).toEqual([]);
  });

  it('a deleted server lets its volumes go: detached, and deleted with delete_on_termination', async () => {
    const keep = await create({ name: 'keep' });
    const drop = await create({ name: 'drop' });
    await rig.volumeStatus(keep.id, 'available');
    await rig.volumeStatus(drop.id, 'available');
    const server = await bootServer();
    await rig.member.call('AttachVolume', { serverId: server, volumeId: keep.id });
    await rig.member.call('AttachVolume', { serverId: server, volumeId: drop.id, deleteOnTermination: true });
    await rig.volumeStatus(keep.id, 'in-use');
    await rig.volumeStatus(drop.id, 'in-use');
    expect((await rig.member.call('ListServerVolumes', { serverId: server })).attachments).toHaveLength(2);
    await rig.member.call('DeleteServer', { id: server });
    await rig.volumeStatus(keep.id, 'available');
    await until(async () => (await codeOf(rig.member.call('GetVolume', { id: drop.id }))) === NOT_FOUND, 'the delete_on_termination volume gone', 60_000);
    expect(await findVolumeFile(storageDir(), drop.id)).toBeUndefined();
    const daemons = (await rig.storage[0].exports.daemons()).map((d) => d.volumeId);
    expect(daemons).not.toContain(drop.id);
    expect(daemons).not.toContain(keep.id);
  }, 180_000);
});
