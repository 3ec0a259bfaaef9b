// The image field rules, as the API, the codec and the decider apply them: each broken rule is
// an InvalidArgumentError naming the field by its proto path.
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../kernel/rejection.js';
import { clipReason, validateImageCommand } from './image.validation.js';

const image = {
  id: '6f1c3b2a-9d4e-4c5f-8a7b-0e1d2c3b4a59', name: 'cirros', owner: 'p1', status: '', visibility: '', diskFormat: '', containerFormat: '',
  minDisk: 0, minRam: 0, protected: false, osHidden: false, tags: [], properties: {}, size: 0, virtualSize: 0, checksum: '', osHashAlgo: '',
  osHashValue: '', createdAtMs: 0, updatedAtMs: 0, location: '',
};
const MD5 = 'd41d8cd98f00b204e9800998ecf8427e';
const SHA512 = 'a'.repeat(128);
const complete = { type: 'CompleteImageUpload', size: 1, virtualSize: 0, checksum: MD5, osHashAlgo: 'sha512', osHashValue: SHA512, location: 'AUTH_a/images/x' };

const problem = (command: Record<string, any>) => {
  try {
    validateImageCommand(command as never);
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return { field: (e as InvalidArgumentError).field, message: (e as Error).message };
  }
  return undefined;
};
const create = (patch: Record<string, unknown>) => problem({ type: 'CreateImage', image: { ...image, ...patch } });

describe('image field rules', () => {
  it('accept a minimal image, every Glance format, and an upload', () => {
    expect(create({})).toBeUndefined();
    for (const diskFormat of ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']) expect(create({ diskFormat })).toBeUndefined();
    for (const containerFormat of ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed']) expect(create({ containerFormat })).toBeUndefined();
    for (const visibility of ['public', 'community', 'shared', 'private']) expect(create({ visibility })).toBeUndefined();
    expect(problem(complete)).toBeUndefined();
    expect(problem({ type: 'StartImageUpload', location: 'AUTH_a/images/dir/obj' })).toBeUndefined();
  });

  it('name the field of a bad image', () => {
    expect(create({ diskFormat: 'qcow3' })).toEqual({ field: 'image.disk_format', message: expect.stringContaining('must be one of') });
    expect(create({ containerFormat: 'zip' })).toMatchObject({ field: 'image.container_format' });
    expect(create({ visibility: 'everyone' })).toMatchObject({ field: 'image.visibility' });
    expect(create({ name: 'x'.repeat(256) })).toEqual({ field: 'image.name', message: 'image.name: must be at most 255 characters, got 256' });
    expect(create({ minDisk: -1 })).toMatchObject({ field: 'image.min_disk', message: expect.stringContaining('got -1') });
    expect(create({ minRam: -5 })).toMatchObject({ field: 'image.min_ram' });
    expect(create({ minRam: 1.5 })).toMatchObject({ field: 'image.min_ram', message: expect.stringContaining('integer') });
    expect(create({ id: 'img-1' })).toMatchObject({ field: 'image.id', message: expect.stringContaining('not a uuid') });
    expect(create({ owner: '' })).toMatchObject({ field: 'image.owner', message: 'image.owner: is required' });
    expect(create({ status: 'active' })).toMatchObject({ field: 'image.status' });
    expect(create({ size: 10 })).toMatchObject({ field: 'image.size', message: 'image.size: is set by the upload, not given' });
    expect(create({ location: 'a/b/c' })).toMatchObject({ field: 'image.location' });
    expect(create({ tags: [''] })).toMatchObject({ field: 'image.tags[0]' });
    expect(create({ tags: Array.from({ length: 129 }, (_, i) => `t${i}`) })).toMatchObject({ field: 'image.tags', message: expect.stringContaining('at most 128') });
  });

  it('name bad property keys', () => {
    expect(create({ properties: { hw_disk_bus: 'scsi', hw_cpu_cores: '4' } })).toBeUndefined();
    expect(create({ properties: { ['k'.repeat(256)]: 'v' } })).toMatchObject({ field: 'image.properties', message: expect.stringContaining('keys must be 1 to 255') });
    expect(create({ properties: { '': 'v' } })).toMatchObject({ field: 'image.properties' });
    expect(create({ properties: { status: 'active' } })).toEqual({ field: 'image.properties.status', message: 'image.properties.status: "status" is reserved (a core attribute of an image)' });
    expect(create({ properties: { 'a\nb': 'v' } })).toMatchObject({ field: 'image.properties', message: expect.stringContaining('control') });
  });

  it('name the field of a bad update', () => {
    expect(problem({ type: 'UpdateImage', image, updateMask: [] })).toMatchObject({ field: 'update_mask' });
    expect(problem({ type: 'UpdateImage', image, updateMask: ['nickname'] })).toMatchObject({ field: 'update_mask', message: expect.stringContaining('no field nickname') });
    expect(problem({ type: 'UpdateImage', image, updateMask: ['owner'] })).toMatchObject({ field: 'image.owner', message: expect.stringContaining('cannot be changed') });
    expect(problem({ type: 'UpdateImage', image, updateMask: ['size'] })).toMatchObject({ field: 'image.size' });
    expect(problem({ type: 'UpdateImage', image: { ...image, visibility: '' }, updateMask: ['visibility'] })).toMatchObject({ field: 'image.visibility' });
    expect(problem({ type: 'UpdateImage', image: { ...image, minDisk: -1 }, updateMask: ['minDisk'] })).toMatchObject({ field: 'image.min_disk' });
    expect(problem({ type: 'UpdateImage', image: { ...image, visibility: 'private', minDisk: -1 }, updateMask: ['visibility'] })).toBeUndefined();
  });

  it('name the field of a bad upload, failure or member command', () => {
    expect(problem({ type: 'StartImageUpload', location: '' })).toMatchObject({ field: 'location', message: 'location: is required' });
    expect(problem({ type: 'StartImageUpload', location: 'images/obj' })).toMatchObject({ field: 'location', message: expect.stringContaining('<account>/<container>/<object>') });
    expect(problem({ ...complete, size: -1 })).toMatchObject({ field: 'size' });
    expect(problem({ ...complete, checksum: MD5.toUpperCase() })).toMatchObject({ field: 'checksum' });
    expect(problem({ ...complete, osHashAlgo: 'sha256' })).toMatchObject({ field: 'os_hash_algo' });
    expect(problem({ ...complete, osHashValue: 'ab' })).toMatchObject({ field: 'os_hash_value' });
    expect(problem({ ...complete, location: '' })).toMatchObject({ field: 'location' });
    expect(problem({ type: 'FailImageUpload', reason: 'x'.repeat(65_537) })).toMatchObject({ field: 'reason' });
    expect(problem({ type: 'KillImage', reason: 7 })).toMatchObject({ field: 'reason' });
    expect(problem({ type: 'AddImageMember', memberProjectId: '' })).toMatchObject({ field: 'member_project_id' });
    expect(problem({ type: 'UpdateImageMember', memberProjectId: 'p2', status: 'maybe' })).toMatchObject({ field: 'status', message: expect.stringContaining('pending, accepted, rejected') });
    expect(problem({ type: 'RemoveImageMember', memberProjectId: 'p\u0000' })).toMatchObject({ field: 'member_project_id' });
    expect(clipReason('x'.repeat(1025))).toHaveLength(1024);
  });
});
