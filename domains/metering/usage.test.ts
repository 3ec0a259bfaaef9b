// The usage meter as a specification: given a resource's events at known times, these segments,
// and these quantity-seconds per hour, computed by hand in the comments.
import { describe, expect, it } from 'vitest';
import { aggregateUsage, amountOf, HOUR_MS, meteringPolicyFrom, splitByHour, UsageMeter, type MeteredEvent, type MeteringPolicy, type UsageChange, type UsageSegment } from './usage.js';

const T0 = Date.UTC(2026, 0, 1); // 2026-01-01T00:00:00Z, an hour boundary
const at = (h: number, m = 0, s = 0) => T0 + h * HOUR_MS + m * 60_000 + s * 1000;
const SMALL = { id: 'f1', name: 'm1.small', vcpus: 1, ramMb: 2048 };
const LARGE = { id: 'f2', name: 'm1.large', vcpus: 4, ramMb: 8192 };

/** Events of one aggregate, versions counted from 1. */
function stream(aggregateType: string, aggregateId: string) {
  let version = 0;
  return (type: string, atMs: number, payload: Record<string, unknown> = {}): MeteredEvent => ({ ...payload, type, aggregateType, aggregateId, version: ++version, occurredAtMs: atMs });
}

/** Folds events and keeps the segments as a projection's rows would be. */
function fold(events: MeteredEvent[], policy: Partial<MeteringPolicy> = {}, meter = new UsageMeter(policy)) {
  const rows: UsageSegment[] = [];
  const apply = (changes: UsageChange[]) => {
    for (const c of changes) {
      if (c.kind === 'close') for (const r of rows) if (r.resourceId === c.resourceId && r.endMs === null) r.endMs = c.endMs;
      if (c.kind === 'open' && !rows.some((r) => r.resourceId === c.segment.resourceId && r.metric === c.segment.metric && r.seq === c.segment.seq)) rows.push({ ...c.segment });
    }
  };
  for (const e of events) apply(meter.apply(e));
  return { rows, meter, apply };
}

/** Seconds (quantity x s) per metric/key over the window, as { 'metric/key': seconds }. */
function totals(rows: UsageSegment[], fromMs = T0, toMs = at(24), nowMs = toMs) {
  const out: Record<string, number> = {};
  for (const r of aggregateUsage(rows, { fromMs, toMs, nowMs, granularity: 'total' })) out[`${r.metric}/${r.key}`] = r.quantityMs / 1000;
  return out;
}

function instanceDay() {
  const i = stream('instance', 'i-1');
  return [
    i('InstanceCreated', at(1), { projectId: 'p1', flavor: SMALL }),
    i('InstanceActionStarted', at(1), { action: 'create' }), // not folded: the boot is not billed
    i('InstanceActionCompleted', at(1, 0, 30), { action: 'create', vmState: 'active', host: 'h1' }), // billing starts 01:00:30
    i('InstanceActionCompleted', at(3), { action: 'stop', vmState: 'stopped', host: 'h1' }), // stops 03:00:00
    i('InstanceActionCompleted', at(5), { action: 'start', vmState: 'active', host: 'h1' }), // again from 05:00:00
    i('InstanceActionCompleted', at(6, 30), { action: 'resize', vmState: 'resized', flavor: LARGE, host: 'h2' }), // large from 06:30
    i('InstanceActionCompleted', at(7), { action: 'confirmResize', vmState: 'active', host: 'h2' }), // nothing changes
    i('InstanceActionCompleted', at(8), { action: 'shelve', vmState: 'shelved', host: 'h2' }), // not billed from 08:00
    i('InstanceActionCompleted', at(9), { action: 'unshelve', vmState: 'active', host: 'h2' }), // billed from 09:00
    i('InstanceActionStarted', at(10), { action: 'delete' }),
    i('InstanceActionCompleted', at(10, 0, 15), { action: 'delete', vmState: 'deleted', host: '' }), // ends 10:00:15
  ];
}

