// Hosts, claims, quotas, server groups, flavors and aggregates read as specifications: a claim
// beyond capacity or against anti-affinity is refused whatever the scheduler believed, quota
// refusals name the quota, releases give back exactly what was held.
import { describe, expect, it } from 'vitest';
import type { Message } from '../kernel/decider.js';
import { fold } from '../kernel/decider.js';
import { given, testContext } from '../kernel/specification.js';
import { computeAggregate } from './compute.deciders.js';

type M = Message & Record<string, unknown>;
const host = computeAggregate('host').decider;
const quota = computeAggregate('quota').decider;
const group = computeAggregate('server_group').decider;
const flavor = computeAggregate('flavor').decider;
const aggregate = computeAggregate('aggregate').decider;

const inventory = {
  vcpus: { total: 4, reserved: 0, allocationRatio: 4 },
  ramMb: { total: 8192, reserved: 512, allocationRatio: 1 },
  diskGb: { total: 100, reserved: 0, allocationRatio: 1 },
};
const registered: M = { type: 'HostRegistered', inventory, availabilityZone: 'az1' };
const claim = (consumerId: string, over: Record<string, unknown> = {}): M => ({ type: 'ClaimResources', consumerId, vcpus: 2, ramMb: 2048, diskGb: 20, groupId: '', policy: '', ...over });

/** Runs commands in order against one aggregate, keeping accepted events; returns the refusals. */
function sequence(decider: typeof host, start: M[], commands: M[]) {
  const events = [...start];
  const refusals: unknown[] = [];
  for (const c of commands) {
    const d = decider.decide(fold(decider, events), c, testContext({ aggregateId: 'h1', issuedAtMs: 1000 }));
    if ('events' in d) events.push(...(d.events as M[]));
    else refusals.push(d.rejection);
  }
  return { state: fold(decider, events), refusals, events };
}

describe('host claims', () => {
  it('accepts claims up to (total - reserved) x ratio and refuses the next, naming the resource', () => {
    const { state, refusals } = sequence(host, [registered], [claim('a'), claim('b'), claim('c'), claim('d')]);
    // RAM: (8192 - 512) x 1 = 7680 MiB: three 2048 MiB claims fit, the fourth does not.
    expect(refusals).toEqual([{ code: 'RESOURCE_EXHAUSTED', message: 'host h1 lacks ramMb (asked 2048, 6144 used of 7680)' }]);
    expect(state.context).toMatchObject({ used: { vcpus: 6, ramMb: 6144, diskGb: 60 } });
  });

  it('treats a repeated claim by the same consumer as the one it holds', () => {
    const { state } = sequence(host, [registered], [claim('a'), claim('a')]);
    expect(state.context).toMatchObject({ used: { vcpus: 2, ramMb: 2048 } });
  });

  it('refuses a second member of an anti-affinity group, and takes it after the first leaves', () => {
    const anti = { groupId: 'g', policy: 'anti-affinity', maxServerPerHost: 1 };
    const { refusals, events } = sequence(host, [registered], [claim('a', anti), claim('b', anti)]);
    expect(refusals).toMatchObject([{ code: 'FAILED_PRECONDITION', state: 'anti-affinity' }]);
    const after = sequence(host, events, [{ type: 'ReleaseResources', consumerId: 'a' }, claim('b', anti)]);
    expect(after.refusals).toEqual([]);
    expect(after.state.context).toMatchObject({ groupMembers: { g: ['b'] }, used: { vcpus: 2, ramMb: 2048, diskGb: 20 } });
  });

  it('gives back exactly what was claimed, once', () => {
    const { state } = sequence(host, [registered], [claim('a'), claim('b', { vcpus: 1, ramMb: 512, diskGb: 5 }), { type: 'ReleaseResources', consumerId: 'a' }, { type: 'ReleaseResources', consumerId: 'a' }]);
    expect(state.context).toMatchObject({ used: { vcpus: 1, ramMb: 512, diskGb: 5 } });
  });

  it('refuses claims on a disabled host, with the reason', () => {
    const disabled = [registered, { type: 'HostDisabled', reason: 'bad DIMM' }] as M[];
    expect(given(host, disabled).when(claim('a'), { aggregateId: 'h1' })).toEqual({
      rejection: { code: 'FAILED_PRECONDITION', state: 'disabled', message: 'host h1 is disabled: bad DIMM' },
    });
  });

  it('records heartbeats at the command time and re-registration only when the inventory changed', () => {
    expect(given(host, [registered]).when({ type: 'RecordHostHeartbeat' }, { issuedAtMs: 42 })).toEqual({ events: [{ type: 'HostHeartbeatRecorded', atMs: 42 }] });
    expect(given(host, [registered]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1' } as M)).toEqual({ events: [] });
    expect(given(host, [registered]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az2' } as M)).toMatchObject({ events: [{ type: 'HostInventoryUpdated' }] });
  });

  it("keeps the agent's endpoint: a new one (an agent restarted on another port, or serving no more) is an update", () => {
    const withEndpoint: M = { ...registered, endpoint: '127.0.0.1:4001' };
    expect(given(host, []).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: '127.0.0.1:4001' } as M)).toEqual({
      events: [{ type: 'HostRegistered', inventory, availabilityZone: 'az1', endpoint: '127.0.0.1:4001' }],
    });
    expect(given(host, [withEndpoint]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: '127.0.0.1:4001' } as M)).toEqual({ events: [] });
    expect(given(host, [withEndpoint]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: '127.0.0.1:4002' } as M)).toEqual({
      events: [{ type: 'HostInventoryUpdated', inventory, availabilityZone: 'az1', endpoint: '127.0.0.1:4002' }],
    });
    expect(given(host, [withEndpoint]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1' } as M)).toEqual({
      events: [{ type: 'HostInventoryUpdated', inventory, availabilityZone: 'az1', endpoint: '' }],
    });
    // Events written before the field existed have no endpoint: the same as none.
    expect(given(host, [registered]).when({ type: 'RegisterHost', inventory, availabilityZone: 'az1', endpoint: '' } as M)).toEqual({ events: [] });
  });
});

