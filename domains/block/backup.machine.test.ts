// The backup lifecycle as Cinder runs it, through the decider: every (status, command) pair
// against the contract's table, then the stored checksum, restores and their failure, the
// holding host, force delete and reset.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { blockAggregate } from './block.deciders.js';
import { BACKUP_STATUSES, type BackupStatus } from './block.types.js';
import { BACKUP_COMMANDS, BACKUP_RULES, backupCommandsAllowed } from './backup.machine.js';

type M = Message & Record<string, any>;
const backupDecider = blockAggregate('backup').decider;

const backup = { id: 'b1', projectId: 'p1', volumeId: 'v1', snapshotId: '', name: 'weekly', description: '', sizeGb: 10, createdAtMs: 1_767_225_600_000 };
const sum = 'a'.repeat(64);
const moved = (status: string, reason = ''): M => ({ type: 'BackupStatusChanged', status, reason });
const created: M[] = [{ type: 'BackupCreated', backup, hostId: 'bk1' }];
const available = [...created, { type: 'BackupStored', checksum: sum, sizeBytes: 4096 }, moved('available')];
const deleting = [...available, { type: 'BackupDeleting', force: false }, moved('deleting')];
const AT: Record<BackupStatus, M[]> = {
  creating: created,
  available,
  deleting,
  restoring: [...available, { type: 'BackupRestoring', volumeId: 'v2' }, moved('restoring')],
  error: [...created, moved('error', 'store full')],
  error_deleting: [...deleting, moved('error_deleting', 'busy')],
};

const LIVE = BACKUP_STATUSES;
/** The contract's statuses per command (and Cinder's reset), written out here, without force. */
const LEGAL: Record<string, readonly string[]> = {
  ReportBackupCreated: ['creating'],
  ReportBackupFailed: ['creating', 'deleting', 'restoring'],
  DeleteBackup: ['available', 'error'],
  ReportBackupDeleted: ['deleting'],
  RestoreBackup: ['available'],
  ReportBackupRestored: ['restoring'],
  ResetBackupStatus: LIVE,
};
const COMMAND: Record<string, M> = {
  ReportBackupCreated: { type: 'ReportBackupCreated', hostId: 'bk1', checksum: sum, sizeBytes: 4096 },
  ReportBackupFailed: { type: 'ReportBackupFailed', hostId: 'bk1', reason: 'io error' },
  DeleteBackup: { type: 'DeleteBackup', force: false },
  ReportBackupDeleted: { type: 'ReportBackupDeleted', hostId: 'bk1' },
  RestoreBackup: { type: 'RestoreBackup', volumeId: 'v3' },
  ReportBackupRestored: { type: 'ReportBackupRestored', hostId: 'bk1', volumeId: 'v2' },
  ResetBackupStatus: { type: 'ResetBackupStatus', status: 'error', reason: 'stuck' },
};
const FAILED: Record<string, string> = { creating: 'error', deleting: 'error_deleting', restoring: 'available' };
const OUTCOME: Record<string, (s: BackupStatus) => { events: string[]; to: string }> = {
  ReportBackupCreated: () => ({ events: ['BackupStored', 'BackupStatusChanged'], to: 'available' }),
  ReportBackupFailed: (s) => ({ events: ['BackupStatusChanged'], to: FAILED[s] }),
  DeleteBackup: () => ({ events: ['BackupDeleting', 'BackupStatusChanged'], to: 'deleting' }),
  ReportBackupDeleted: () => ({ events: ['BackupDeleted'], to: 'deleted' }),
  RestoreBackup: () => ({ events: ['BackupRestoring', 'BackupStatusChanged'], to: 'restoring' }),
  ReportBackupRestored: () => ({ events: ['BackupStatusChanged'], to: 'available' }),
  ResetBackupStatus: (s) => ({ events: s === 'error' ? [] : ['BackupStatusChanged'], to: 'error' }),
};

const decide = (history: M[], command: M) => backupDecider.decide(fold(backupDecider, history), command, testContext({ aggregateId: 'b1', version: history.length }));

