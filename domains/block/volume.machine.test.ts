// The volume lifecycle as Cinder runs it, through the decider: a table of every (status, command)
// pair (legal ones give the listed events and status; illegal ones are FAILED_PRECONDITION naming
// the status and give no events), then the rules beyond the status: the holding host, attachments
// and multiattach, snapshots and cascade, extend sizes, retype without migration, backups.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { blockAggregate } from './block.deciders.js';
import { VOLUME_STATUSES, type Attachment, type VolumeStatus } from './block.types.js';
import { VOLUME_COMMANDS, VOLUME_RULES, volumeCommandsAllowed } from './volume.machine.js';

type M = Message & Record<string, any>;
const volumeDecider = blockAggregate('volume').decider;

const vol = {
  id: 'v1', projectId: 'p1', userId: 'u1', name: 'data', description: '', sizeGb: 10, volumeTypeId: 't1', backend: 'lvm', availabilityZone: 'nova',
  bootable: false, multiattach: true, metadata: { tier: 'gold' }, format: 'raw', source: { kind: '', id: '' }, createdAtMs: 1_767_225_600_000,
};
const noConnection = { host: '', port: 0, exportName: '' };
const c1 = { host: '192.0.2.10', port: 10809, exportName: 'v1' };
const c2 = { host: '192.0.2.10', port: 10810, exportName: 'v1' };
const att = (id: string, serverId: string, more: Partial<Attachment> = {}): Attachment => ({
  id, serverId, hostId: 'compute1', mode: 'rw', deleteOnTermination: false, status: 'reserved', connection: noConnection, device: '', ...more,
});
const moved = (status: string, previousStatus: string, reason = ''): M => ({ type: 'VolumeStatusChanged', status, previousStatus, reason });

const created = (volume = vol): M[] => [{ type: 'VolumeCreated', volume, hostId: 'h1' }];
const available = (volume = vol): M[] => [...created(volume), moved('available', 'creating')];
const reserved = (volume = vol): M[] => [...available(volume), { type: 'AttachmentReserved', attachment: att('a1', 's1') }, moved('reserved', 'available')];
const attaching = (volume = vol): M[] => [...reserved(volume), { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'attaching', connection: c1 }) }, moved('attaching', 'reserved')];
const inUse = (volume = vol): M[] => [...attaching(volume), { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'attached', connection: c1, device: '/dev/vdb' }) }, moved('in-use', 'attaching')];
const detaching = (volume = vol): M[] => [...inUse(volume), { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'detaching', connection: c1, device: '/dev/vdb' }) }, moved('detaching', 'in-use')];
const deleting = [...available(), { type: 'VolumeDeleting', cascade: false, force: false }, moved('deleting', 'available')];
const extending = [...available(), { type: 'VolumeExtending', newSizeGb: 20 }, moved('extending', 'available')];
const restoring = [...available(), { type: 'VolumeRestoreStarted', backupId: 'b1' }, moved('restoring-backup', 'available')];

/** A history that reaches each status the way Cinder gets there. */
const AT: Record<VolumeStatus, M[]> = {
  creating: created(),
  available: available(),
  reserved: reserved(),
  attaching: attaching(),
  'in-use': inUse(),
  detaching: detaching(),
  deleting,
  error: [...created(), moved('error', 'creating', 'no space')],
  error_deleting: [...deleting, moved('error_deleting', 'deleting', 'busy')],
  extending,
  error_extending: [...extending, moved('error_extending', 'extending', 'no space')],
  'backing-up': [...available(), { type: 'VolumeBackupStarted', backupId: 'b1' }, moved('backing-up', 'available')],
  'restoring-backup': restoring,
  error_restoring: [...restoring, moved('error_restoring', 'restoring-backup', 'corrupt')],
  retyping: [...available(), moved('retyping', 'available', 'reset')],
  uploading: [...available(), { type: 'VolumeUploadStarted', imageId: 'img1' }, moved('uploading', 'available')],
};

