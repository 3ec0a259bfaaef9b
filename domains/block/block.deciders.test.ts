// The plain block aggregates through their deciders: volume types (a kernel resource), project
// quotas (Cinder's names, defaults and messages; reserve, adjust on extend, release; idempotent
// retries) and storage hosts (registration and capacity; unchanged ones write nothing).
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { blockAggregate, blockAggregates } from './block.deciders.js';
import { BLOCK_QUOTA_DEFAULTS, isMultiattach } from './block.types.js';

type M = Message & Record<string, any>;

function run(aggregateType: string, aggregateId: string, commands: M[], start: M[] = []) {
  const { decider } = blockAggregate(aggregateType);
  const events = [...start];
  const replies: ({ events: M[] } | { rejection: any })[] = [];
  for (const c of commands) {
    const d = decider.decide(fold(decider, events), c, testContext({ aggregateId, version: events.length }));
    replies.push(d as never);
    if ('events' in d) events.push(...(d.events as M[]));
  }
  return { state: fold(decider, events), events: events.slice(start.length), replies };
}

describe('block aggregates', () => {
  it('are volume_type, volume, snapshot, backup, block_quota and block_host, with distinct event types', () => {
    expect(blockAggregates.map((a) => a.aggregateType)).toEqual(['volume_type', 'volume', 'snapshot', 'backup', 'block_quota', 'block_host']);
    const events = blockAggregates.flatMap((a) => a.eventTypes);
    expect(new Set(events).size).toBe(events.length);
    expect(() => blockAggregate('flavor')).toThrow(/no block aggregate flavor/);
  });
});

describe('volume_type', () => {
  const t = { id: 't1', name: 'gold', description: 'fast', isPublic: true, extraSpecs: { multiattach: '<is> True' }, backend: 'lvm' };

  it('is created, updated by mask, deleted; then gone', () => {
    const r = run('volume_type', 't1', [
      { type: 'CreateVolumeType', volumeType: t },
      { type: 'UpdateVolumeType', volumeType: { ...t, name: 'ignored', description: 'faster', extraSpecs: {} }, updateMask: ['description', 'extraSpecs'] },
      { type: 'DeleteVolumeType' },
      { type: 'UpdateVolumeType', volumeType: t, updateMask: ['name'] },
    ]);
    expect(r.events).toEqual([
      { type: 'VolumeTypeCreated', volumeType: t },
      { type: 'VolumeTypeUpdated', volumeType: { ...t, description: 'faster', extraSpecs: {} } },
      { type: 'VolumeTypeDeleted', volumeType: { ...t, description: 'faster', extraSpecs: {} } },
    ]);
    expect(r.replies[3]).toEqual({ rejection: { code: 'NOT_FOUND', message: 'volume_type t1 does not exist' } });
  });

  it('refuses a second create as ALREADY_EXISTS', () => {
    const r = run('volume_type', 't1', [{ type: 'CreateVolumeType', volumeType: t }, { type: 'CreateVolumeType', volumeType: t }]);
    expect(r.replies[1]).toEqual({ rejection: { code: 'ALREADY_EXISTS', message: 'volume_type t1 already exists' } });
  });

  it('makes its volumes multiattach with Cinder\'s "<is> True" only', () => {
    expect(isMultiattach({ multiattach: '<is> True' })).toBe(true);
    expect(isMultiattach({ multiattach: '<is> true' })).toBe(true);
    expect(isMultiattach({ multiattach: 'True' })).toBe(false);
    expect(isMultiattach({})).toBe(false);
  });
});