describe('instances', () => {
  it('bill running time only by default, per flavor, with vCPU and RAM', () => {
    const { rows } = fold(instanceDay());
    // small: 01:00:30-03:00:00 = 7170 s, 05:00-06:30 = 5400 s -> 12570 s
    // large: 06:30-08:00 = 5400 s, 09:00-10:00:15 = 3615 s -> 9015 s
    // vcpu: 12570 x 1 + 9015 x 4 = 48630; ram_mb: 12570 x 2048 + 9015 x 8192 = 25743360 + 73850880 = 99594240
    expect(totals(rows)).toEqual({ 'instance/m1.small': 12570, 'instance/m1.large': 9015, 'vcpu/': 48630, 'ram_mb/': 99594240 });
    // Segments are keyed by the version of the event that opened them; none is open after deletion.
    expect(rows.filter((r) => r.metric === 'instance').map((r) => [r.seq, r.key, r.startMs, r.endMs])).toEqual([
      [3, 'm1.small', at(1, 0, 30), at(3)],
      [5, 'm1.small', at(5), at(6, 30)],
      [6, 'm1.large', at(6, 30), at(8)],
      [9, 'm1.large', at(9), at(10, 0, 15)],
    ]);
  });

  it('bill stopped and shelved time too when the policy says so', () => {
    // stopped billed: small 01:00:30-06:30 = 19770 s; large as before 9015 s
    expect(totals(fold(instanceDay(), { stopped: true }).rows)['instance/m1.small']).toBe(19770);
    expect(totals(fold(instanceDay(), { stopped: true }).rows)['instance/m1.large']).toBe(9015);
    // shelved billed: large 06:30-10:00:15 = 12615 s; small as by default 12570 s
    const shelved = totals(fold(instanceDay(), { shelved: true }).rows);
    expect(shelved['instance/m1.large']).toBe(12615);
    expect(shelved['instance/m1.small']).toBe(12570);
  });

  it('reads the policy from its configuration text', () => {
    expect(meteringPolicyFrom('')).toEqual({ stopped: false, shelved: false });
    expect(meteringPolicyFrom('none')).toEqual({ stopped: false, shelved: false });
    expect(meteringPolicyFrom('stopped, Shelved')).toEqual({ stopped: true, shelved: true });
    expect(() => meteringPolicyFrom('paused')).toThrow(/"paused" is not a state that may be billed/);
  });

  it('paused, rescued and resized bill; suspended, error and offloaded do not; a revert bills the old flavor again', () => {
    const i = stream('instance', 'i-2');
    const { rows } = fold([
      i('InstanceCreated', at(0), { projectId: 'p1', flavor: SMALL }),
      i('InstanceActionCompleted', at(0), { action: 'create', vmState: 'active' }), // 00:00 on
      i('InstanceActionCompleted', at(1), { action: 'pause', vmState: 'paused' }), // still billed
      i('InstanceActionCompleted', at(2), { action: 'unpause', vmState: 'active' }),
      i('InstanceActionCompleted', at(3), { action: 'suspend', vmState: 'suspended' }), // off 03:00
      i('InstanceActionCompleted', at(4), { action: 'resume', vmState: 'active' }), // on 04:00
      i('InstanceActionCompleted', at(5), { action: 'resize', vmState: 'resized', flavor: LARGE }), // large 05:00
      i('InstanceActionCompleted', at(6), { action: 'revertResize', vmState: 'active', flavor: SMALL }), // small 06:00
      i('InstanceActionFailed', at(7), { action: 'reboot', vmState: 'error' }), // off 07:00
      i('InstanceActionCompleted', at(8), { action: 'resetState', vmState: 'active' }), // on 08:00
      i('InstanceActionCompleted', at(9), { action: 'rescue', vmState: 'rescued' }), // billed
      i('InstanceActionCompleted', at(10), { action: 'shelve', vmState: 'shelved_offloaded' }), // off 10:00
    ]);
    // small: 00-03 (3 h) + 04-05 (1 h) + 06-07 (1 h) + 08-10 (2 h) = 7 h; large: 05-06 = 1 h
    expect(totals(rows)).toEqual({ 'instance/m1.small': 7 * 3600, 'instance/m1.large': 3600, 'vcpu/': 7 * 3600 + 4 * 3600, 'ram_mb/': 7 * 3600 * 2048 + 3600 * 8192 });
    // Even with stopped and shelved billed, an offloaded server is not.
    const j = stream('instance', 'i-4');
    const offloaded = [
      j('InstanceCreated', at(0), { projectId: 'p1', flavor: SMALL }),
      j('InstanceActionCompleted', at(0), { action: 'create', vmState: 'active' }),
      j('InstanceActionCompleted', at(1), { action: 'shelve', vmState: 'shelved_offloaded' }),
      j('InstanceActionCompleted', at(2), { action: 'unshelve', vmState: 'active' }),
      j('InstanceActionCompleted', at(3), { action: 'delete', vmState: 'deleted' }),
    ];
    expect(totals(fold(offloaded, { stopped: true, shelved: true }).rows)['instance/m1.small']).toBe(2 * 3600);
  });
});

