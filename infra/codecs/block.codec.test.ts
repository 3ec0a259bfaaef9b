// The block codec carries exactly what the deciders consume: every command and event of every
// block aggregate, produced by driving the real deciders through realistic histories, survives
// encode -> decode deep-equal (empty connections, blank sources, an absent state_dir stay so),
// and folding the decoded events gives the state the originals give. Bad fields are refused at
// decode, named.
import { describe, expect, it } from 'vitest';
import { blockAggregate, blockAggregates } from '../../domains/block/block.deciders.js';
import type { Message } from '../../domains/kernel/decider.js';
import type { MachineState } from '../../domains/kernel/machine-decider.js';
import { InvalidArgumentError } from '../../domains/kernel/rejection.js';
import { testContext } from '../../domains/kernel/specification.js';
import { BLOCK_DOMAIN } from '../../domains/block/block.types.js';
import { hostedDomains } from '../domains.js';
import { blockCodecFor, blockDefinitions, blockEventTypes } from './block.codec.js';

type M = Message & Record<string, any>;

const admin = { userId: 'admin', projectId: 'p0', roles: ['admin', 'member', 'reader'] };
const seen = new Map<string, { commands: Set<string>; events: Set<string> }>();

/** Runs commands in order against one aggregate through the codec; returns both folds. */
function drive(aggregateType: string, aggregateId: string, commands: M[]): { original: MachineState; decoded: MachineState } {
  const { decider } = blockAggregate(aggregateType);
  const codec = blockCodecFor(aggregateType);
  const record = seen.get(aggregateType) ?? { commands: new Set(), events: new Set() };
  seen.set(aggregateType, record);
  let original = decider.initialState;
  let decoded = decider.initialState;
  commands.forEach((command, i) => {
    const wire = codec.decodeCommand(command.type, codec.encodeCommand(command)) as M;
    expect(wire, `${command.type} after the wire`).toStrictEqual(command);
    record.commands.add(command.type);
    const context = testContext({ aggregateId, version: i, actor: admin, issuedAtMs: 1_767_225_600_000 + i });
    const want = decider.decide(original, command, context);
    const got = decider.decide(decoded, wire, context);
    if (!('events' in want)) throw new Error(`${command.type} (#${i}) refused: ${want.rejection.message}`);
    expect(got, `${command.type}: deciding the decoded command`).toStrictEqual(want);
    for (const event of want.events as M[]) {
      const back = codec.decodeEvent(event.type, codec.encodeEvent(event)) as M;
      expect(back, `${event.type} after the wire`).toStrictEqual(event);
      record.events.add(event.type);
      original = decider.evolve(original, event);
      decoded = decider.evolve(decoded, back);
    }
    expect({ value: decoded.value, context: decoded.context }, `state after ${command.type}`).toStrictEqual({ value: original.value, context: original.context });
    const snap = codec.decodeState(codec.encodeState(decoded));
    expect(snap).toStrictEqual({ value: decoded.value, context: decoded.context });
  });
  return { original, decoded };
}

const volumeType = { id: 't1', name: 'gold', description: 'fast', isPublic: true, extraSpecs: { multiattach: '<is> True', volume_backend_name: 'lvm' }, backend: 'lvm' };
const volume = {
  id: 'v1', projectId: 'p1', userId: 'u1', name: 'data', description: 'scratch', sizeGb: 10, volumeTypeId: 't1', backend: 'lvm', availabilityZone: 'nova',
  bootable: false, multiattach: true, metadata: { tier: 'gold' }, format: 'qcow2', source: { kind: '', id: '' }, createdAtMs: 0,
};
const noConnection = { host: '', port: 0, exportName: '' };
const attachment = (id: string, serverId: string) => ({ id, serverId, hostId: 'compute1', mode: 'rw', deleteOnTermination: true, status: 'reserved', connection: noConnection, device: '' });
const snapshot = { id: 's1', projectId: 'p1', volumeId: 'v1', name: 'nightly', description: '', sizeGb: 10, metadata: { k: 'v' }, createdAtMs: 0 };
const backup = { id: 'b1', projectId: 'p1', volumeId: 'v1', snapshotId: 's1', name: 'weekly', description: '', sizeGb: 10, createdAtMs: 0 };