/** One command of each type, valid in the fixtures where its status allows it. */
const COMMAND: Record<string, M> = {
  ReportVolumeCreated: { type: 'ReportVolumeCreated', hostId: 'h1' },
  ReportVolumeFailed: { type: 'ReportVolumeFailed', hostId: 'h1', reason: 'disk full' },
  UpdateVolume: { type: 'UpdateVolume', volume: { ...vol, name: 'renamed' }, updateMask: ['name'] },
  DeleteVolume: { type: 'DeleteVolume', cascade: false, force: false },
  ReportVolumeDeleted: { type: 'ReportVolumeDeleted', hostId: 'h1' },
  ExtendVolume: { type: 'ExtendVolume', newSizeGb: 20 },
  ReportVolumeExtended: { type: 'ReportVolumeExtended', hostId: 'h1', sizeGb: 20 },
  RetypeVolume: { type: 'RetypeVolume', volumeTypeId: 't2', backend: '', multiattach: true },
  ReserveAttachment: { type: 'ReserveAttachment', attachment: att('a2', 's2') },
  UpdateAttachment: { type: 'UpdateAttachment', attachmentId: 'a1' },
  ReportAttachmentExported: { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: c2 },
  CompleteAttachment: { type: 'CompleteAttachment', attachmentId: 'a1', device: '/dev/vdb' },
  ReportAttachmentFailed: { type: 'ReportAttachmentFailed', attachmentId: 'a1', reason: 'no route' },
  BeginDetaching: { type: 'BeginDetaching', attachmentId: 'a1' },
  DeleteAttachment: { type: 'DeleteAttachment', attachmentId: 'a1' },
  ReportAttachmentDetached: { type: 'ReportAttachmentDetached', attachmentId: 'a1' },
  AddVolumeSnapshot: { type: 'AddVolumeSnapshot', snapshotId: 'snap1' },
  RemoveVolumeSnapshot: { type: 'RemoveVolumeSnapshot', snapshotId: 'snap1' },
  BeginVolumeBackup: { type: 'BeginVolumeBackup', backupId: 'b2', force: false },
  EndVolumeBackup: { type: 'EndVolumeBackup', backupId: 'b1' },
  BeginVolumeRestore: { type: 'BeginVolumeRestore', backupId: 'b2' },
  EndVolumeRestore: { type: 'EndVolumeRestore', backupId: 'b1', sizeGb: 10 },
  BeginVolumeUpload: { type: 'BeginVolumeUpload', imageId: 'img2', force: false },
  EndVolumeUpload: { type: 'EndVolumeUpload', imageId: 'img1', reason: '' },
  ResetVolumeStatus: { type: 'ResetVolumeStatus', status: 'error', reason: 'stuck' },
};

const LIVE = VOLUME_STATUSES;
/** The contract's statuses per command, written out here (not read from the machine), without force. */
const LEGAL: Record<string, readonly string[]> = {
  ReportVolumeCreated: ['creating'],
  ReportVolumeFailed: ['creating', 'deleting', 'extending', 'restoring-backup'],
  UpdateVolume: LIVE.filter((s) => s !== 'deleting'),
  DeleteVolume: ['available', 'error', 'error_restoring', 'error_extending'],
  ReportVolumeDeleted: ['deleting'],
  ExtendVolume: ['available', 'in-use'],
  ReportVolumeExtended: ['extending'],
  RetypeVolume: ['available', 'in-use'],
  ReserveAttachment: ['available', 'in-use'],
  UpdateAttachment: ['reserved'],
  ReportAttachmentExported: ['attaching'],
  CompleteAttachment: ['attaching'],
  ReportAttachmentFailed: ['reserved', 'attaching'],
  BeginDetaching: ['in-use'],
  DeleteAttachment: ['reserved', 'attaching'],
  ReportAttachmentDetached: ['detaching'],
  AddVolumeSnapshot: ['available', 'in-use'],
  RemoveVolumeSnapshot: LIVE,
  BeginVolumeBackup: ['available'],
  EndVolumeBackup: ['backing-up'],
  BeginVolumeRestore: ['available'],
  EndVolumeRestore: ['restoring-backup'],
  BeginVolumeUpload: ['available'],
  EndVolumeUpload: ['uploading'],
  ResetVolumeStatus: LIVE,
};

const FAILED: Partial<Record<VolumeStatus, VolumeStatus>> = { creating: 'error', deleting: 'error_deleting', extending: 'error_extending', 'restoring-backup': 'error_restoring' };

