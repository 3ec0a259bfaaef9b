// The block API's multi-aggregate writes, done as small sagas with compensation (as the network
// API's are): each step is a command to one aggregate, and a failed step gives back what the
// earlier ones took, so nothing stays held.
//
//   create volume   = reserve quota (volumes, gigabytes) + CreateVolume on the chosen host
//   extend volume   = adjust the volume's quota holding to the new size + ExtendVolume
//   create snapshot = reserve quota (snapshots, gigabytes) + AddVolumeSnapshot + CreateSnapshot
//   create backup   = reserve quota (backups, backup_gigabytes) + BeginVolumeBackup + CreateBackup
//   restore backup  = BeginVolumeRestore on the target volume + RestoreBackup
//   attach          = ReserveAttachment + UpdateAttachment (the connector: the server's host)
//
// What a storage host finishes later (the quota of a deleted volume, snapshot or backup) is given
// back by the block conductor (infra/sagas/block.conductor.ts) when the deletion is reported.
// Command ids derive from the project, the request and the step: a retried request sends the same
// commands and meets their original replies, so it makes the same resource, or fails the same way.
import type { Attachment, Backup, Snapshot, Volume } from '../../domains/block/block.types.js';
import type { Actor, Reply } from '../../infra/envelope/envelope.js';
import { ApiError } from '../errors.js';
import type { BlockWriter } from './block.writer.js';

const refused = (reply: Reply) => (reply.kind === 'rejected' ? reply.rejection : undefined);

export interface SagaContext {
  writer: BlockWriter;
  actor: Actor;
  projectId: string;
  requestId: string;
}

export const step = (s: SagaContext, kind: string, id: string, name: string) => ({ commandId: `block/${s.projectId}/${s.requestId}/${kind}/${id}/${name}`, correlationId: s.requestId });

/** Runs the first command; on refusal undoes nothing and throws it. */
async function first(s: SagaContext, aggregateType: string, id: string, command: Record<string, unknown> & { type: string }, kind: string, resourceId: string, name: string): Promise<void> {
  const reply = await s.writer.reply(aggregateType, id, command, s.actor, step(s, kind, resourceId, name));
  const no = refused(reply);
  if (no) throw new ApiError(no);
}

/** Runs a later command; on refusal runs the compensations (last first) and throws the refusal. */
async function then(s: SagaContext, aggregateType: string, id: string, command: Record<string, unknown> & { type: string }, kind: string, resourceId: string, name: string, undo: (() => Promise<unknown>)[]): Promise<void> {
  const reply = await s.writer.reply(aggregateType, id, command, s.actor, step(s, kind, resourceId, name));
  const no = refused(reply);
  if (!no) return;
  for (const u of [...undo].reverse()) await u();
  throw new ApiError(no);
}

const release = (s: SagaContext, kind: string, consumerId: string) => () =>
  s.writer.send('block_quota', s.projectId, { type: 'ReleaseBlockQuota', consumerId }, s.actor, step(s, kind, consumerId, 'release'));

export async function createVolume(s: SagaContext, volume: Volume, hostId: string): Promise<void> {
  await first(s, 'block_quota', s.projectId, { type: 'ReserveBlockQuota', consumerId: volume.id, usage: { volumes: 1, gigabytes: volume.sizeGb } }, 'volume', volume.id, 'reserve');
  await then(s, 'volume', volume.id, { type: 'CreateVolume', volume, hostId }, 'volume', volume.id, 'create', [release(s, 'volume', volume.id)]);
}

export async function extendVolume(s: SagaContext, volume: Pick<Volume, 'id' | 'sizeGb'>, newSizeGb: number): Promise<void> {
  const holding = (sizeGb: number) => ({ type: 'AdjustBlockQuota', consumerId: volume.id, usage: { volumes: 1, gigabytes: sizeGb } });
  await first(s, 'block_quota', s.projectId, holding(newSizeGb), 'volume', volume.id, `grow-${newSizeGb}`);
  await then(s, 'volume', volume.id, { type: 'ExtendVolume', newSizeGb }, 'volume', volume.id, `extend-${newSizeGb}`, [
    () => s.writer.send('block_quota', s.projectId, holding(volume.sizeGb), s.actor, step(s, 'volume', volume.id, `shrink-${newSizeGb}`)),
  ]);
}

export async function createSnapshot(s: SagaContext, snapshot: Snapshot, hostId: string): Promise<void> {
  await first(s, 'block_quota', s.projectId, { type: 'ReserveBlockQuota', consumerId: snapshot.id, usage: { snapshots: 1, gigabytes: snapshot.sizeGb } }, 'snapshot', snapshot.id, 'reserve');
  const undoQuota = release(s, 'snapshot', snapshot.id);
  await then(s, 'volume', snapshot.volumeId, { type: 'AddVolumeSnapshot', snapshotId: snapshot.id }, 'snapshot', snapshot.id, 'add', [undoQuota]);
  const undoAdd = () => s.writer.send('volume', snapshot.volumeId, { type: 'RemoveVolumeSnapshot', snapshotId: snapshot.id }, s.actor, step(s, 'snapshot', snapshot.id, 'remove'));
  await then(s, 'snapshot', snapshot.id, { type: 'CreateSnapshot', snapshot, hostId }, 'snapshot', snapshot.id, 'create', [undoQuota, undoAdd]);
}

export async function createBackup(s: SagaContext, backup: Backup, hostId: string, force: boolean): Promise<void> {
  await first(s, 'block_quota', s.projectId, { type: 'ReserveBlockQuota', consumerId: backup.id, usage: { backups: 1, backup_gigabytes: backup.sizeGb } }, 'backup', backup.id, 'reserve');
  const undoQuota = release(s, 'backup', backup.id);
  await then(s, 'volume', backup.volumeId, { type: 'BeginVolumeBackup', backupId: backup.id, force }, 'backup', backup.id, 'begin', [undoQuota]);
  const undoBegin = () => s.writer.send('volume', backup.volumeId, { type: 'EndVolumeBackup', backupId: backup.id }, s.actor, step(s, 'backup', backup.id, 'end'));
  await then(s, 'backup', backup.id, { type: 'CreateBackup', backup, hostId }, 'backup', backup.id, 'create', [undoQuota, undoBegin]);
}

export async function restoreBackup(s: SagaContext, backupId: string, volume: Pick<Volume, 'id' | 'sizeGb'>): Promise<void> {
  await first(s, 'volume', volume.id, { type: 'BeginVolumeRestore', backupId }, 'restore', backupId, `begin-${volume.id}`);
  await then(s, 'backup', backupId, { type: 'RestoreBackup', volumeId: volume.id }, 'restore', backupId, `restore-${volume.id}`, [
    () => s.writer.send('volume', volume.id, { type: 'EndVolumeRestore', backupId, sizeGb: volume.sizeGb }, s.actor, step(s, 'restore', backupId, `end-${volume.id}`)),
  ]);
}

export async function attachVolume(s: SagaContext, attachment: Attachment, volumeId: string): Promise<void> {
  await first(s, 'volume', volumeId, { type: 'ReserveAttachment', attachment }, 'attachment', attachment.id, 'reserve');
  await then(s, 'volume', volumeId, { type: 'UpdateAttachment', attachmentId: attachment.id }, 'attachment', attachment.id, 'update', [
    () => s.writer.send('volume', volumeId, { type: 'DeleteAttachment', attachmentId: attachment.id }, s.actor, step(s, 'attachment', attachment.id, 'cancel')),
  ]);
}