describe('backup: every (status, command) pair', () => {
  it('covers every command, and the fixtures reach their statuses', () => {
    expect(Object.keys(COMMAND).sort()).toEqual(BACKUP_COMMANDS.filter((c) => c !== 'CreateBackup').sort());
    expect(Object.keys(LEGAL).sort()).toEqual(Object.keys(BACKUP_RULES.allowed).sort());
    for (const s of BACKUP_STATUSES) expect(fold(backupDecider, AT[s]).value).toBe(s);
  });

  for (const status of BACKUP_STATUSES) {
    for (const type of Object.keys(COMMAND)) {
      const legal = LEGAL[type].includes(status);
      it(`${status}: ${type} is ${legal ? 'legal' : 'refused'}`, () => {
        const d = decide(AT[status], COMMAND[type]);
        if (legal) {
          if (!('events' in d)) throw new Error(d.rejection.message);
          const want = OUTCOME[type](status);
          expect(d.events.map((e) => e.type)).toEqual(want.events);
          expect(fold(backupDecider, d.events, fold(backupDecider, AT[status])).value).toBe(want.to);
        } else {
          expect(d).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: status, message: expect.stringContaining(`${type} is not allowed: backup b1 is ${status} (allowed: `) } });
        }
      });
    }
  }

  it('is NOT_FOUND before creation and after deletion; allowedCommands is the table with force', () => {
    const gone = [...deleting, { type: 'BackupDeleted', backup }];
    for (const type of Object.keys(COMMAND)) {
      expect(decide([], COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: 'backup b1 does not exist' } });
      expect(decide(gone, COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: 'backup b1 does not exist' } });
    }
    for (const s of BACKUP_STATUSES) expect(backupDecider.allowedCommands(fold(backupDecider, AT[s])).sort()).toEqual(backupCommandsAllowed(s, { force: true }).sort());
  });
});

describe('backup lifecycle', () => {
  it('records the checksum and size its host stored; a restore goes back to available, a failed one too with its reason', () => {
    const s = fold(backupDecider, available);
    expect(s.context).toMatchObject({ status: 'available', hostId: 'bk1', checksum: sum, sizeBytes: 4096, restoreVolumeId: '' });
    expect(fold(backupDecider, AT.restoring).context.restoreVolumeId).toBe('v2');
    const restored = decide(AT.restoring, COMMAND.ReportBackupRestored);
    expect(restored).toEqual({ events: [moved('available')] });
    expect(fold(backupDecider, (restored as { events: M[] }).events, fold(backupDecider, AT.restoring)).context.restoreVolumeId).toBe('');
    expect(decide(AT.restoring, { type: 'ReportBackupFailed', hostId: 'bk1', reason: 'volume gone' })).toEqual({ events: [moved('available', 'volume gone')] });
  });

  it('is created with the envelope time', () => {
    expect(decide([], { type: 'CreateBackup', backup: { ...backup, createdAtMs: 0 }, hostId: 'bk1' })).toEqual({
      events: [{ type: 'BackupCreated', backup: { ...backup, createdAtMs: testContext().issuedAtMs }, hostId: 'bk1' }],
    });
  });

  it("refuses another host's report and a restore report for another volume", () => {
    expect(decide(AT.creating, { ...COMMAND.ReportBackupCreated, hostId: 'bk2' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'creating', message: 'ReportBackupCreated is not allowed: backup b1 is held by host bk1, not bk2' },
    });
    expect(decide(AT.restoring, { ...COMMAND.ReportBackupRestored, volumeId: 'v9' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'restoring', message: 'ReportBackupRestored is not allowed: backup b1 is restoring onto volume v2, not v9' },
    });
  });

  it('force deletes from any status; refuses a bad checksum and a reset Cinder does not allow', () => {
    expect(decide(AT.restoring, { type: 'DeleteBackup', force: false })).toMatchObject({
      rejection: { code: 'FAILED_PRECONDITION', state: 'restoring', message: 'DeleteBackup is not allowed: backup b1 is restoring (allowed: available, error; with force: any status)' },
    });
    expect(decide(AT.creating, { type: 'DeleteBackup', force: true })).toEqual({ events: [{ type: 'BackupDeleting', force: true }, moved('deleting')] });
    expect(decide(AT.creating, { ...COMMAND.ReportBackupCreated, checksum: 'ABC' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'checksum' } });
    expect(decide(AT.error, { type: 'ResetBackupStatus', status: 'creating', reason: '' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'status' } });
  });
});