describe('quotas', () => {
  const reserve = (consumerId: string, cores: number): M => ({ type: 'ReserveQuota', consumerId, usage: { instances: 1, cores, ram: 2048 } });
  it("uses Nova's defaults and names the quota a boot would exceed", () => {
    const { refusals, state } = sequence(quota, [], [reserve('a', 16), reserve('b', 4), reserve('c', 1)]);
    expect(refusals).toEqual([{ code: 'RESOURCE_EXHAUSTED', field: 'cores', message: 'Quota exceeded for cores: Requested 1, but already used 20 of 20 cores' }]);
    expect(state.context).toMatchObject({ used: { instances: 2, cores: 20, ram: 4096 } });
  });
  it('releases what a consumer held, and honours new limits (-1: unlimited)', () => {
    const { state } = sequence(quota, [], [reserve('a', 16), { type: 'ReleaseQuota', consumerId: 'a' }, { type: 'SetQuotaLimits', limits: { cores: -1, instances: 100 } }, reserve('b', 64)]);
    expect(state.context).toMatchObject({ used: { instances: 1, cores: 64, ram: 2048 } });
  });
});

describe('server groups, flavors, aggregates', () => {
  const g = { id: 'g', name: 'web', policy: 'anti-affinity' };
  it('caps server group members at the quota', () => {
    const { refusals } = sequence(group, [{ type: 'ServerGroupCreated', serverGroup: g }], [
      { type: 'AddServerGroupMember', instanceId: 'i1', maxMembers: 2 },
      { type: 'AddServerGroupMember', instanceId: 'i2', maxMembers: 2 },
      { type: 'AddServerGroupMember', instanceId: 'i3', maxMembers: 2 },
    ]);
    expect(refusals).toMatchObject([{ code: 'RESOURCE_EXHAUSTED', field: 'server_group_members' }]);
  });
  it('grants and withdraws private flavor access', () => {
    const f = [{ type: 'FlavorCreated', flavor: { id: 'f1', name: 'gpu', isPublic: false } }] as M[];
    const { state, refusals } = sequence(flavor, f, [{ type: 'AddFlavorAccess', projectId: 'p1' }, { type: 'AddFlavorAccess', projectId: 'p1' }]);
    expect(state.context).toMatchObject({ access: ['p1'] });
    expect(refusals).toMatchObject([{ code: 'ALREADY_EXISTS' }]);
  });
  it('adds hosts to aggregates once', () => {
    const a = [{ type: 'AggregateCreated', aggregate: { id: 'a1', name: 'ssd', availabilityZone: 'az1', metadata: { ssd: 'true' } } }] as M[];
    const { state, refusals } = sequence(aggregate, a, [{ type: 'AddAggregateHost', host: 'h1' }, { type: 'AddAggregateHost', host: 'h1' }, { type: 'RemoveAggregateHost', host: 'h2' }]);
    expect(state.context).toMatchObject({ hosts: ['h1'] });
    expect(refusals).toMatchObject([{ code: 'ALREADY_EXISTS' }, { code: 'NOT_FOUND' }]);
  });
});