/** What each legal command does from a status: its events (by type) and the state after. */
function outcome(status: VolumeStatus, type: string): { events: string[]; to: string } {
  const move = (to: string, ...data: string[]) => ({ events: [...data, ...(to === status ? [] : ['VolumeStatusChanged'])], to });
  switch (type) {
    case 'ReportVolumeCreated': return move('available');
    case 'ReportVolumeFailed': return move(FAILED[status]!);
    case 'UpdateVolume': return move(status, 'VolumeUpdated');
    case 'DeleteVolume': return move('deleting', 'VolumeDeleting');
    case 'ReportVolumeDeleted': return { events: ['VolumeDeleted'], to: 'deleted' };
    case 'ExtendVolume': return move('extending', 'VolumeExtending');
    case 'ReportVolumeExtended': return move('available', 'VolumeExtended');
    case 'RetypeVolume': return move(status, 'VolumeRetyped');
    case 'ReserveAttachment': return move('reserved', 'AttachmentReserved');
    case 'UpdateAttachment': return move('attaching', 'AttachmentUpdated');
    case 'ReportAttachmentExported': return move(status, 'AttachmentUpdated');
    case 'CompleteAttachment': return move('in-use', 'AttachmentUpdated');
    case 'ReportAttachmentFailed':
    case 'DeleteAttachment':
    case 'ReportAttachmentDetached': return move('available', 'AttachmentRemoved');
    case 'BeginDetaching': return move('detaching', 'AttachmentUpdated');
    case 'AddVolumeSnapshot': return move(status, 'VolumeSnapshotAdded');
    case 'RemoveVolumeSnapshot': return move(status); // unknown snapshot: nothing to forget
    case 'BeginVolumeBackup': return move('backing-up', 'VolumeBackupStarted');
    case 'EndVolumeBackup': return move('available');
    case 'BeginVolumeRestore': return move('restoring-backup', 'VolumeRestoreStarted');
    case 'EndVolumeRestore': return move('available');
    case 'BeginVolumeUpload': return move('uploading', 'VolumeUploadStarted');
    case 'EndVolumeUpload': return move('available');
    case 'ResetVolumeStatus': return move('error');
  }
  throw new Error(`no outcome for ${type}`);
}

function decide(history: M[], command: M) {
  return volumeDecider.decide(fold(volumeDecider, history), command, testContext({ aggregateId: 'v1', version: history.length }));
}

/** Runs commands in order; refused ones are collected, accepted ones' events appended. */
function run(start: M[], commands: M[]) {
  const events = [...start];
  const refusals: any[] = [];
  for (const c of commands) {
    const d = decide(events, c);
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(volumeDecider, events), events: events.slice(start.length), refusals };
}

