// The volume lifecycle with Cinder's statuses (shared/reference §5.2): creating until its storage
// host reports it made; available; reserved -> attaching -> in-use through Cinder's attachment
// API (create, update with the connector, complete), in-use -> detaching -> available (or in-use
// while another attachment of a multiattach volume stays); extending, backing-up and
// restoring-backup and back; uploading (to an image, Cinder's os-volume_upload_image) and back; deleting -> deleted; the error_* statuses when the storage host
// fails. The status is the machine's state; VolumeStatusChanged moves it, beside the data events.
// VOLUME_RULES says which command runs in which status; volumeRefusal states every other rule,
// and the guard and the decider's explanation both use it.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import type { Rejection } from '../kernel/rejection.js';
import { failedPrecondition, invalidArgument } from '../kernel/rejection.js';
import { applyMask } from '../kernel/resource.machine.js';
import { emptyConnection, VOLUME_STATUSES, type Attachment, type Connection, type Volume, type VolumeStatus } from './block.types.js';
import { clipReason, fieldProblem } from './block.validation.js';
import { commandsAllowed, liveStates, statusRefusal, statusTransitions, type Ev, type StatusRules } from './status-rules.js';

export interface VolumeContext {
  volume: Volume | null;
  status: VolumeStatus;
  /** The status before the current one (Cinder's previous_status): where extend and backup return. */
  previousStatus: string;
  /** The storage host holding it. */
  hostId: string;
  attachments: Attachment[];
  snapshotIds: string[];
  /** The backup being taken (backing-up) or restored (restoring-backup), the image uploaded to (uploading); '' otherwise. */
  operationId: string;
}

const LIVE = VOLUME_STATUSES;

/** Which command runs in which status; force widens DeleteVolume (os-force_delete) and BeginVolumeBackup. */
export const VOLUME_RULES: StatusRules<VolumeStatus> = {
  statuses: LIVE,
  allowed: {
    ReportVolumeCreated: ['creating'],
    ReportVolumeFailed: ['creating', 'deleting', 'extending', 'restoring-backup'],
    UpdateVolume: LIVE.filter((s) => s !== 'deleting'),
    DeleteVolume: ['available', 'error', 'error_restoring', 'error_extending'],
    ReportVolumeDeleted: ['deleting'],
    // Cinder: in-use from microversion 3.42; never reserved, attaching, ...
    ExtendVolume: ['available', 'in-use'],
    ReportVolumeExtended: ['extending'],
    RetypeVolume: ['available', 'in-use'],
    // Cinder's _attachment_reserve: available, or in-use when multiattach (a rule below); never
    // reserved, so that two reservations cannot race for one connection.
    ReserveAttachment: ['available', 'in-use'],
    UpdateAttachment: ['reserved'],
    ReportAttachmentExported: ['attaching'],
    CompleteAttachment: ['attaching'],
    ReportAttachmentFailed: ['reserved', 'attaching'],
    BeginDetaching: ['in-use'],
    DeleteAttachment: ['reserved', 'attaching'],
    ReportAttachmentDetached: ['detaching'],
    // Cinder >= 3.66 snapshots in-use volumes without force.
    AddVolumeSnapshot: ['available', 'in-use'],
    // A snapshot deleted while its volume is in any status (a cascade delete: deleting) is forgotten.
    RemoveVolumeSnapshot: LIVE,
    BeginVolumeBackup: ['available'],
    EndVolumeBackup: ['backing-up'],
    BeginVolumeRestore: ['available'],
    EndVolumeRestore: ['restoring-backup'],
    // Cinder's os-volume_upload_image: available; in-use only with force.
    BeginVolumeUpload: ['available'],
    EndVolumeUpload: ['uploading'],
    ResetVolumeStatus: LIVE,
  },
  forced: {
    // os-force_delete skips the status check (attachments still refuse it).
    DeleteVolume: LIVE,
    // Cinder: backing up an in-use volume needs force=true.
    BeginVolumeBackup: ['in-use'],
    // Cinder: uploading an in-use volume needs force=true.
    BeginVolumeUpload: ['in-use'],
  },
};

/** The commands a user may send a volume in this status (force: an admin's forced ones too). */
export const volumeCommandsAllowed = (status: VolumeStatus, options: { force?: boolean } = {}): string[] => commandsAllowed(VOLUME_RULES, status, options);

/** Where a storage host's failure report takes each status it applies to (a failed upload goes back: EndVolumeUpload). */
const FAILED: Partial<Record<VolumeStatus, VolumeStatus>> = {
  creating: 'error',
  deleting: 'error_deleting',
  extending: 'error_extending',
  'restoring-backup': 'error_restoring',
};

