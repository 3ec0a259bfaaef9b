// Filters and weighers as tables, and the scheduler's selection: best host first with
// alternates, spread versus stack, and "no valid host" naming the filter that emptied the list.
import { describe, expect, it } from 'vitest';
import type { FlavorRef } from '../instance.actions.js';
import {
  aggregateInstanceExtraSpecsFilter,
  availabilityZoneFilter,
  computeFilter,
  matches,
  resourcesFilter,
  retryFilter,
  serverGroupAffinityFilter,
  serverGroupAntiAffinityFilter,
} from './filters.js';
import type { HostState, RequestSpec } from './host-state.js';
import { Scheduler } from './scheduler.js';
import { STACK } from './weighers.js';

const flavor: FlavorRef = { id: 'f', name: 'm1.small', vcpus: 2, ramMb: 2048, diskGb: 20, ephemeralGb: 0, swapMb: 0, extraSpecs: {} };
const host = (id: string, over: Partial<HostState> = {}): HostState => ({
  id,
  availabilityZone: 'az1',
  enabled: true,
  up: true,
  vcpus: { total: 8, reserved: 0, allocationRatio: 4, used: 0 },
  ramMb: { total: 16384, reserved: 512, allocationRatio: 1, used: 0 },
  diskGb: { total: 200, reserved: 0, allocationRatio: 1, used: 0 },
  aggregateMetadata: {},
  groupMembers: {},
  buildFailures: 0,
  ...over,
});
const spec = (over: Partial<RequestSpec> = {}): RequestSpec => ({ instanceId: 'i', projectId: 'p', flavor, availabilityZone: '', ignoreHosts: [], ...over });

describe('filters', () => {
  it.each([
    ['ComputeFilter: enabled and up', computeFilter, host('h'), spec(), true],
    ['ComputeFilter: disabled', computeFilter, host('h', { enabled: false }), spec(), false],
    ['ComputeFilter: down', computeFilter, host('h', { up: false }), spec(), false],
    ['AZ: any zone asked', availabilityZoneFilter, host('h'), spec(), true],
    ['AZ: same zone', availabilityZoneFilter, host('h'), spec({ availabilityZone: 'az1' }), true],
    ['AZ: other zone', availabilityZoneFilter, host('h'), spec({ availabilityZone: 'az2' }), false],
    ['Resources: fits', resourcesFilter, host('h'), spec(), true],
    ['Resources: CPU within the 4x allocation ratio', resourcesFilter, host('h', { vcpus: { total: 8, reserved: 0, allocationRatio: 4, used: 30 } }), spec(), true],
    ['Resources: CPU beyond the ratio', resourcesFilter, host('h', { vcpus: { total: 8, reserved: 0, allocationRatio: 4, used: 31 } }), spec(), false],
    ['Resources: RAM after the reserved 512 MiB', resourcesFilter, host('h', { ramMb: { total: 16384, reserved: 512, allocationRatio: 1, used: 13825 } }), spec(), false],
    ['Resources: disk', resourcesFilter, host('h', { diskGb: { total: 200, reserved: 0, allocationRatio: 1, used: 181 } }), spec(), false],
    ['Extra specs: matching aggregate', aggregateInstanceExtraSpecsFilter, host('h', { aggregateMetadata: { ssd: ['true'] } }), spec({ flavor: { ...flavor, extraSpecs: { 'aggregate_instance_extra_specs:ssd': 'true' } } }), true],
    ['Extra specs: missing key', aggregateInstanceExtraSpecsFilter, host('h'), spec({ flavor: { ...flavor, extraSpecs: { ssd: 'true' } } }), false],
    ['Extra specs: other scopes ignored', aggregateInstanceExtraSpecsFilter, host('h'), spec({ flavor: { ...flavor, extraSpecs: { 'hw:cpu_policy': 'dedicated' } } }), true],
    ['Affinity: empty group goes anywhere', serverGroupAffinityFilter, host('h'), spec({ serverGroup: { id: 'g', policy: 'affinity', maxServerPerHost: 1, members: 0 } }), true],
    ['Affinity: host without the group', serverGroupAffinityFilter, host('h'), spec({ serverGroup: { id: 'g', policy: 'affinity', maxServerPerHost: 1, members: 2 } }), false],
    ['Affinity: host with the group', serverGroupAffinityFilter, host('h', { groupMembers: { g: 2 } }), spec({ serverGroup: { id: 'g', policy: 'affinity', maxServerPerHost: 1, members: 2 } }), true],
    ['Anti-affinity: free host', serverGroupAntiAffinityFilter, host('h'), spec({ serverGroup: { id: 'g', policy: 'anti-affinity', maxServerPerHost: 1, members: 3 } }), true],
    ['Anti-affinity: host with a member', serverGroupAntiAffinityFilter, host('h', { groupMembers: { g: 1 } }), spec({ serverGroup: { id: 'g', policy: 'anti-affinity', maxServerPerHost: 1, members: 3 } }), false],
    ['Anti-affinity: max 2 per host', serverGroupAntiAffinityFilter, host('h', { groupMembers: { g: 1 } }), spec({ serverGroup: { id: 'g', policy: 'anti-affinity', maxServerPerHost: 2, members: 3 } }), true],
    ['Retry: a host that failed this boot', retryFilter, host('h'), spec({ ignoreHosts: ['h'] }), false],
  ] as const)('%s', (_name, filter, h, s, expected) => {
    expect(filter.passes(h, s)).toBe(expected);
  });

  it.each([
    ['true', 'true', true],
    ['true', 's== true', true],
    ['8', '= 4', true],
    ['2', '= 4', false],
    ['kvm,qemu', '<in> qemu', true],
    ['b', '<or> a <or> b', true],
    ['c', '<or> a <or> b', false],
  ])('extra spec operator: %s against %s', (actual, wanted, expected) => {
    expect(matches(actual, wanted)).toBe(expected);
  });
});

