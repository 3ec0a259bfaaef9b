// The snapshot lifecycle as Cinder runs it, through the decider: every (status, command) pair
// against the contract's table, then the holding host, force delete and reset.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { blockAggregate } from './block.deciders.js';
import { SNAPSHOT_STATUSES, type SnapshotStatus } from './block.types.js';
import { SNAPSHOT_COMMANDS, SNAPSHOT_RULES, snapshotCommandsAllowed } from './snapshot.machine.js';

type M = Message & Record<string, any>;
const snapshotDecider = blockAggregate('snapshot').decider;

const snap = { id: 's1', projectId: 'p1', volumeId: 'v1', name: 'nightly', description: '', sizeGb: 10, metadata: {}, createdAtMs: 1_767_225_600_000 };
const moved = (status: string, reason = ''): M => ({ type: 'SnapshotStatusChanged', status, reason });
const created: M[] = [{ type: 'SnapshotCreated', snapshot: snap, hostId: 'h1' }];
const available = [...created, moved('available')];
const deleting = [...available, { type: 'SnapshotDeleting', force: false }, moved('deleting')];
const AT: Record<SnapshotStatus, M[]> = {
  creating: created,
  available,
  deleting,
  error: [...created, moved('error', 'no space')],
  error_deleting: [...deleting, moved('error_deleting', 'busy')],
};

const LIVE = SNAPSHOT_STATUSES;
/** The contract's statuses per command, written out here, without force. */
const LEGAL: Record<string, readonly string[]> = {
  ReportSnapshotCreated: ['creating'],
  ReportSnapshotFailed: ['creating', 'deleting'],
  UpdateSnapshot: LIVE.filter((s) => s !== 'deleting'),
  DeleteSnapshot: ['available', 'error'],
  ReportSnapshotDeleted: ['deleting'],
  ResetSnapshotStatus: LIVE,
};
const COMMAND: Record<string, M> = {
  ReportSnapshotCreated: { type: 'ReportSnapshotCreated', hostId: 'h1' },
  ReportSnapshotFailed: { type: 'ReportSnapshotFailed', hostId: 'h1', reason: 'io error' },
  UpdateSnapshot: { type: 'UpdateSnapshot', snapshot: { ...snap, description: 'before upgrade' }, updateMask: ['description'] },
  DeleteSnapshot: { type: 'DeleteSnapshot', force: false },
  ReportSnapshotDeleted: { type: 'ReportSnapshotDeleted', hostId: 'h1' },
  ResetSnapshotStatus: { type: 'ResetSnapshotStatus', status: 'error', reason: 'stuck' },
};
const OUTCOME: Record<string, (s: SnapshotStatus) => { events: string[]; to: string }> = {
  ReportSnapshotCreated: () => ({ events: ['SnapshotStatusChanged'], to: 'available' }),
  ReportSnapshotFailed: (s) => ({ events: ['SnapshotStatusChanged'], to: s === 'creating' ? 'error' : 'error_deleting' }),
  UpdateSnapshot: (s) => ({ events: ['SnapshotUpdated'], to: s }),
  DeleteSnapshot: () => ({ events: ['SnapshotDeleting', 'SnapshotStatusChanged'], to: 'deleting' }),
  ReportSnapshotDeleted: () => ({ events: ['SnapshotDeleted'], to: 'deleted' }),
  ResetSnapshotStatus: (s) => ({ events: s === 'error' ? [] : ['SnapshotStatusChanged'], to: 'error' }),
};

const decide = (history: M[], command: M) => snapshotDecider.decide(fold(snapshotDecider, history), command, testContext({ aggregateId: 's1', version: history.length }));

