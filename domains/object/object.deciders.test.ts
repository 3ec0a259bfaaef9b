// The object aggregates through their deciders: containers (create, update by mask, delete, create
// again), objects' recorded versions (last write wins by timestamp, tombstones that keep older
// writes out, exact If-None-Match, metadata replaced, quarantine reports), and the ring (builder,
// rebalance computed in the decider, address changes without moving partitions). Every illegal
// command is refused with its code, naming the state or field, and emits nothing.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { testContext } from '../kernel/specification.js';
import { objectAggregate, objectAggregates } from './object.deciders.js';
import { decodeAssignment } from './ring.js';

type M = Message & Record<string, any>;

function run(aggregateType: string, aggregateId: string, commands: M[]) {
  const { decider } = objectAggregate(aggregateType);
  const events: M[] = [];
  const replies: any[] = [];
  for (const c of commands) {
    const d = decider.decide(fold(decider, events), c, testContext({ aggregateId, version: events.length }));
    replies.push(d);
    if ('events' in d) events.push(...(d.events as M[]));
  }
  return { state: fold(decider, events) as any, events, replies };
}
const rejection = (r: any) => r.rejection;

const container = { account: 'AUTH_p1', name: 'photos', metadata: {}, readAcl: [], writeAcl: [], quotaBytes: 0, quotaCount: 0, createdAtMs: 0 };
const version = (timestamp: string, extra: Record<string, unknown> = {}) => ({
  account: 'AUTH_p1', container: 'photos', name: 'cat.jpg', timestamp, etag: 'd41d8cd98f00b204e9800998ecf8427e', size: 0,
  contentType: 'image/jpeg', metadata: {}, partition: 3, segments: [], ringVersion: 1, ...extra,
});
const OBJ = 'AUTH_p1/photos/cat.jpg';

describe('object aggregates', () => {
  it('are container, object and object_ring, with distinct event types', () => {
    expect(objectAggregates.map((a) => a.aggregateType)).toEqual(['container', 'object', 'object_ring']);
    const events = objectAggregates.flatMap((a) => a.eventTypes);
    expect(new Set(events).size).toBe(events.length);
  });
});

describe('container', () => {
  it('is created, updated by mask, deleted, and can be created again', () => {
    const r = run('container', 'AUTH_p1/photos', [
      { type: 'CreateContainer', container },
      { type: 'UpdateContainer', container: { ...container, readAcl: ['.r:*'], quotaBytes: 5 }, updateMask: ['readAcl'] },
      { type: 'DeleteContainer' },
      { type: 'UpdateContainer', container, updateMask: ['metadata'] },
      { type: 'CreateContainer', container },
    ]);
    expect(r.events.map((e) => e.type)).toEqual(['ContainerCreated', 'ContainerUpdated', 'ContainerDeleted', 'ContainerCreated']);
    expect(r.events[1].container).toMatchObject({ readAcl: ['.r:*'], quotaBytes: 0 });
    expect(rejection(r.replies[3])).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('refuses a second create, a name that is not its id, and bad fields', () => {
    const r = run('container', 'AUTH_p1/photos', [
      { type: 'CreateContainer', container },
      { type: 'CreateContainer', container },
    ]);
    expect(rejection(r.replies[1])).toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(rejection(run('container', 'AUTH_p1/other', [{ type: 'CreateContainer', container }]).replies[0])).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'container.name' });
    expect(rejection(run('container', 'AUTH_p1/a/b', [{ type: 'CreateContainer', container: { ...container, name: 'a/b' } }]).replies[0])).toMatchObject({ field: 'container.name' });
    const acl = run('container', 'AUTH_p1/photos', [{ type: 'CreateContainer', container: { ...container, writeAcl: ['.r:*'] } }]);
    expect(rejection(acl.replies[0])).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'container.write_acl[0]' });
    expect(acl.events).toEqual([]);
  });
});