describe('volume: every (status, command) pair', () => {
  it('the fixtures reach the statuses they are named after', () => {
    for (const s of VOLUME_STATUSES) expect(fold(volumeDecider, AT[s]).value, s).toBe(s);
    expect(Object.keys(COMMAND).sort()).toEqual(VOLUME_COMMANDS.filter((c) => c !== 'CreateVolume').sort());
    expect(Object.keys(LEGAL).sort()).toEqual(Object.keys(VOLUME_RULES.allowed).sort());
  });

  for (const status of VOLUME_STATUSES) {
    describe(status, () => {
      for (const type of Object.keys(COMMAND)) {
        const legal = LEGAL[type].includes(status);
        it(`${type} is ${legal ? 'legal' : 'refused'}`, () => {
          const d = decide(AT[status], COMMAND[type]);
          if (legal) {
            if (!('events' in d)) throw new Error(`${type} in ${status} refused: ${d.rejection.message}`);
            const want = outcome(status, type);
            expect(d.events.map((e) => e.type)).toEqual(want.events);
            expect(fold(volumeDecider, d.events, fold(volumeDecider, AT[status])).value).toBe(want.to);
          } else {
            expect('events' in d).toBe(false);
            const r = (d as { rejection: { code: string; state?: string; message: string } }).rejection;
            expect(r.code).toBe('FAILED_PRECONDITION');
            expect(r.state).toBe(status);
            expect(r.message).toContain(`${type} is not allowed: volume v1 is ${status} (allowed: `);
          }
        });
      }
    });
  }

  it('with force, DeleteVolume runs in every status without an attachment, BeginVolumeBackup and BeginVolumeUpload also in-use; an attachment still refuses', () => {
    for (const s of VOLUME_STATUSES) {
      const d = decide(AT[s], { type: 'DeleteVolume', cascade: false, force: true });
      const attached = fold(volumeDecider, AT[s]).context.attachments as Attachment[];
      if (attached.length > 0) expect(d, s).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: s, message: `DeleteVolume is not allowed: volume v1 is ${s}: it has 1 attachment (detach first)` } });
      else expect(d, s).toEqual({ events: [{ type: 'VolumeDeleting', cascade: false, force: true }, ...(s === 'deleting' ? [] : [moved('deleting', s)])] });
      const b = decide(AT[s], { type: 'BeginVolumeBackup', backupId: 'b2', force: true });
      if (s === 'available' || s === 'in-use') expect(b, s).toMatchObject({ events: [{ type: 'VolumeBackupStarted', backupId: 'b2' }, moved('backing-up', s)] });
      else expect(b, s).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: s } });
      const u = decide(AT[s], { type: 'BeginVolumeUpload', imageId: 'img2', force: true });
      if (s === 'available' || s === 'in-use') expect(u, s).toMatchObject({ events: [{ type: 'VolumeUploadStarted', imageId: 'img2' }, moved('uploading', s)] });
      else expect(u, s).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: s, message: expect.stringContaining(`volume v1 is ${s}`) } });
    }
  });

  it('before creation and after deletion every command is NOT_FOUND; CreateVolume on a live volume is ALREADY_EXISTS', () => {
    const gone = [...deleting, { type: 'VolumeDeleted', volume: vol }];
    for (const type of Object.keys(COMMAND)) {
      expect(decide([], COMMAND[type]), type).toEqual({ rejection: { code: 'NOT_FOUND', message: 'volume v1 does not exist' } });
      expect(decide(gone, COMMAND[type]), type).toEqual({ rejection: { code: 'NOT_FOUND', message: 'volume v1 does not exist' } });
    }
    for (const s of VOLUME_STATUSES) {
      expect(decide(AT[s], { type: 'CreateVolume', volume: vol, hostId: 'h1' }), s).toEqual({ rejection: { code: 'ALREADY_EXISTS', message: 'volume v1 already exists' } });
    }
    expect(decide(gone, { type: 'CreateVolume', volume: vol, hostId: 'h1' })).toMatchObject({ rejection: { code: 'ALREADY_EXISTS' } });
  });

  it("the machine's transitions are the table's: allowedCommands = volumeCommandsAllowed with force", () => {
    for (const s of VOLUME_STATUSES) {
      const state = fold(volumeDecider, AT[s]);
      expect(volumeDecider.allowedCommands(state).sort(), s).toEqual(volumeCommandsAllowed(s, { force: true }).sort());
    }
    expect(volumeCommandsAllowed('in-use')).toEqual(['UpdateVolume', 'ExtendVolume', 'RetypeVolume', 'ReserveAttachment', 'BeginDetaching', 'AddVolumeSnapshot', 'RemoveVolumeSnapshot', 'ResetVolumeStatus']);
    expect(volumeCommandsAllowed('in-use', { force: true })).toContain('DeleteVolume');
    expect(volumeCommandsAllowed('in-use', { force: true })).toContain('BeginVolumeBackup');
    expect(volumeCommandsAllowed('in-use', { force: true })).toContain('BeginVolumeUpload');
    expect(volumeCommandsAllowed('uploading')).toEqual(['UpdateVolume', 'RemoveVolumeSnapshot', 'EndVolumeUpload', 'ResetVolumeStatus']);
    expect(volumeDecider.allowedCommands(fold(volumeDecider, []))).toEqual(['CreateVolume']);
  });
});