describe('snapshot: every (status, command) pair', () => {
  it('covers every command, and the fixtures reach their statuses', () => {
    expect(Object.keys(COMMAND).sort()).toEqual(SNAPSHOT_COMMANDS.filter((c) => c !== 'CreateSnapshot').sort());
    expect(Object.keys(LEGAL).sort()).toEqual(Object.keys(SNAPSHOT_RULES.allowed).sort());
    for (const s of SNAPSHOT_STATUSES) expect(fold(snapshotDecider, AT[s]).value).toBe(s);
  });

  for (const status of SNAPSHOT_STATUSES) {
    for (const type of Object.keys(COMMAND)) {
      const legal = LEGAL[type].includes(status);
      it(`${status}: ${type} is ${legal ? 'legal' : 'refused'}`, () => {
        const d = decide(AT[status], COMMAND[type]);
        if (legal) {
          if (!('events' in d)) throw new Error(d.rejection.message);
          const want = OUTCOME[type](status);
          expect(d.events.map((e) => e.type)).toEqual(want.events);
          expect(fold(snapshotDecider, d.events, fold(snapshotDecider, AT[status])).value).toBe(want.to);
        } else {
          expect(d).toMatchObject({ rejection: { code: 'FAILED_PRECONDITION', state: status, message: expect.stringContaining(`${type} is not allowed: snapshot s1 is ${status} (allowed: `) } });
        }
      });
    }
  }

  it('is NOT_FOUND before creation and after deletion; allowedCommands is the table with force', () => {
    const gone = [...deleting, { type: 'SnapshotDeleted', snapshot: snap }];
    for (const type of Object.keys(COMMAND)) {
      expect(decide([], COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: 'snapshot s1 does not exist' } });
      expect(decide(gone, COMMAND[type])).toEqual({ rejection: { code: 'NOT_FOUND', message: 'snapshot s1 does not exist' } });
    }
    for (const s of SNAPSHOT_STATUSES) expect(snapshotDecider.allowedCommands(fold(snapshotDecider, AT[s])).sort()).toEqual(snapshotCommandsAllowed(s, { force: true }).sort());
  });
});

describe('snapshot lifecycle', () => {
  it('is created with the envelope time, made by its host, deleted', () => {
    const events: M[] = [];
    for (const c of [
      { type: 'CreateSnapshot', snapshot: { ...snap, createdAtMs: 0 }, hostId: 'h1' },
      { type: 'ReportSnapshotCreated', hostId: 'h1' },
      { type: 'DeleteSnapshot', force: false },
      { type: 'ReportSnapshotDeleted', hostId: 'h1' },
    ]) {
      const d = decide(events, c);
      if (!('events' in d)) throw new Error(d.rejection.message);
      events.push(...(d.events as M[]));
    }
    expect(events).toEqual([
      { type: 'SnapshotCreated', snapshot: { ...snap, createdAtMs: testContext().issuedAtMs }, hostId: 'h1' },
      moved('available'),
      { type: 'SnapshotDeleting', force: false },
      moved('deleting'),
      { type: 'SnapshotDeleted', snapshot: { ...snap, createdAtMs: testContext().issuedAtMs } },
    ]);
  });

  it("refuses another host's report, naming the holding host; force deletes from any status", () => {
    expect(decide(AT.creating, { type: 'ReportSnapshotCreated', hostId: 'h2' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'creating', message: 'ReportSnapshotCreated is not allowed: snapshot s1 is held by storage host h1, not h2' },
    });
    expect(decide(AT.creating, { type: 'DeleteSnapshot', force: false })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'creating', message: 'DeleteSnapshot is not allowed: snapshot s1 is creating (allowed: available, error; with force: any status)' },
    });
    for (const s of ['creating', 'error_deleting'] as SnapshotStatus[]) {
      expect(decide(AT[s], { type: 'DeleteSnapshot', force: true })).toEqual({ events: [{ type: 'SnapshotDeleting', force: true }, moved('deleting')] });
    }
  });

  it('refuses bad fields and a reset to an unknown status, naming the field', () => {
    expect(decide([], { type: 'CreateSnapshot', snapshot: { ...snap, volumeId: '' }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'snapshot.volume_id' } });
    expect(decide([], { type: 'CreateSnapshot', snapshot: { ...snap, id: 's2' }, hostId: 'h1' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'snapshot.id' } });
    expect(decide(AT.available, { type: 'UpdateSnapshot', snapshot: { ...snap, sizeGb: 1 }, updateMask: ['sizeGb'] })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'snapshot.size_gb' } });
    expect(decide(AT.available, { type: 'ResetSnapshotStatus', status: 'backing-up', reason: '' })).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'status' } });
  });
});
