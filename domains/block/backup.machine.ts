// The backup lifecycle with Cinder's statuses: creating until its backup host reports the data
// stored (with its sha256 and size), available; restoring onto a volume and back to available
// (a failed restore too: the backup itself is intact, as in Cinder); deleting -> deleted; error
// and error_deleting when the host fails. BackupStatusChanged moves the status. BACKUP_RULES says
// which command runs in which status; backupRefusal states the other rules.
import { assign, enqueueActions, setup, type AnyStateMachine } from 'xstate';
import { failedPrecondition, invalidArgument, type Rejection } from '../kernel/rejection.js';
import { BACKUP_STATUSES, type Backup, type BackupStatus } from './block.types.js';
import { clipReason, fieldProblem } from './block.validation.js';
import { commandsAllowed, liveStates, statusRefusal, statusTransitions, type Ev, type StatusRules } from './status-rules.js';

export interface BackupContext {
  backup: Backup | null;
  status: BackupStatus;
  /** The host storing it. */
  hostId: string;
  /** sha256 of the stored data, lower-case hex; '' until stored. */
  checksum: string;
  sizeBytes: number;
  /** The volume being restored onto (restoring); '' otherwise. */
  restoreVolumeId: string;
}

const LIVE = BACKUP_STATUSES;

export const BACKUP_RULES: StatusRules<BackupStatus> = {
  statuses: LIVE,
  allowed: {
    ReportBackupCreated: ['creating'],
    ReportBackupFailed: ['creating', 'deleting', 'restoring'],
    DeleteBackup: ['available', 'error'],
    ReportBackupDeleted: ['deleting'],
    RestoreBackup: ['available'],
    ReportBackupRestored: ['restoring'],
    // Cinder's os-reset_status for backups (not in the contract; Cinder has it).
    ResetBackupStatus: LIVE,
  },
  // Cinder: force delete skips the status check (where the backup driver supports it).
  forced: { DeleteBackup: LIVE },
};

/** The commands a user may send a backup in this status (force: an admin's forced ones too). */
export const backupCommandsAllowed = (status: BackupStatus, options: { force?: boolean } = {}): string[] => commandsAllowed(BACKUP_RULES, status, options);

const FAILED: Partial<Record<BackupStatus, BackupStatus>> = { creating: 'error', deleting: 'error_deleting', restoring: 'available' };
const HOST_REPORTS = new Set(['ReportBackupCreated', 'ReportBackupFailed', 'ReportBackupDeleted', 'ReportBackupRestored']);

/** Why this command may not run on this backup (undefined: it may). */
export function backupRefusal(context: BackupContext, event: Ev): Rejection | undefined {
  const fields = fieldProblem(event);
  if (fields) return fields;
  const id = event.meta?.aggregateId ?? '';
  if (event.type === 'CreateBackup') {
    if (event.meta && event.backup.id !== id) return invalidArgument('backup.id', `"${event.backup.id}" is not the backup's id "${id}"`);
    return undefined;
  }
  const status = context.status;
  const byStatus = statusRefusal(BACKUP_RULES, 'backup', status, event);
  if (byStatus) return byStatus;
  if (HOST_REPORTS.has(event.type) && event.hostId !== context.hostId) {
    return failedPrecondition(status, `${event.type} is not allowed: backup ${id} is held by host ${context.hostId}, not ${event.hostId}`);
  }
  if (event.type === 'ReportBackupRestored' && event.volumeId !== context.restoreVolumeId) {
    return failedPrecondition(status, `${event.type} is not allowed: backup ${id} is restoring onto volume ${context.restoreVolumeId}, not ${event.volumeId}`);
  }
  return undefined;
}

const allowed = ({ context, event }: { context: BackupContext; event: Ev }) => backupRefusal(context, event) === undefined;
const command = (make: (c: BackupContext, e: Ev) => Record<string, unknown>[]) => ({
  guard: allowed,
  actions: enqueueActions(({ context, event, enqueue }: { context: BackupContext; event: Ev; enqueue: any }) => {
    for (const e of make(context, event)) enqueue.emit(e);
  }),
});
const moveTo = (c: BackupContext, status: BackupStatus, reason = '') => (c.status === status ? [] : [{ type: 'BackupStatusChanged', status, reason }]);

const COMMANDS: Record<string, unknown> = {
  ReportBackupCreated: command((c, e) => [{ type: 'BackupStored', checksum: e.checksum, sizeBytes: e.sizeBytes }, ...moveTo(c, 'available')]),
  ReportBackupFailed: command((c, e) => moveTo(c, FAILED[c.status]!, clipReason(e.reason))),
  DeleteBackup: command((c, e) => [{ type: 'BackupDeleting', force: Boolean(e.force) }, ...moveTo(c, 'deleting')]),
  ReportBackupDeleted: command((c) => [{ type: 'BackupDeleted', backup: c.backup }]),
  RestoreBackup: command((c, e) => [{ type: 'BackupRestoring', volumeId: e.volumeId }, ...moveTo(c, 'restoring')]),
  ReportBackupRestored: command((c) => moveTo(c, 'available')),
  ResetBackupStatus: command((c, e) => moveTo(c, e.status, clipReason(e.reason))),
};

const EVENTS: Record<string, unknown> = {
  BackupStatusChanged: statusTransitions(LIVE, (status) =>
    assign(({ context }: { context: BackupContext }) => ({ status, restoreVolumeId: status === 'restoring' ? context.restoreVolumeId : '' })),
  ),
  BackupStored: { actions: assign(({ event }: { event: Ev }) => ({ checksum: event.checksum as string, sizeBytes: event.sizeBytes as number })) },
  BackupDeleting: {},
  BackupDeleted: { target: 'deleted' },
  BackupRestoring: { actions: assign(({ event }: { event: Ev }) => ({ restoreVolumeId: event.volumeId as string })) },
};

export const backupMachine = setup({}).createMachine({
  id: 'backup',
  initial: 'absent',
  context: { backup: null, status: 'creating', hostId: '', checksum: '', sizeBytes: 0, restoreVolumeId: '' } as BackupContext,
  states: {
    absent: {
      on: {
        CreateBackup: command((_c, e) => [{ type: 'BackupCreated', backup: { ...e.backup, createdAtMs: e.meta!.issuedAtMs }, hostId: e.hostId }]),
        BackupCreated: {
          target: 'creating',
          actions: assign(({ event }: { event: Ev }) => ({
            backup: event.backup as Backup,
            status: 'creating' as BackupStatus,
            hostId: event.hostId as string,
            checksum: '',
            sizeBytes: 0,
            restoreVolumeId: '',
          })),
        },
      },
    },
    ...liveStates(BACKUP_RULES, COMMANDS, EVENTS),
    deleted: {},
  } as never,
}) as unknown as AnyStateMachine;

export const BACKUP_COMMANDS = ['CreateBackup', ...Object.keys(BACKUP_RULES.allowed)] as const;
export const BACKUP_EVENTS = ['BackupCreated', 'BackupStatusChanged', 'BackupStored', 'BackupDeleting', 'BackupDeleted', 'BackupRestoring'] as const;