describe('block_quota', () => {
  it("starts with Cinder's defaults and reserves, adjusts and releases per consumer", () => {
    const r = run('block_quota', 'p1', [
      { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 10 } },
      { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 10 } },
      { type: 'ReserveBlockQuota', consumerId: 's1', usage: { snapshots: 1, gigabytes: 10 } },
      { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 25 } },
      { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 25 } },
      { type: 'ReleaseBlockQuota', consumerId: 's1' },
      { type: 'ReleaseBlockQuota', consumerId: 's1' },
    ]);
    expect(r.events.map((e) => e.type)).toEqual(['BlockQuotaReserved', 'BlockQuotaReserved', 'BlockQuotaAdjusted', 'BlockQuotaReleased']);
    expect(r.state.context).toEqual({
      limits: { ...BLOCK_QUOTA_DEFAULTS },
      used: { volumes: 1, gigabytes: 25, snapshots: 0, backups: 0, backup_gigabytes: 0 },
      reservations: { v1: { volumes: 1, gigabytes: 25 } },
    });
  });

  it("refuses over a limit with Cinder's exception and message, naming the quota", () => {
    const r = run('block_quota', 'p1', [
      { type: 'SetBlockQuotaLimits', limits: { gigabytes: 10, volumes: 2, snapshots: 1, backups: 0, backup_gigabytes: 5 } },
      { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 8 } },
      { type: 'ReserveBlockQuota', consumerId: 'v2', usage: { volumes: 1, gigabytes: 5 } },
      { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 13 } },
      { type: 'ReserveBlockQuota', consumerId: 'v3', usage: { volumes: 1, gigabytes: 1 } },
      { type: 'ReserveBlockQuota', consumerId: 'v4', usage: { volumes: 1, gigabytes: 1 } },
      { type: 'ReserveBlockQuota', consumerId: 'b1', usage: { backups: 1, backup_gigabytes: 1 } },
      { type: 'ReserveBlockQuota', consumerId: 's1', usage: { snapshots: 2 } },
      { type: 'SetBlockQuotaLimits', limits: { backups: -1 } },
      { type: 'ReserveBlockQuota', consumerId: 'b2', usage: { backups: 1, backup_gigabytes: 6 } },
    ]);
    const rejections = r.replies.map((x) => ('rejection' in x ? x.rejection : null));
    expect(rejections[2]).toEqual({
      code: 'RESOURCE_EXHAUSTED', field: 'gigabytes',
      message: 'VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed gigabytes quota. Requested 5G, quota is 10G and 8G has been consumed.',
    });
    expect(rejections[3]).toMatchObject({ field: 'gigabytes', message: expect.stringContaining('Requested 5G, quota is 10G and 8G has been consumed.') });
    expect(rejections[4]).toBeNull();
    expect(rejections[5]).toEqual({ code: 'RESOURCE_EXHAUSTED', field: 'volumes', message: "VolumeLimitExceeded: Maximum number of volumes allowed (2) exceeded for quota 'volumes'." });
    expect(rejections[6]).toEqual({ code: 'RESOURCE_EXHAUSTED', field: 'backups', message: 'BackupLimitExceeded: Maximum number of backups allowed (0) exceeded' });
    expect(rejections[7]).toEqual({ code: 'RESOURCE_EXHAUSTED', field: 'snapshots', message: 'SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded' });
    expect(rejections[9]).toEqual({
      code: 'RESOURCE_EXHAUSTED', field: 'backup_gigabytes',
      message: 'VolumeBackupSizeExceedsAvailableQuota: Requested backup exceeds allowed Backup gigabytes quota. Requested 6G, quota is 5G and 0G has been consumed.',
    });
    expect(r.state.context.used).toEqual({ volumes: 2, gigabytes: 9, snapshots: 0, backups: 0, backup_gigabytes: 0 });
  });

  it('a shrinking adjustment is never refused; unknown quota names are INVALID_ARGUMENT', () => {
    const r = run('block_quota', 'p1', [
      { type: 'SetBlockQuotaLimits', limits: { gigabytes: 10 } },
      { type: 'ReserveBlockQuota', consumerId: 'v1', usage: { volumes: 1, gigabytes: 10 } },
      { type: 'SetBlockQuotaLimits', limits: { gigabytes: 5 } },
      { type: 'AdjustBlockQuota', consumerId: 'v1', usage: { gigabytes: 8 } },
      { type: 'ReserveBlockQuota', consumerId: 'v2', usage: { groups: 1 } },
    ]);
    expect(r.replies[3]).toEqual({ events: [{ type: 'BlockQuotaAdjusted', consumerId: 'v1', usage: { gigabytes: 8 } }] });
    expect(r.replies[4]).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'usage' } });
    expect((r.state.context.used as Record<string, number>).gigabytes).toBe(8);
  });
});

describe('block_host', () => {
  const reg = { type: 'RegisterBlockHost', hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, stateDir: '/var/lib/strata/block', backupStore: true };

  it('registers once (a repeat writes nothing), reports capacity every time (its heartbeat), is removed', () => {
    const r = run('block_host', 'h1', [
      reg,
      reg,
      { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 90 },
      { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 90 },
      { ...reg, totalGb: 200 },
      { type: 'RemoveBlockHost' },
    ]);
    const { type: _t, ...fields } = reg;
    expect(r.events).toEqual([
      { type: 'BlockHostRegistered', ...fields },
      { type: 'BlockCapacityReported', hostId: 'h1', totalGb: 100, freeGb: 90 },
      { type: 'BlockCapacityReported', hostId: 'h1', totalGb: 100, freeGb: 90 },
      { type: 'BlockHostRegistered', ...fields, totalGb: 200 },
      { type: 'BlockHostRemoved', hostId: 'h1' },
    ]);
    expect(r.state.context).toEqual({ host: null, capacity: null });
  });

  it('keeps an absent state_dir absent', () => {
    const { stateDir: _s, ...noDir } = reg;
    const r = run('block_host', 'h1', [noDir]);
    expect(r.state.context.host).toEqual({ hostId: 'h1', backend: 'lvm', availabilityZone: 'nova', totalGb: 100, backupStore: true });
  });

  it("refuses another host's id, reports of an unregistered host and free above total", () => {
    const r = run('block_host', 'h1', [
      { ...reg, hostId: 'h2' },
      { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 90 },
      { type: 'RemoveBlockHost' },
      reg,
      { type: 'ReportBlockCapacity', hostId: 'h1', totalGb: 100, freeGb: 101 },
    ]);
    expect(r.replies[0]).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'host_id' } });
    expect(r.replies[1]).toEqual({ rejection: { code: 'NOT_FOUND', message: 'no storage host h1' } });
    expect(r.replies[2]).toEqual({ rejection: { code: 'NOT_FOUND', message: 'no storage host h1' } });
    expect(r.replies[4]).toMatchObject({ rejection: { code: 'INVALID_ARGUMENT', field: 'free_gb' } });
  });
});