describe('block codec', () => {
  it('carries a volume type', () => {
    const { decoded } = drive('volume_type', 't1', [
      { type: 'CreateVolumeType', volumeType },
      { type: 'UpdateVolumeType', volumeType: { ...volumeType, isPublic: false, extraSpecs: {} }, updateMask: ['isPublic', 'extraSpecs'] },
      { type: 'DeleteVolumeType' },
    ]);
    expect(decoded.value).toBe('deleted');
  });

  it('carries a volume through attachments, extend, retype, snapshots, backup, restore, uploads to images, reset and delete', () => {
    const { decoded } = drive('volume', 'v1', [
      { type: 'CreateVolume', volume, hostId: 'h1' },
      { type: 'ReportVolumeCreated', hostId: 'h1' },
      { type: 'UpdateVolume', volume: { ...volume, bootable: true, metadata: {} }, updateMask: ['bootable', 'metadata'] },
      { type: 'AddVolumeSnapshot', snapshotId: 's1' },
      { type: 'ExtendVolume', newSizeGb: 20 },
      { type: 'ReportVolumeExtended', hostId: 'h1', sizeGb: 20 },
      { type: 'RetypeVolume', volumeTypeId: 't2', backend: '', multiattach: false },
      { type: 'ReserveAttachment', attachment: attachment('a1', 'srv1') },
      { type: 'UpdateAttachment', attachmentId: 'a1' },
      { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: { host: '192.0.2.10', port: 10809, exportName: 'v1' } },
      { type: 'CompleteAttachment', attachmentId: 'a1', device: '/dev/vdb' },
      { type: 'BeginDetaching', attachmentId: 'a1' },
      { type: 'ReportAttachmentDetached', attachmentId: 'a1' },
      { type: 'ReserveAttachment', attachment: attachment('a2', 'srv2') },
      { type: 'DeleteAttachment', attachmentId: 'a2' },
      { type: 'ReserveAttachment', attachment: { ...attachment('a3', 'srv3'), mode: 'ro' } },
      { type: 'ReportAttachmentFailed', attachmentId: 'a3', reason: 'no route to host\nretry later' },
      { type: 'BeginVolumeBackup', backupId: 'b1', force: false },
      { type: 'EndVolumeBackup', backupId: 'b1' },
      { type: 'BeginVolumeRestore', backupId: 'b1' },
      { type: 'EndVolumeRestore', backupId: 'b1', sizeGb: 30 },
      { type: 'BeginVolumeUpload', imageId: '3f1c2a9e-7b1d-4c55-9a0e-2d6f8b7c1e42', force: false },
      { type: 'EndVolumeUpload', imageId: '3f1c2a9e-7b1d-4c55-9a0e-2d6f8b7c1e42', reason: '' },
      { type: 'BeginVolumeUpload', imageId: 'img-2', force: false },
      { type: 'EndVolumeUpload', imageId: 'img-2', reason: 'object storage unreachable' },
      { type: 'RemoveVolumeSnapshot', snapshotId: 's1' },
      { type: 'ResetVolumeStatus', status: 'error', reason: 'operator' },
      { type: 'DeleteVolume', cascade: true, force: false },
      { type: 'ReportVolumeDeleted', hostId: 'h1' },
    ]);
    expect(decoded.value).toBe('deleted');
    const failed = drive('volume', 'v2', [
      { type: 'CreateVolume', volume: { ...volume, id: 'v2', source: { kind: 'image', id: 'img-1' } }, hostId: 'h1' },
      { type: 'ReportVolumeFailed', hostId: 'h1', reason: 'image unreadable' },
    ]);
    expect(failed.decoded.value).toBe('error');
  });

  it('carries a snapshot through creation, failure, force delete and deletion', () => {
    const { decoded } = drive('snapshot', 's1', [
      { type: 'CreateSnapshot', snapshot, hostId: 'h1' },
      { type: 'ReportSnapshotCreated', hostId: 'h1' },
      { type: 'UpdateSnapshot', snapshot: { ...snapshot, name: 'n2', metadata: {} }, updateMask: ['name', 'metadata'] },
      { type: 'DeleteSnapshot', force: false },
      { type: 'ReportSnapshotFailed', hostId: 'h1', reason: 'busy' },
      { type: 'ResetSnapshotStatus', status: 'available', reason: '' },
      { type: 'DeleteSnapshot', force: true },
      { type: 'ReportSnapshotDeleted', hostId: 'h1' },
    ]);
    expect(decoded.value).toBe('deleted');
  });

  it('carries a backup through storing, restores (one failed), reset and deletion', () => {
    const { decoded } = drive('backup', 'b1', [
      { type: 'CreateBackup', backup, hostId: 'bk1' },
      { type: 'ReportBackupCreated', hostId: 'bk1', checksum: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', sizeBytes: 10_737_418_240 },
      { type: 'RestoreBackup', volumeId: 'v2' },
      { type: 'ReportBackupRestored', hostId: 'bk1', volumeId: 'v2' },
      { type: 'RestoreBackup', volumeId: 'v3' },
      { type: 'ReportBackupFailed', hostId: 'bk1', reason: 'volume gone' },
      { type: 'ResetBackupStatus', status: 'error', reason: 'checking' },
      { type: 'DeleteBackup', force: false },
      { type: 'ReportBackupDeleted', hostId: 'bk1' },
    ]);
    expect(decoded.value).toBe('deleted');
    expect(decoded.context.sizeBytes).toBe(10_737_418_240);
  });

  it("carries a project's quota and a storage host", () => {
    drive('block_quota', 'p1', [
      { type: 'SetBlockQuotaLimits', limits: { gigabytes: 100, backups: -1 } },
      { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 10 } },
      { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 20 } },
      { type: 'ReleaseBlockQuota', consumerId: 'v1' },
    ]);
    drive('block_host', 'h1', [
      { type: 'RegisterBlockHost', hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, backupStore: false },
      { type: 'RegisterBlockHost', hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, stateDir: '/srv/block', backupStore: true },
      { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 0 },
      { type: 'RemoveBlockHost' },
    ]);
  });

  it('has seen every command and event type of every block aggregate (runs last)', () => {
    for (const a of blockAggregates) {
      const s = seen.get(a.aggregateType);
      expect([...(s?.commands ?? [])].sort(), `${a.aggregateType} commands`).toEqual([...a.commandTypes].sort());
      expect([...(s?.events ?? [])].sort(), `${a.aggregateType} events`).toEqual([...a.eventTypes].sort());
    }
  });
});