describe('block, network, object and image resources', () => {
  it('volumes bill GiB by type from creation to deletion; extends and retypes from the host\'s report', () => {
    const v = stream('volume', 'v-1');
    const { rows } = fold([
      v('VolumeCreated', at(2), { volume: { projectId: 'p1', sizeGb: 10, volumeTypeId: 'gold' }, hostId: 's1' }), // 10 GiB gold from 02:00
      v('VolumeStatusChanged', at(2, 0, 5), { status: 'available', previousStatus: 'creating' }),
      v('VolumeExtending', at(4), { newSizeGb: 30 }), // not folded: still 10
      v('VolumeStatusChanged', at(4), { status: 'extending' }),
      v('VolumeExtended', at(4, 10), { sizeGb: 30 }), // 30 GiB from 04:10
      v('VolumeStatusChanged', at(4, 10), { status: 'available' }),
      v('VolumeRetyped', at(6), { volumeTypeId: 'silver' }), // silver from 06:00
      v('VolumeStatusChanged', at(7), { status: 'deleting' }),
      v('VolumeDeleted', at(7, 0, 1), { volume: {} }), // ends 07:00:01
    ]);
    // gold: 10 x (02:00-04:10 = 7800 s) + 30 x (04:10-06:00 = 6600 s) = 78000 + 198000 = 276000
    // silver: 30 x (06:00-07:00:01 = 3601 s) = 108030
    expect(totals(rows)).toEqual({ 'volume_gb/gold': 276000, 'volume_gb/silver': 108030 });
  });

  it('a volume whose creation failed is not billed while in error', () => {
    const v = stream('volume', 'v-2');
    const { rows } = fold([
      v('VolumeCreated', at(1), { volume: { projectId: 'p1', sizeGb: 5, volumeTypeId: 't' } }),
      v('VolumeStatusChanged', at(1, 1), { status: 'error', previousStatus: 'creating' }), // 60 s of creating
      v('VolumeStatusChanged', at(3), { status: 'deleting' }),
      v('VolumeDeleted', at(3)),
    ]);
    expect(totals(rows)).toEqual({ 'volume_gb/t': 5 * 60 });
  });

  it('snapshots, backups, floating IPs, images and objects', () => {
    const s = stream('snapshot', 's-1');
    const b = stream('backup', 'b-1');
    const f = stream('floating_ip', 'fip-1');
    const img = stream('image', 'img-1');
    const o = stream('object', 'AUTH_p1/c/a');
    const g = stream('object', 'AUTH_glance/images/img-1');
    const slo = stream('object', 'AUTH_p1/c/big');
    const { rows } = fold([
      s('SnapshotCreated', at(1), { snapshot: { projectId: 'p1', sizeGb: 10 } }),
      s('SnapshotStatusChanged', at(1), { status: 'available' }),
      s('SnapshotDeleted', at(2, 30), { snapshot: {} }), // 10 x 5400 = 54000
      b('BackupCreated', at(3), { backup: { projectId: 'p1', sizeGb: 20 } }),
      b('BackupStored', at(3, 5), { sizeBytes: 12345 }), // not folded: billed by size_gb
      b('BackupDeleted', at(4), { backup: {} }), // 20 x 3600 = 72000
      f('FloatingIpCreated', at(0), { floatingIp: { projectId: 'p1', floatingNetworkId: 'ext' } }),
      f('FloatingIpUpdated', at(1), { floatingIp: { projectId: 'p1', portId: 'x' } }), // not folded
      f('FloatingIpDeleted', at(12)), // 12 h = 43200
      img('ImageCreated', at(5), { image: { owner: 'p1' } }),
      img('ImageActivated', at(5, 1), { size: 1000 }), // 1000 bytes from 05:01
      img('ImageDeleted', at(6, 1), { image: {} }), // 1000 x 3600 = 3600000
      g('ObjectRecorded', at(5, 1), { object: { account: 'AUTH_glance', size: 1000 } }), // the image's data: not a tenant's
      o('ObjectRecorded', at(1), { object: { account: 'AUTH_p1', size: 100 }, replaced: false }),
      o('ObjectRecorded', at(2), { object: { account: 'AUTH_p1', size: 300 }, replaced: true, replacedSize: 100 }),
      o('ObjectDeleted', at(3), { object: {} }),
      o('ObjectRecorded', at(4), { object: { account: 'AUTH_p1', size: 50 } }), // open until the window's end, 24:00
      slo('ObjectRecorded', at(1), { object: { account: 'AUTH_p1', size: 1 << 30, segments: [{ path: 'c/seg1' }] } }), // a manifest: no bytes of its own
    ]);
    // objects: 100 x 3600 + 300 x 3600 + 50 x (04:00-24:00 = 72000 s) = 360000 + 1080000 + 3600000 = 5040000
    expect(totals(rows)).toEqual({
      'snapshot_gb/': 54000,
      'backup_gb/': 72000,
      'floating_ip/ext': 43200,
      'image_bytes/': 3_600_000,
      'object_bytes/': 5_040_000,
    });
    expect(rows.every((r) => r.projectId === 'p1')).toBe(true);
    // Open segments count up to min(to, now): now at 10:00 -> 50 x 6 h = 1080000 for the last version.
    expect(totals(rows, T0, at(24), at(10))['object_bytes/']).toBe(360000 + 1080000 + 50 * 6 * 3600);
  });
});