describe('volume lifecycle', () => {
  it('creates (time from the envelope), attaches through reserve -> connector -> export -> complete, extends in-use, detaches, deletes', () => {
    const { state, events, refusals } = run([], [
      { type: 'CreateVolume', volume: { ...vol, multiattach: false, createdAtMs: 0 }, hostId: 'h1' },
      { type: 'ReportVolumeCreated', hostId: 'h1' },
      { type: 'ReserveAttachment', attachment: att('a1', 's1') },
      { type: 'UpdateAttachment', attachmentId: 'a1' },
      { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: c1 },
      { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h1', connection: c1 },
      { type: 'CompleteAttachment', attachmentId: 'a1', device: '/dev/vdb' },
      { type: 'ExtendVolume', newSizeGb: 15 },
      { type: 'ReportVolumeExtended', hostId: 'h1', sizeGb: 15 },
      { type: 'BeginDetaching', attachmentId: 'a1' },
      { type: 'ReportAttachmentDetached', attachmentId: 'a1' },
      { type: 'DeleteVolume', cascade: false, force: false },
      { type: 'ReportVolumeDeleted', hostId: 'h1' },
    ]);
    expect(refusals).toEqual([]);
    const v = { ...vol, multiattach: false, createdAtMs: testContext().issuedAtMs };
    expect(events).toEqual([
      { type: 'VolumeCreated', volume: v, hostId: 'h1' },
      moved('available', 'creating'),
      { type: 'AttachmentReserved', attachment: att('a1', 's1') },
      moved('reserved', 'available'),
      { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'attaching' }) },
      moved('attaching', 'reserved'),
      { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'attaching', connection: c1 }) },
      // the repeated export report wrote nothing
      { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'attached', connection: c1, device: '/dev/vdb' }) },
      moved('in-use', 'attaching'),
      { type: 'VolumeExtending', newSizeGb: 15 },
      moved('extending', 'in-use'),
      { type: 'VolumeExtended', sizeGb: 15 },
      moved('in-use', 'extending'),
      { type: 'AttachmentUpdated', attachment: att('a1', 's1', { status: 'detaching', connection: c1, device: '/dev/vdb' }) },
      moved('detaching', 'in-use'),
      { type: 'AttachmentRemoved', attachmentId: 'a1', reason: '' },
      moved('available', 'detaching'),
      { type: 'VolumeDeleting', cascade: false, force: false },
      moved('deleting', 'available'),
      { type: 'VolumeDeleted', volume: { ...v, sizeGb: 15 } },
    ]);
    expect(state.value).toBe('deleted');
  });

  it('refuses delete while in-use and extend while attaching, naming the status, with no events', () => {
    expect(decide(AT['in-use'], { type: 'DeleteVolume', cascade: false, force: false })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'DeleteVolume is not allowed: volume v1 is in-use (allowed: available, error, error_restoring, error_extending; with force: any status)' },
    });
    expect(decide(AT.attaching, { type: 'ExtendVolume', newSizeGb: 20 })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'attaching', message: 'ExtendVolume is not allowed: volume v1 is attaching (allowed: available, in-use)' },
    });
    expect(decide(AT.reserved, { type: 'ExtendVolume', newSizeGb: 20 })).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'reserved' } });
  });

  it("refuses a storage host's report from another host than the one holding the volume", () => {
    for (const [status, c] of [
      ['creating', { type: 'ReportVolumeCreated', hostId: 'h2' }],
      ['creating', { type: 'ReportVolumeFailed', hostId: 'h2', reason: 'x' }],
      ['deleting', { type: 'ReportVolumeDeleted', hostId: 'h2' }],
      ['extending', { type: 'ReportVolumeExtended', hostId: 'h2', sizeGb: 20 }],
      ['attaching', { type: 'ReportAttachmentExported', attachmentId: 'a1', hostId: 'h2', connection: c2 }],
    ] as [VolumeStatus, M][]) {
      expect(decide(AT[status], c), c.type).toEqual({ rejection: { code: 'FAILED_PRECONDITION', state: status, message: `${c.type} is not allowed: volume v1 is held by storage host h1, not h2` } });
    }
  });

  it('goes to the error status of the failed operation, keeping the reason', () => {
    for (const [from, to] of Object.entries(FAILED)) {
      const r = run(AT[from as VolumeStatus], [{ type: 'ReportVolumeFailed', hostId: 'h1', reason: 'disk full' }]);
      expect(r.events).toEqual([moved(to, from, 'disk full')]);
      expect(r.state.context).toMatchObject({ status: to, previousStatus: from, operationId: '' });
    }
  });

  it("clips an agent's long failure reason to 1024 characters in the event; refuses one beyond 64 KiB", () => {
    const long = 'x'.repeat(5000);
    const r = run(AT.creating, [{ type: 'ReportVolumeFailed', hostId: 'h1', reason: long }]);
    expect(r.events[0].reason).toBe(`${'x'.repeat(1023)}…`);
    expect(decide(AT.creating, { type: 'ReportVolumeFailed', hostId: 'h1', reason: 'x'.repeat(65_537) })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'reason' } });
  });

  it('refuses create with bad fields or an id that is not the aggregate id, naming the field', () => {
    expect(decide([], { type: 'CreateVolume', volume: { ...vol, sizeGb: 0 }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume.size_gb' } });
    expect(decide([], { type: 'CreateVolume', volume: { ...vol, format: 'vmdk' }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume.format' } });
    expect(decide([], { type: 'CreateVolume', volume: vol, hostId: '' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'host_id' } });
    expect(decide([], { type: 'CreateVolume', volume: { ...vol, id: 'v2' }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume.id' } });
    expect(decide([], { type: 'CreateVolume', volume: { ...vol, metadata: { ['k'.repeat(256)]: 'v' } }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume.metadata' } });
  });

  it('updates name, description, metadata and bootable only', () => {
    const r = run(AT['in-use'], [{ type: 'UpdateVolume', volume: { ...vol, bootable: true, metadata: {}, sizeGb: 99 }, updateMask: ['bootable', 'metadata'] }]);
    expect(r.state.context.volume).toEqual({ ...vol, bootable: true, metadata: {} });
    expect(decide(AT.available, { type: 'UpdateVolume', volume: { ...vol, sizeGb: 99 }, updateMask: ['sizeGb'] })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume.size_gb' } });
    expect(decide(AT.deleting, COMMAND.UpdateVolume)).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'deleting' } });
  });
});

describe('volume: delete', () => {
  it('refuses with snapshots unless cascade, naming the count', () => {
    const withSnaps = [...available(), { type: 'VolumeSnapshotAdded', snapshotId: 's1' }, { type: 'VolumeSnapshotAdded', snapshotId: 's2' }];
    expect(decide(withSnaps, { type: 'DeleteVolume', cascade: false, force: false })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'available', message: 'DeleteVolume is not allowed: volume v1 is available: it has 2 snapshots (delete them first, or cascade)' },
    });
    const r = run(withSnaps, [{ type: 'DeleteVolume', cascade: true, force: false }, { type: 'RemoveVolumeSnapshot', snapshotId: 's1' }, { type: 'RemoveVolumeSnapshot', snapshotId: 's1' }]);
    expect(r.events).toEqual([{ type: 'VolumeDeleting', cascade: true, force: false }, moved('deleting', 'available'), { type: 'VolumeSnapshotRemoved', snapshotId: 's1' }]);
    expect(r.state.context.snapshotIds).toEqual(['s2']);
  });

  it('force skips the status check (error_deleting, extending, ...) but never an attachment', () => {
    for (const s of ['error_deleting', 'extending', 'creating', 'backing-up'] as VolumeStatus[]) {
      expect(run(AT[s], [{ type: 'DeleteVolume', cascade: false, force: true }]).state.value, s).toBe('deleting');
    }
    expect(decide(AT['in-use'], { type: 'DeleteVolume', cascade: false, force: true })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'DeleteVolume is not allowed: volume v1 is in-use: it has 1 attachment (detach first)' },
    });
    // A force delete of a volume already deleting asks again: the host retries, the status stays.
    expect(run(AT.deleting, [{ type: 'DeleteVolume', cascade: false, force: true }]).events).toEqual([{ type: 'VolumeDeleting', cascade: false, force: true }]);
  });
});

describe('volume: extend and retype', () => {
  it('refuses a size that is not larger, naming new_size_gb', () => {
    expect(decide(AT.available, { type: 'ExtendVolume', newSizeGb: 10 })).toEqual({
      rejection: { code: 'INVALID_ARGUMENT', field: 'new_size_gb', message: "new_size_gb: must be larger than the volume's size (10 GiB), got 10" },
    });
  });

  it('returns to available after extending an available volume; a failed extend is error_extending, deletable', () => {
    expect(run(AT.available, [{ type: 'ExtendVolume', newSizeGb: 12 }, { type: 'ReportVolumeExtended', hostId: 'h1', sizeGb: 12 }]).state).toMatchObject({ value: 'available', context: { volume: { sizeGb: 12 } } });
    expect(run(AT.error_extending, [COMMAND.DeleteVolume]).state.value).toBe('deleting');
  });

  it('retypes at once on the same backend; refuses the same type, another backend and a multiattach change while in-use', () => {
    const single = { ...vol, multiattach: false };
    expect(run(available(single), [{ type: 'RetypeVolume', volumeTypeId: 't2', backend: 'lvm', multiattach: true }]).state).toMatchObject({
      value: 'available', context: { volume: { volumeTypeId: 't2', backend: 'lvm', multiattach: true } },
    });
    expect(decide(AT.available, { type: 'RetypeVolume', volumeTypeId: 't1', backend: '', multiattach: true })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'volume_type_id' } });
    expect(decide(AT.available, { type: 'RetypeVolume', volumeTypeId: 't2', backend: 'ceph', multiattach: true })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'available', message: 'RetypeVolume is not allowed: volume v1 is available: type t2 needs backend ceph and the volume is on lvm (migration is not supported)' },
    });
    expect(decide(inUse(single), { type: 'RetypeVolume', volumeTypeId: 't2', backend: '', multiattach: true })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'RetypeVolume is not allowed: volume v1 is in-use: a multiattach change is allowed only while available' },
    });
    expect(run(inUse(single), [{ type: 'RetypeVolume', volumeTypeId: 't2', backend: '', multiattach: false }]).events).toEqual([{ type: 'VolumeRetyped', volumeTypeId: 't2', backend: 'lvm', multiattach: false }]);
  });
});