const HOST_REPORTS = new Set(['ReportVolumeCreated', 'ReportVolumeFailed', 'ReportVolumeDeleted', 'ReportVolumeExtended', 'ReportAttachmentExported']);
const ATTACHMENT_COMMANDS: Record<string, Attachment['status'][]> = {
  UpdateAttachment: ['reserved'],
  ReportAttachmentExported: ['attaching'],
  CompleteAttachment: ['attaching'],
  ReportAttachmentFailed: ['reserved', 'attaching'],
  BeginDetaching: ['attached'],
  DeleteAttachment: ['reserved', 'attaching'],
  ReportAttachmentDetached: ['detaching'],
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const sameConnection = (a: Connection, b: Connection) => a.host === b.host && a.port === b.port && a.exportName === b.exportName;

/** Why this command may not run on this volume (undefined: it may). */
export function volumeRefusal(context: VolumeContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'CreateVolume') {
    if (event.meta && event.volume.id !== id) return invalidArgument('volume.id', `"${event.volume.id}" is not the volume's id "${id}"`);
    return undefined;
  }
  const status = context.status;
  const volume = context.volume!;
  const byStatus = statusRefusal(VOLUME_RULES, 'volume', status, event);
  if (byStatus) return byStatus;
  const refuse = (message: string) => failedPrecondition(status, `${event.type} is not allowed: volume ${id} is ${status}: ${message}`);
  if (HOST_REPORTS.has(event.type) && event.hostId !== context.hostId) {
    return failedPrecondition(status, `${event.type} is not allowed: volume ${id} is held by storage host ${context.hostId}, not ${event.hostId}`);
  }
  const wanted = ATTACHMENT_COMMANDS[event.type];
  if (wanted) {
    const a = context.attachments.find((x) => x.id === event.attachmentId);
    if (!a) return { code: 'NOT_FOUND', field: 'attachment_id', message: `volume ${id} has no attachment ${event.attachmentId}` };
    if (!wanted.includes(a.status)) return refuse(`attachment ${a.id} is ${a.status} (allowed: ${wanted.join(', ')})`);
    if (event.type === 'CompleteAttachment' && !a.connection.host) return refuse(`attachment ${a.id} has no connection yet (its storage host has not exported the volume)`);
  }
  switch (event.type) {
    case 'DeleteVolume':
      if (context.attachments.length > 0) return refuse(`it has ${plural(context.attachments.length, 'attachment')} (detach first)`);
      if (!event.cascade && context.snapshotIds.length > 0) return refuse(`it has ${plural(context.snapshotIds.length, 'snapshot')} (delete them first, or cascade)`);
      return undefined;
    case 'ExtendVolume':
      if (event.newSizeGb <= volume.sizeGb) return invalidArgument('new_size_gb', `must be larger than the volume's size (${volume.sizeGb} GiB), got ${event.newSizeGb}`);
      return undefined;
    case 'RetypeVolume':
      if (event.volumeTypeId === volume.volumeTypeId) return invalidArgument('volume_type_id', `the volume is already of type ${volume.volumeTypeId} (a retype needs another type)`);
      if (event.backend && event.backend !== volume.backend) return refuse(`type ${event.volumeTypeId} needs backend ${event.backend} and the volume is on ${volume.backend || 'no named backend'} (migration is not supported)`);
      if (Boolean(event.multiattach) !== volume.multiattach && status !== 'available') return refuse('a multiattach change is allowed only while available');
      return undefined;
    case 'ReserveAttachment': {
      const a = event.attachment as Attachment;
      if (context.attachments.some((x) => x.id === a.id)) return { code: 'ALREADY_EXISTS', field: 'attachment.id', message: `volume ${id} already has attachment ${a.id}` };
      if (status === 'in-use' && !volume.multiattach) return refuse('it is not multiattach');
      const held = context.attachments.find((x) => x.serverId === a.serverId);
      if (held) return refuse(`server ${a.serverId} already holds attachment ${held.id} of it`);
      return undefined;
    }
    case 'EndVolumeBackup':
    case 'EndVolumeRestore':
      if (event.backupId !== context.operationId) return refuse(`its operation is for backup ${context.operationId}, not ${event.backupId}`);
      return undefined;
    case 'EndVolumeUpload':
      if (event.imageId !== context.operationId) return refuse(`it is uploading to image ${context.operationId}, not ${event.imageId}`);
      return undefined;
  }
  return undefined;
}