describe('folding', () => {
  it('ignores redelivered events, and an imported state goes on where the exported one stopped', () => {
    const events = instanceDay();
    const once = fold(events).rows;
    // Everything twice, and the first half again after a third of the way: same rows.
    const meter = new UsageMeter();
    const twice = fold([...events.slice(0, 4), ...events.slice(0, 4), ...events.slice(2)], {}, meter).rows;
    expect(twice).toEqual(once);
    // Export after five events, import into a new meter, fold the rest (and a redelivery).
    const first = fold(events.slice(0, 5));
    const second = new UsageMeter();
    second.import(first.meter.export());
    for (const e of events.slice(3)) first.apply(second.apply(e));
    expect(first.rows).toEqual(once);
  });

  it('the result does not depend on how resources\' events interleave', () => {
    const a = instanceDay();
    const v = stream('volume', 'v-9');
    const b = [v('VolumeCreated', at(2), { volume: { projectId: 'p2', sizeGb: 3, volumeTypeId: 't' } }), v('VolumeExtended', at(9), { sizeGb: 4 }), v('VolumeDeleted', at(20))];
    const sort = (rows: UsageSegment[]) => [...rows].sort((x, y) => (x.resourceId + x.metric + x.seq < y.resourceId + y.metric + y.seq ? -1 : 1));
    const one = sort(fold([...a, ...b]).rows);
    const other = sort(fold([b[0], ...a.slice(0, 6), b[1], ...a.slice(6), b[2]]).rows);
    expect(other).toEqual(one);
  });

  it('never runs a resource\'s time backwards (clocks of two components a little apart)', () => {
    const i = stream('instance', 'i-3');
    const { rows } = fold([
      i('InstanceCreated', at(1), { projectId: 'p1', flavor: SMALL }),
      i('InstanceActionCompleted', at(2), { action: 'create', vmState: 'active' }),
      i('InstanceActionCompleted', at(2) - 500, { action: 'stop', vmState: 'stopped' }), // an agent's clock 0.5 s behind
    ]);
    expect(rows[0]).toMatchObject({ startMs: at(2), endMs: at(2) });
  });
});

describe('hours', () => {
  it('splits a segment at hour boundaries within the window', () => {
    expect(splitByHour({ startMs: at(1, 30), endMs: at(3, 15) }, { fromMs: T0, toMs: at(24), nowMs: at(24) })).toEqual([
      { hourMs: at(1), ms: 30 * 60_000 },
      { hourMs: at(2), ms: HOUR_MS },
      { hourMs: at(3), ms: 15 * 60_000 },
    ]);
    // Clipped to the window, and an open one to now.
    expect(splitByHour({ startMs: at(1, 30), endMs: null }, { fromMs: at(2), toMs: at(24), nowMs: at(2, 20) })).toEqual([{ hourMs: at(2), ms: 20 * 60_000 }]);
  });

  it('aggregates per project, hour, metric and key, with human units', () => {
    const seg = (projectId: string, metric: UsageSegment['metric'], quantity: number, startMs: number, endMs: number | null): UsageSegment => ({ resourceId: 'r', seq: 1, metric, key: '', projectId, quantity, startMs, endMs });
    const rows = aggregateUsage([seg('p1', 'vcpu', 2, at(0, 30), at(1, 30)), seg('p1', 'vcpu', 1, at(0), at(1)), seg('p2', 'volume_gb', 10, at(1), null)], { fromMs: T0, toMs: at(2), nowMs: at(3), granularity: 'hour' });
    expect(rows.map((r) => [r.projectId, (r.startMs - T0) / HOUR_MS, r.metric, r.quantityMs / 1000])).toEqual([
      ['p1', 0, 'vcpu', 2 * 1800 + 3600], // 2 vCPU x 30 min + 1 vCPU x 60 min
      ['p1', 1, 'vcpu', 2 * 1800],
      ['p2', 1, 'volume_gb', 10 * 3600],
    ]);
    expect(amountOf('vcpu', rows[0].quantityMs)).toBe(2);
    expect(amountOf('object_bytes', 1024 ** 3 * HOUR_MS)).toBe(1);
    expect(amountOf('ram_mb', 2048 * HOUR_MS)).toBe(2);
  });
});