describe('volume: attachments', () => {
  it('reserves an in-use volume only when multiattach; one attachment per server; attachment ids are unique', () => {
    expect(decide(inUse({ ...vol, multiattach: false }), COMMAND.ReserveAttachment)).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'ReserveAttachment is not allowed: volume v1 is in-use: it is not multiattach' },
    });
    expect(decide(AT['in-use'], { type: 'ReserveAttachment', attachment: att('a2', 's1') })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'ReserveAttachment is not allowed: volume v1 is in-use: server s1 already holds attachment a1 of it' },
    });
    expect(decide(AT['in-use'], { type: 'ReserveAttachment', attachment: att('a1', 's9') })).toMatchObject({ rejection: { code: 'ALREADY_EXISTS', field: 'attachment.id' } });
    expect(decide(AT.available, { type: 'ReserveAttachment', attachment: att('a2', 's2', { status: 'attached' }) })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'attachment.status' } });
    expect(decide(AT.available, { type: 'ReserveAttachment', attachment: att('a2', 's2', { mode: 'wo' as never }) })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'attachment.mode' } });
  });

  it('a second server attaches a multiattach volume; detaching one leaves it in-use, the last makes it available', () => {
    const r = run(AT['in-use'], [
      { type: 'ReserveAttachment', attachment: att('a2', 's2') },
      { type: 'UpdateAttachment', attachmentId: 'a2' },
      { type: 'ReportAttachmentExported', attachmentId: 'a2', hostId: 'h1', connection: c2 },
      { type: 'CompleteAttachment', attachmentId: 'a2', device: '/dev/vdc' },
      { type: 'BeginDetaching', attachmentId: 'a1' },
      { type: 'ReportAttachmentDetached', attachmentId: 'a1' },
    ]);
    expect(r.refusals).toEqual([]);
    expect(r.events.filter((e) => e.type === 'VolumeStatusChanged').map((e) => e.status)).toEqual(['reserved', 'attaching', 'in-use', 'detaching', 'in-use']);
    expect((r.state.context.attachments as Attachment[]).map((a) => [a.id, a.status])).toEqual([['a2', 'attached']]);
    const last = run([...AT['in-use'], ...r.events], [{ type: 'BeginDetaching', attachmentId: 'a2' }, { type: 'ReportAttachmentDetached', attachmentId: 'a2' }]);
    expect(last.state).toMatchObject({ value: 'available', context: { attachments: [] } });
  });

  it('a failed or cancelled attachment is removed and the volume goes back (in-use while another is attached)', () => {
    const second = run(AT['in-use'], [{ type: 'ReserveAttachment', attachment: att('a2', 's2') }, { type: 'UpdateAttachment', attachmentId: 'a2' }]);
    const history = [...AT['in-use'], ...second.events];
    expect(run(history, [{ type: 'ReportAttachmentFailed', attachmentId: 'a2', reason: 'no route to host' }]).events).toEqual([
      { type: 'AttachmentRemoved', attachmentId: 'a2', reason: 'no route to host' },
      moved('in-use', 'attaching'),
    ]);
    expect(run(AT.reserved, [{ type: 'DeleteAttachment', attachmentId: 'a1' }]).state).toMatchObject({ value: 'available', context: { attachments: [] } });
  });

  it("names the attachment's status when it is the wrong one, and refuses an unknown attachment as NOT_FOUND", () => {
    const exported = run(AT.reserved, [{ type: 'UpdateAttachment', attachmentId: 'a1' }]);
    const noExport = [...AT.reserved, ...exported.events];
    expect(decide(noExport, { type: 'CompleteAttachment', attachmentId: 'a1', device: '/dev/vdb' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'attaching', message: 'CompleteAttachment is not allowed: volume v1 is attaching: attachment a1 has no connection yet (its storage host has not exported the volume)' },
    });
    expect(decide(AT['in-use'], { type: 'BeginDetaching', attachmentId: 'a9' })).toEqual({ rejection: { code: 'NOT_FOUND', field: 'attachment_id', message: 'volume v1 has no attachment a9' } });
    // A multiattach volume reserved for a second server: the first, attached, cannot be cancelled.
    const reservedAgain = [...AT['in-use'], ...run(AT['in-use'], [{ type: 'ReserveAttachment', attachment: att('a2', 's2') }]).events];
    expect(decide(reservedAgain, { type: 'DeleteAttachment', attachmentId: 'a1' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'reserved', message: 'DeleteAttachment is not allowed: volume v1 is reserved: attachment a1 is attached (allowed: reserved, attaching)' },
    });
  });
});