const allowed = ({ context, event }: { context: VolumeContext; event: Ev }) => volumeRefusal(context, event) === undefined;
const emit = (make: (c: VolumeContext, e: Ev) => Record<string, unknown>[]) =>
  enqueueActions(({ context, event, enqueue }: { context: VolumeContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  });
const command = (make: (c: VolumeContext, e: Ev) => Record<string, unknown>[]) => ({ guard: allowed, actions: emit(make) });

const moveTo = (c: VolumeContext, status: VolumeStatus, reason = '') =>
  c.status === status ? [] : [{ type: 'VolumeStatusChanged', status, previousStatus: c.status, reason }];
/** Once an attachment is gone: in-use while another is attached, else available. */
const settled = (c: VolumeContext, without: string): VolumeStatus =>
  c.attachments.some((a) => a.id !== without && a.status === 'attached') ? 'in-use' : 'available';
/** Back from extending, backing-up or uploading: Cinder's previous_status (in-use or available). */
const back = (c: VolumeContext): VolumeStatus => (c.previousStatus === 'in-use' || c.previousStatus === 'available' ? c.previousStatus : settled(c, ''));
const attachment = (c: VolumeContext, e: Ev) => c.attachments.find((a) => a.id === e.attachmentId)!;
const removed = (c: VolumeContext, e: Ev, reason: string) => [{ type: 'AttachmentRemoved', attachmentId: e.attachmentId, reason }, ...moveTo(c, settled(c, e.attachmentId))];

const COMMANDS: Record<string, unknown> = {
  ReportVolumeCreated: command((c) => moveTo(c, 'available')),
  ReportVolumeFailed: command((c, e) => moveTo(c, FAILED[c.status]!, clipReason(e.reason))),
  UpdateVolume: command((c, e) => [{ type: 'VolumeUpdated', volume: applyMask(c.volume as never, e.volume, e.updateMask) }]),
  DeleteVolume: command((c, e) => [{ type: 'VolumeDeleting', cascade: Boolean(e.cascade), force: Boolean(e.force) }, ...moveTo(c, 'deleting')]),
  ReportVolumeDeleted: command((c) => [{ type: 'VolumeDeleted', volume: c.volume }]),
  ExtendVolume: command((c, e) => [{ type: 'VolumeExtending', newSizeGb: e.newSizeGb }, ...moveTo(c, 'extending')]),
  ReportVolumeExtended: command((c, e) => [{ type: 'VolumeExtended', sizeGb: e.sizeGb }, ...moveTo(c, back(c))]),
  // No migration: the volume stays on its backend, so the new type takes effect at once (Cinder's
  // retype without migration; the retyping status is not needed in between).
  RetypeVolume: command((c, e) => [{ type: 'VolumeRetyped', volumeTypeId: e.volumeTypeId, backend: c.volume!.backend, multiattach: Boolean(e.multiattach) }]),
  ReserveAttachment: command((c, e) => [
    { type: 'AttachmentReserved', attachment: { ...e.attachment, status: 'reserved', connection: emptyConnection(), device: '' } },
    ...moveTo(c, 'reserved'),
  ]),
  UpdateAttachment: command((c, e) => [{ type: 'AttachmentUpdated', attachment: { ...attachment(c, e), status: 'attaching' } }, ...moveTo(c, 'attaching')]),
  ReportAttachmentExported: command((c, e) => {
    const a = attachment(c, e);
    // A repeated report of the same export: nothing new.
    return sameConnection(a.connection, e.connection) ? [] : [{ type: 'AttachmentUpdated', attachment: { ...a, connection: e.connection } }];
  }),
  CompleteAttachment: command((c, e) => [{ type: 'AttachmentUpdated', attachment: { ...attachment(c, e), status: 'attached', device: e.device } }, ...moveTo(c, 'in-use')]),
  ReportAttachmentFailed: command((c, e) => removed(c, e, clipReason(e.reason))),
  BeginDetaching: command((c, e) => [{ type: 'AttachmentUpdated', attachment: { ...attachment(c, e), status: 'detaching' } }, ...moveTo(c, 'detaching')]),
  DeleteAttachment: command((c, e) => removed(c, e, '')),
  ReportAttachmentDetached: command((c, e) => removed(c, e, '')),
  // A snapshot already recorded (a retry): nothing new.
  AddVolumeSnapshot: command((c, e) => (c.snapshotIds.includes(e.snapshotId) ? [] : [{ type: 'VolumeSnapshotAdded', snapshotId: e.snapshotId }])),
  RemoveVolumeSnapshot: command((c, e) => (c.snapshotIds.includes(e.snapshotId) ? [{ type: 'VolumeSnapshotRemoved', snapshotId: e.snapshotId }] : [])),
  BeginVolumeBackup: command((c, e) => [{ type: 'VolumeBackupStarted', backupId: e.backupId }, ...moveTo(c, 'backing-up')]),
  EndVolumeBackup: command((c) => moveTo(c, back(c))),
  BeginVolumeRestore: command((c, e) => [{ type: 'VolumeRestoreStarted', backupId: e.backupId }, ...moveTo(c, 'restoring-backup')]),
  EndVolumeRestore: command((c, e) => [...(e.sizeGb > c.volume!.sizeGb ? [{ type: 'VolumeExtended', sizeGb: e.sizeGb }] : []), ...moveTo(c, 'available')]),
  BeginVolumeUpload: command((c, e) => [{ type: 'VolumeUploadStarted', imageId: e.imageId }, ...moveTo(c, 'uploading')]),
  // Done or failed, the volume goes back to its previous status (Cinder); a failure's reason is kept.
  EndVolumeUpload: command((c, e) => moveTo(c, back(c), clipReason(e.reason))),
  ResetVolumeStatus: command((c, e) => moveTo(c, e.status, clipReason(e.reason))),
};

const withVolume = (change: (v: Volume, e: Ev) => Partial<Volume>) =>
  assign(({ context, event }: { context: VolumeContext; event: Ev }) => ({ volume: { ...context.volume!, ...change(context.volume!, event) } }));
const withAttachments = (change: (list: Attachment[], e: Ev) => Attachment[]) =>
  assign(({ context, event }: { context: VolumeContext; event: Ev }) => ({ attachments: change(context.attachments, event) }));

const EVENTS: Record<string, unknown> = {
  VolumeStatusChanged: statusTransitions(LIVE, (status) =>
    assign(({ context, event }: { context: VolumeContext; event: Ev }) => ({
      status,
      previousStatus: event.previousStatus as string,
      operationId: status === 'backing-up' || status === 'restoring-backup' || status === 'uploading' ? context.operationId : '',
    })),
  ),
  VolumeUpdated: { actions: assign(({ event }: { event: Ev }) => ({ volume: event.volume as Volume })) },
  VolumeDeleting: {},
  VolumeDeleted: { target: 'deleted' },
  VolumeExtending: {},
  VolumeExtended: { actions: withVolume((_v, e) => ({ sizeGb: e.sizeGb })) },
  VolumeRetyped: { actions: withVolume((_v, e) => ({ volumeTypeId: e.volumeTypeId, backend: e.backend, multiattach: e.multiattach })) },
  AttachmentReserved: { actions: withAttachments((list, e) => [...list, e.attachment]) },
  AttachmentUpdated: { actions: withAttachments((list, e) => list.map((a) => (a.id === e.attachment.id ? e.attachment : a))) },
  AttachmentRemoved: { actions: withAttachments((list, e) => list.filter((a) => a.id !== e.attachmentId)) },
  VolumeSnapshotAdded: { actions: assign(({ context, event }: { context: VolumeContext; event: Ev }) => ({ snapshotIds: [...context.snapshotIds, event.snapshotId] })) },
  VolumeSnapshotRemoved: { actions: assign(({ context, event }: { context: VolumeContext; event: Ev }) => ({ snapshotIds: context.snapshotIds.filter((s) => s !== event.snapshotId) })) },
  VolumeBackupStarted: { actions: assign(({ event }: { event: Ev }) => ({ operationId: event.backupId as string })) },
  VolumeRestoreStarted: { actions: assign(({ event }: { event: Ev }) => ({ operationId: event.backupId as string })) },
  VolumeUploadStarted: { actions: assign(({ event }: { event: Ev }) => ({ operationId: event.imageId as string })) },
};

export const volumeMachine = setup({}).createMachine({
  id: 'volume',
  initial: 'absent',
  context: { volume: null, status: 'creating', previousStatus: '', hostId: '', attachments: [], snapshotIds: [], operationId: '' } as VolumeContext,
  states: {
    absent: {
      on: {
        CreateVolume: command((_c, e) => [{ type: 'VolumeCreated', volume: { ...e.volume, createdAtMs: e.meta!.issuedAtMs }, hostId: e.hostId }]),
        VolumeCreated: {
          target: 'creating',
          actions: assign(({ event }: { event: Ev }) => ({
            volume: event.volume as Volume,
            status: 'creating' as VolumeStatus,
            previousStatus: '',
            hostId: event.hostId as string,
            attachments: [],
            snapshotIds: [],
            operationId: '',
          })),
        },
      },
    },
    ...liveStates(VOLUME_RULES, COMMANDS, EVENTS),
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const VOLUME_COMMANDS = ['CreateVolume', ...Object.keys(VOLUME_RULES.allowed)] as const;
export const VOLUME_EVENTS = [
  'VolumeCreated',
  'VolumeStatusChanged',
  'VolumeUpdated',
  'VolumeDeleting',
  'VolumeDeleted',
  'VolumeExtending',
  'VolumeExtended',
  'VolumeRetyped',
  'AttachmentReserved',
  'AttachmentUpdated',
  'AttachmentRemoved',
  'VolumeSnapshotAdded',
  'VolumeSnapshotRemoved',
  'VolumeBackupStarted',
  'VolumeRestoreStarted',
  'VolumeUploadStarted',
] as const;