describe('the scheduler', () => {
  it('spreads to the emptiest host and returns alternates, best first', () => {
    const hosts = [
      host('a', { ramMb: { total: 16384, reserved: 512, allocationRatio: 1, used: 8000 } }),
      host('b'),
      host('c', { ramMb: { total: 16384, reserved: 512, allocationRatio: 1, used: 4000 } }),
    ];
    expect(new Scheduler().select(spec(), hosts)).toEqual({ hosts: ['b', 'c', 'a'] });
  });

  it('stacks onto the fullest host that still fits', () => {
    const hosts = [host('a', { ramMb: { total: 16384, reserved: 512, allocationRatio: 1, used: 8000 }, vcpus: { total: 8, reserved: 0, allocationRatio: 4, used: 10 } }), host('b')];
    expect(new Scheduler({ weights: STACK, maxAttempts: 1 }).select(spec(), hosts)).toEqual({ hosts: ['a'] });
  });

  it('keeps away from hosts that failed builds', () => {
    expect(new Scheduler({ maxAttempts: 1 }).select(spec(), [host('a', { buildFailures: 3 }), host('b', { ramMb: { total: 4096, reserved: 0, allocationRatio: 1, used: 0 } })])).toEqual({ hosts: ['b'] });
  });

  it('prefers hosts with fewer group members under soft anti-affinity', () => {
    const s = spec({ serverGroup: { id: 'g', policy: 'soft-anti-affinity', maxServerPerHost: 1, members: 2 } });
    expect(new Scheduler({ maxAttempts: 1 }).select(s, [host('a', { groupMembers: { g: 2 } }), host('b', { groupMembers: { g: 1 } })])).toEqual({ hosts: ['b'] });
  });

  it('says which filter left no host', () => {
    const r = new Scheduler().select(spec({ availabilityZone: 'az9' }), [host('a'), host('b', { enabled: false })]);
    expect(r).toEqual({
      noValidHost: 'No valid host was found. There are not enough hosts available (2 hosts; ComputeFilter left 1, AvailabilityZoneFilter left 0)',
    });
  });

  it('decides the same way for the same input (ties go to the lower host id)', () => {
    const hosts = ['h3', 'h1', 'h2'].map((id) => host(id));
    expect(new Scheduler().select(spec(), hosts)).toEqual({ hosts: ['h1', 'h2', 'h3'] });
  });
});