describe('volume: snapshots, backups and restores', () => {
  it('records snapshots once, forgets them idempotently', () => {
    const r = run(AT['in-use'], [COMMAND.AddVolumeSnapshot, COMMAND.AddVolumeSnapshot, COMMAND.RemoveVolumeSnapshot, COMMAND.RemoveVolumeSnapshot]);
    expect(r.events).toEqual([{ type: 'VolumeSnapshotAdded', snapshotId: 'snap1' }, { type: 'VolumeSnapshotRemoved', snapshotId: 'snap1' }]);
  });

  it('backs up an in-use volume only with force, and returns to in-use', () => {
    expect(decide(AT['in-use'], { type: 'BeginVolumeBackup', backupId: 'b2', force: false })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'BeginVolumeBackup is not allowed: volume v1 is in-use (allowed: available; with force: in-use)' },
    });
    const r = run(AT['in-use'], [{ type: 'BeginVolumeBackup', backupId: 'b2', force: true }]);
    expect(r.state.context).toMatchObject({ status: 'backing-up', operationId: 'b2', previousStatus: 'in-use' });
    const history = [...AT['in-use'], ...r.events];
    expect(decide(history, { type: 'EndVolumeBackup', backupId: 'b9' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'backing-up', message: 'EndVolumeBackup is not allowed: volume v1 is backing-up: its operation is for backup b2, not b9' },
    });
    expect(run(history, [{ type: 'EndVolumeBackup', backupId: 'b2' }]).state.context).toMatchObject({ status: 'in-use', operationId: '' });
  });

  it('a restore of a larger backup grows the volume, then it is available', () => {
    const r = run(AT.available, [{ type: 'BeginVolumeRestore', backupId: 'b7' }, { type: 'EndVolumeRestore', backupId: 'b7', sizeGb: 25 }]);
    expect(r.events).toEqual([
      { type: 'VolumeRestoreStarted', backupId: 'b7' },
      moved('restoring-backup', 'available'),
      { type: 'VolumeExtended', sizeGb: 25 },
      moved('available', 'restoring-backup'),
    ]);
    expect(r.state.context).toMatchObject({ volume: { sizeGb: 25 }, operationId: '' });
  });

  it('uploads an in-use volume to an image only with force, back to in-use; a failed upload goes back too, keeping the reason', () => {
    expect(decide(AT['in-use'], { type: 'BeginVolumeUpload', imageId: 'img2', force: false })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'in-use', message: 'BeginVolumeUpload is not allowed: volume v1 is in-use (allowed: available; with force: in-use)' },
    });
    const r = run(AT['in-use'], [{ type: 'BeginVolumeUpload', imageId: 'img2', force: true }]);
    expect(r.state.context).toMatchObject({ status: 'uploading', operationId: 'img2', previousStatus: 'in-use' });
    const history = [...AT['in-use'], ...r.events];
    expect(decide(history, { type: 'EndVolumeUpload', imageId: 'img9', reason: '' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'uploading', message: 'EndVolumeUpload is not allowed: volume v1 is uploading: it is uploading to image img2, not img9' },
    });
    expect(decide(history, { type: 'ExtendVolume', newSizeGb: 20 })).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: 'uploading', message: expect.stringContaining('volume v1 is uploading') } });
    expect(run(history, [{ type: 'EndVolumeUpload', imageId: 'img2', reason: '' }]).state.context).toMatchObject({ status: 'in-use', operationId: '' });
    const failed = run(AT.uploading, [{ type: 'EndVolumeUpload', imageId: 'img1', reason: 'object storage unreachable' }]);
    expect(failed.events).toEqual([moved('available', 'uploading', 'object storage unreachable')]);
    expect(decide(AT.available, { type: 'BeginVolumeUpload', imageId: 'not an id', force: false })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'image_id' } });
  });

  it("an admin's reset sets any status Cinder allows, and clears a stuck operation", () => {
    const r = run(AT['backing-up'], [{ type: 'ResetVolumeStatus', status: 'available', reason: 'backup host lost' }]);
    expect(r.events).toEqual([moved('available', 'backing-up', 'backup host lost')]);
    expect(r.state.context.operationId).toBe('');
    expect(decide(AT.error, { type: 'ResetVolumeStatus', status: 'extending', reason: '' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'status' } });
  });
});