describe('block codec: refusals', () => {
  const refusal = (aggregateType: string, command: M) => {
    const codec = blockCodecFor(aggregateType);
    try {
      codec.decodeCommand(command.type, codec.encodeCommand(command));
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidArgumentError);
      return { field: (e as InvalidArgumentError).field, message: (e as Error).message };
    }
    throw new Error(`${command.type} was accepted`);
  };

  it('refuses bad fields at decode, naming them', () => {
    expect(refusal('volume', { type: 'CreateVolume', volume: { ...volume, sizeGb: 0 }, hostId: 'h1' })).toMatchObject({ field: 'volume.size_gb' });
    expect(refusal('volume', { type: 'CreateVolume', volume: { ...volume, name: 'x'.repeat(256) }, hostId: 'h1' })).toMatchObject({ field: 'volume.name', message: expect.stringContaining('at most 255') });
    expect(refusal('volume', { type: 'CreateVolume', volume: { ...volume, source: { kind: 'tape', id: 'x' } }, hostId: 'h1' })).toMatchObject({ field: 'volume.source.kind' });
    expect(refusal('volume', { type: 'ExtendVolume', newSizeGb: 0 })).toMatchObject({ field: 'new_size_gb' });
    expect(refusal('volume', { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: { host: 'x', port: 70000, exportName: 'v1' } })).toMatchObject({ field: 'connection.port' });
    expect(refusal('volume', { type: 'UpdateVolume', volume, updateMask: ['backend'] })).toMatchObject({ field: 'volume.backend', message: expect.stringContaining('cannot be changed') });
    expect(refusal('volume_type', { type: 'CreateVolumeType', volumeType: { ...volumeType, name: '' } })).toMatchObject({ field: 'volume_type.name' });
    expect(refusal('block_quota', { type: 'SetBlockQuotaLimits', limits: { volumes: -2 } })).toMatchObject({ field: 'limits.volumes' });
    expect(refusal('block_host', { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 1, freeGb: 2 })).toMatchObject({ field: 'free_gb' });
  });

  it('is hosted, and lists every aggregate and distinct event types', () => {
    expect(hostedDomains.find((d) => d.name === BLOCK_DOMAIN)?.aggregates).toBe(blockDefinitions);
    expect(blockDefinitions.map((d) => d.decider.aggregateType)).toEqual(['volume_type', 'volume', 'snapshot', 'backup', 'block_quota', 'block_host']);
    expect(new Set(blockEventTypes).size).toBe(blockEventTypes.length);
    expect(() => blockCodecFor('port')).toThrow(/no block aggregate/);
  });
});