describe('object', () => {
  it('records versions newest-wins, replaces metadata, deletes with a tombstone that keeps older writes out, and comes back with a newer write', () => {
    const r = run('object', OBJ, [
      { type: 'RecordObject', object: version('1764640000.00001') },
      { type: 'RecordObject', object: version('1764640000.00003', { size: 10, etag: '0123456789abcdef0123456789abcdef' }) },
      { type: 'RecordObject', object: version('1764640000.00002') },
      { type: 'UpdateObjectMetadata', timestamp: '1764640000.00004', metadata: { color: 'grey' }, contentType: '' },
      { type: 'RecordObjectDeleted', timestamp: '1764640000.00005' },
      { type: 'RecordObject', object: version('1764640000.00004') },
      { type: 'RecordObjectDeleted', timestamp: '1764640000.00006' },
      { type: 'RecordObject', object: version('1764640000.00007') },
    ]);
    expect(r.events.map((e) => e.type)).toEqual(['ObjectRecorded', 'ObjectRecorded', 'ObjectMetadataUpdated', 'ObjectDeleted', 'ObjectRecorded']);
    expect(r.events[1]).toMatchObject({ replaced: true, replacedSize: 0 });
    expect(rejection(r.replies[2])).toMatchObject({ code: 'FAILED_PRECONDITION', state: 'stored', message: expect.stringContaining('older than') });
    expect(r.events[2].object).toMatchObject({ metadata: { color: 'grey' }, contentType: 'image/jpeg', timestamp: '1764640000.00003' });
    expect(rejection(r.replies[5])).toMatchObject({ code: 'FAILED_PRECONDITION', state: 'absent' });
    expect(rejection(r.replies[6])).toMatchObject({ code: 'NOT_FOUND' });
    expect(r.events[4]).toMatchObject({ replaced: false });
    expect(r.state.context.object.timestamp).toBe('1764640000.00007');
  });

  it('is exact about If-None-Match: *', () => {
    const r = run('object', OBJ, [
      { type: 'RecordObject', object: version('1764640000.00001'), ifNoneMatch: true },
      { type: 'RecordObject', object: version('1764640000.00002'), ifNoneMatch: true },
    ]);
    expect(r.events).toHaveLength(1);
    expect(rejection(r.replies[1])).toMatchObject({ code: 'FAILED_PRECONDITION', state: 'stored', message: expect.stringContaining('If-None-Match') });
  });

  it('refuses a version named for another object, bad etags and timestamps, and records quarantines', () => {
    expect(rejection(run('object', 'AUTH_p1/photos/dog.jpg', [{ type: 'RecordObject', object: version('1764640000.00001') }]).replies[0])).toMatchObject({ field: 'object.name' });
    expect(rejection(run('object', OBJ, [{ type: 'RecordObject', object: version('1764640000.00001', { etag: 'nope' }) }]).replies[0])).toMatchObject({ field: 'object.etag' });
    expect(rejection(run('object', OBJ, [{ type: 'RecordObject', object: version('17646.1') }]).replies[0])).toMatchObject({ field: 'object.timestamp' });
    const q = run('object', OBJ, [
      { type: 'RecordObject', object: version('1764640000.00001') },
      { type: 'ReportReplicaQuarantined', deviceId: 2, timestamp: '1764640000.00001', reason: 'chunk 3 digest' },
    ]);
    expect(q.events[1]).toEqual({ type: 'ReplicaQuarantined', deviceId: 2, timestamp: '1764640000.00001', reason: 'chunk 3 digest' });
  });
});

describe('object_ring', () => {
  const device = (id: number, zone: number) => ({ id, region: 1, zone, host: `127.0.0.1:${6200 + id}`, device: `d${id}`, weight: 100 });

  it('rebalances in the decider, moves partitions to a new device, changes an address in place, and writes nothing when nothing changed', () => {
    const r = run('object_ring', 'default', [
      { type: 'CreateRing', partPower: 6, replicas: 3 },
      { type: 'AddRingDevice', device: device(1, 1) },
      { type: 'AddRingDevice', device: device(2, 2) },
      { type: 'RebalanceRing' },
      { type: 'AddRingDevice', device: device(3, 3) },
      { type: 'RebalanceRing' },
      { type: 'RebalanceRing' },
      { type: 'AddRingDevice', device: device(4, 4) },
      { type: 'RebalanceRing' },
      { type: 'SetRingDeviceAddress', deviceId: 4, host: '127.0.0.1:7000' },
    ]);
    expect(rejection(r.replies[3])).toMatchObject({ code: 'FAILED_PRECONDITION', message: expect.stringContaining('fewer than replicas') });
    expect(r.replies[6]).toEqual({ events: [] });
    const rebalances = r.events.filter((e) => e.type === 'RingRebalanced');
    expect(rebalances.map((e) => [e.ringVersion, e.moved])).toEqual([
      [1, 64 * 3],
      [2, 48],
    ]);
    const table = decodeAssignment(rebalances[1].assignment, 3, 6);
    expect(table.flat().filter((d) => d === 4)).toHaveLength(48);
    expect(r.state.context.devices.find((d: any) => d.id === 4).host).toBe('127.0.0.1:7000');
    expect(r.state.context.assignment).toBe(rebalances[1].assignment);
  });

  it('refuses duplicate devices, unknown ones, bad fields, and a second create', () => {
    const r = run('object_ring', 'default', [
      { type: 'CreateRing', partPower: 6, replicas: 3 },
      { type: 'AddRingDevice', device: device(1, 1) },
      { type: 'AddRingDevice', device: device(1, 2) },
      { type: 'RemoveRingDevice', deviceId: 9 },
      { type: 'SetRingDeviceAddress', deviceId: 1, host: 'nowhere' },
      { type: 'CreateRing', partPower: 6, replicas: 3 },
      { type: 'AddRingDevice', device: { ...device(5, 1), weight: -1 } },
    ]);
    expect(r.replies.slice(2).map((x) => rejection(x)?.code)).toEqual(['ALREADY_EXISTS', 'NOT_FOUND', 'INVALID_ARGUMENT', 'ALREADY_EXISTS', 'INVALID_ARGUMENT']);
    expect(rejection(r.replies[6]).field).toBe('device.weight');
    expect(rejection(run('object_ring', 'default', [{ type: 'CreateRing', partPower: 30, replicas: 3 }]).replies[0])).toMatchObject({ field: 'part_power' });
    expect(rejection(run('object_ring', 'default', [{ type: 'RebalanceRing' }]).replies[0])).toMatchObject({ code: 'NOT_FOUND' });
  });
});
