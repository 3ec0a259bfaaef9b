// Cinder's filter scheduler for new volumes: a table of requests over a set of hosts, each row
// naming the host it must pick or the filters the rejection must name.
import { describe, expect, it } from 'vitest';
import { availabilityZoneFilter, capabilitiesFilter, capacityFilter, capacityWeigher, enabledFilter, ignoreAttemptedHostsFilter, scheduleVolume, type BlockHostState, type VolumeRequest } from './scheduler.js';

const host = (hostId: string, more: Partial<BlockHostState> = {}): BlockHostState => ({ hostId, backend: 'lvm', availabilityZone: 'nova', totalGb: 100, allocatedGb: 0, enabled: true, ...more });
const req = (more: Partial<VolumeRequest> = {}): VolumeRequest => ({ sizeGb: 10, backend: '', availabilityZone: '', ...more });

const hosts = [
  host('a', { allocatedGb: 50 }), // 50 free
  host('b', { allocatedGb: 20 }), // 80 free
  host('c', { allocatedGb: 20, availabilityZone: 'az2' }), // 80 free, az2
  host('d', { allocatedGb: 0, backend: 'ceph' }), // 100 free, ceph
  host('e', { allocatedGb: 0, enabled: false }), // disabled
];

describe('scheduleVolume', () => {
  const rows: [string, VolumeRequest, string][] = [
    ['any host: the most free capacity', req(), 'd'],
    ['a backend: only its hosts', req({ backend: 'lvm' }), 'b'],
    ['ties by host id', req({ backend: 'lvm', availabilityZone: '' }), 'b'],
    ['a zone', req({ availabilityZone: 'az2' }), 'c'],
    ['a zone and a backend', req({ availabilityZone: 'nova', backend: 'lvm' }), 'b'],
    ['a size only one host has room for', req({ sizeGb: 90 }), 'd'],
    ['exactly the free space', req({ sizeGb: 80, backend: 'lvm', availabilityZone: 'nova' }), 'b'],
    ['a retry skips the hosts tried', req({ backend: 'lvm', availabilityZone: 'nova', excludeHostIds: ['b'] }), 'a'],
  ];
  for (const [name, request, want] of rows) {
    it(name, () => expect(scheduleVolume(hosts, request)).toEqual({ hostId: want }));
  }

  it('breaks ties between equally free hosts by host id, whatever their order', () => {
    expect(scheduleVolume([host('z'), host('m'), host('q')], req())).toEqual({ hostId: 'm' });
    expect([host('z'), host('m', { allocatedGb: 1 })].sort(capacityWeigher).map((h) => h.hostId)).toEqual(['z', 'm']);
  });

  it('says no valid backend was found, naming what filtered each host out', () => {
    const r = scheduleVolume(hosts, req({ sizeGb: 85, backend: 'lvm', availabilityZone: 'nova' }));
    expect(r).toMatchObject({ rejection: { code: 'RESOURCE_EXHAUSTED' } });
    const message = (r as { rejection: { message: string } }).rejection.message;
    expect(message).toMatch(/^No valid backend was found\. /);
    expect(message).toContain('a: CapacityFilter (50G free, 85G needed)');
    expect(message).toContain('b: CapacityFilter (80G free, 85G needed)');
    expect(message).toContain('c: AvailabilityZoneFilter (in zone az2, not nova)');
    expect(message).toContain('d: CapabilitiesFilter (backend ceph, not lvm)');
    expect(message).toContain('e: EnabledFilter (disabled)');
    expect(scheduleVolume([], req())).toEqual({ rejection: { code: 'RESOURCE_EXHAUSTED', message: 'No valid backend was found. No host can take a 10G volume: there are no storage hosts' } });
  });
});

describe('block filters', () => {
  const table: [string, boolean, BlockHostState, VolumeRequest, typeof enabledFilter][] = [
    ['enabled passes', true, host('a'), req(), enabledFilter],
    ['disabled fails', false, host('a', { enabled: false }), req(), enabledFilter],
    ['not tried passes', true, host('a'), req({ excludeHostIds: ['b'] }), ignoreAttemptedHostsFilter],
    ['tried fails', false, host('a'), req({ excludeHostIds: ['a'] }), ignoreAttemptedHostsFilter],
    ['any zone passes', true, host('a', { availabilityZone: 'x' }), req(), availabilityZoneFilter],
    ['same zone passes', true, host('a'), req({ availabilityZone: 'nova' }), availabilityZoneFilter],
    ['other zone fails', false, host('a'), req({ availabilityZone: 'az9' }), availabilityZoneFilter],
    ['any backend passes', true, host('a', { backend: '' }), req(), capabilitiesFilter],
    ['same backend passes', true, host('a'), req({ backend: 'lvm' }), capabilitiesFilter],
    ['other backend fails', false, host('a'), req({ backend: 'ceph' }), capabilitiesFilter],
    ['room passes', true, host('a', { allocatedGb: 90 }), req({ sizeGb: 10 }), capacityFilter],
    ['no room fails', false, host('a', { allocatedGb: 91 }), req({ sizeGb: 10 }), capacityFilter],
    ['overcommitted fails, 0G free', false, host('a', { allocatedGb: 120 }), req({ sizeGb: 1 }), capacityFilter],
  ];
  for (const [name, passes, h, r, filter] of table) {
    it(`${filter.name}: ${name}`, () => expect(filter.refuses(h, r) === undefined).toBe(passes));
  }
  it('says how much is free when there is no room', () => expect(capacityFilter.refuses(host('a', { allocatedGb: 120 }), req({ sizeGb: 1 }))).toBe('0G free, 1G needed'));
});
