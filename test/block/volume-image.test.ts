// Block storage and the image service on real components: the test cloud with 3 object servers
// (3 replicas) keeping the image data and a storage host whose block agent drives qemu-img on real
// files. A qcow2 image holding a known pattern is uploaded through ImageService; a volume made
// from it holds the pattern (read back from the volume file with qemu-img convert to raw); that
// volume uploaded to a new image (Cinder's os-volume_upload_image) gives an image whose data,
// downloaded through ImageService, holds the pattern again; an in-use volume is uploaded only with
// force and comes back in-use. Refusals: an image that is not active (naming its status), another
// project's private image (NOT_FOUND), a size below the image's min_disk (naming size_gb), an
// upload of a volume in error (naming the status).
import { execFileSync } from 'node:child_process';
import { createReadStream, mkdtempSync, openSync, closeSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findVolumeFile } from '../../agents/block/volume-store.js';
import type { StrataClient } from '../../cli/client.js';
import { startBlockRig, type BlockRig } from '../support/block-rig.js';
import { until } from '../support/wait.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;

/** The pattern: 1 MiB blocks of distinct bytes at these offsets of a 48 MiB disk, zeros elsewhere. */
const BLOCKS = [0, 7 * MiB, 31 * MiB, 47 * MiB];
const block = (offset: number) => {
  const b = Buffer.alloc(MiB);
  for (let i = 0; i < b.length; i++) b[i] = (offset / MiB + i * 31 + (i >> 9)) & 0xff;
  return b;
};

const readAt = (path: string, offset: number, length: number) => {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    const n = readSync(fd, b, 0, length, offset);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
};

const errorOf = async (p: Promise<unknown>) => {
  try {
    await p;
  } catch (e) {
    return e as { code: number; details: string; field?: string; state?: string };
  }
  throw new Error('it was accepted');
};

describe('volumes from images and uploads to images (image service on 3 object servers)', () => {
  let rig: BlockRig;
  let dir: string;
  let imageId: string;

  /** Converts a disk (qcow2 or raw) to raw and checks the pattern in it and zeros around it. */
  const expectPattern = (path: string, format: string, sizeBytes: number) => {
    const raw = join(dir, `check-${Math.random().toString(36).slice(2)}.raw`);
    execFileSync('qemu-img', ['convert', '-U', '-f', format, '-O', 'raw', path, raw]);
    try {
      expect(execFileSync('stat', ['-c', '%s', raw], { encoding: 'utf8' }).trim()).toBe(String(sizeBytes));
      for (const offset of BLOCKS) expect(readAt(raw, offset, MiB).equals(block(offset)), `the block at ${offset / MiB} MiB`).toBe(true);
      expect(readAt(raw, 1 * MiB, MiB).equals(Buffer.alloc(MiB)), 'zeros between the blocks').toBe(true);
      expect(readAt(raw, sizeBytes - MiB, MiB).equals(Buffer.alloc(MiB)), 'zeros at the end').toBe(true);
    } finally {
      rmSync(raw, { force: true });
    }
  };

  const uploadImage = async (client: StrataClient, path: string, image: Record<string, unknown>) => {
    const created = (await client.call('CreateImage', { image })).image;
    const size = (await stat(path)).size;
    const done = (await client.upload('UploadImage', { imageId: created.id, contentLength: size }, createReadStream(path, { highWaterMark: MiB }))).image;
    expect(done).toMatchObject({ status: 'active', size });
    return done;
  };

  const downloadTo = async (client: StrataClient, id: string, path: string) => {
    const { header, body } = await client.download('DownloadImage', { id });
    const fd = openSync(path, 'w');
    try {
      for await (const c of body) writeSync(fd, c);
    } finally {
      closeSync(fd);
    }
    return header;
  };

  const volumeFile = async (volumeId: string) => {
    const file = await findVolumeFile(rig.storage[0].volumes.stateDir, volumeId);
    if (!file) throw new Error(`volume ${volumeId} has no file`);
    return file;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-volimg-'));
    rig = await startBlockRig({ objectDevices: 3 });
    const raw = join(dir, 'pattern.raw');
    const fd = openSync(raw, 'w');
    for (const offset of BLOCKS) writeSync(fd, block(offset), 0, MiB, offset);
    closeSync(fd);
    const qcow2 = join(dir, 'pattern.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', raw, qcow2]);
    const image = await uploadImage(rig.member, qcow2, { name: 'pattern', diskFormat: 'qcow2', containerFormat: 'bare' });
    expect(image.virtualSize).toBe(48 * MiB);
    imageId = image.id;
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('makes a volume from an image of the image service, its data the image\'s, and uploads it to a new image holding the same data', async () => {
    // No size: the image's virtual size (48 MiB) rounded up to 1 GiB.
    const created = (await rig.member.call('CreateVolume', { imageId, name: 'from-image' })).volume;
    expect(created).toMatchObject({ sizeGb: 1, imageId, bootable: true, status: 'creating' });
    const v = await rig.volumeStatus(created.id, 'available');
    const file = await volumeFile(v.id);
    expectPattern(file.path, file.format, GiB);
    // The downloaded temp is gone: only the volume file is left.
    expect((await rig.storage[0].volumes.list()).temps).toEqual([]);

    const up = await rig.member.call('UploadVolumeToImage', { volumeId: v.id, imageName: 'from-volume', diskFormat: 'qcow2' });
    expect(up.imageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(up.volume.status).toBe('uploading');
    let image: Record<string, any> = {};
    await until(async () => (image = (await rig.member.call('GetImage', { id: up.imageId })).image).status === 'active', `image ${up.imageId} active`, 60_000);
    expect(image).toMatchObject({ name: 'from-volume', owner: rig.projectId, diskFormat: 'qcow2', containerFormat: 'bare', visibility: 'private', minDisk: 1, virtualSize: GiB });
    expect(image.properties).toMatchObject({ volume_id: v.id });
    expect(image.checksum).toMatch(/^[0-9a-f]{32}$/);
    await rig.volumeStatus(v.id, 'available');

    const downloaded = join(dir, 'downloaded.qcow2');
    const header = await downloadTo(rig.member, up.imageId, downloaded);
    expect(header).toMatchObject({ contentLength: image.size });
    expect((await stat(downloaded)).size).toBe(image.size);
    expectPattern(downloaded, 'qcow2', GiB);

    // A volume of the uploaded image, larger than it.
    const again = (await rig.member.call('CreateVolume', { imageId: up.imageId, sizeGb: 2, name: 'from-upload' })).volume;
    await rig.volumeStatus(again.id, 'available');
    const againFile = await volumeFile(again.id);
    expectPattern(againFile.path, againFile.format, 2 * GiB);
  }, 180_000);

  it('uploads an in-use volume only with force (raw, the default disk format), and it comes back in-use', async () => {
    const v = (await rig.member.call('CreateVolume', { imageId, sizeGb: 1, name: 'busy' })).volume;
    await rig.volumeStatus(v.id, 'available');
    // in-use as an operator records it (no guest needed to hold it for this rule).
    await rig.admin.call('ResetVolumeStatus', { id: v.id, status: 'in-use' });
    const refused = await errorOf(rig.member.call('UploadVolumeToImage', { volumeId: v.id, imageName: 'nope' }));
    expect(refused).toMatchObject({ code: FAILED_PRECONDITION, state: 'in-use' });
    expect(refused.details).toContain('in-use');
    const up = await rig.member.call('UploadVolumeToImage', { volumeId: v.id, imageName: 'forced', force: true });
    expect(up.volume.status).toBe('uploading');
    let image: Record<string, any> = {};
    // 1 GiB of raw data through 3 object servers: the slow part.
    await until(async () => (image = (await rig.member.call('GetImage', { id: up.imageId })).image).status === 'active', `image ${up.imageId} active`, 170_000).catch((e: Error) => {
      throw new Error(`${e.message}: it is ${image.status}`);
    });
    expect(image).toMatchObject({ diskFormat: 'raw', size: GiB, virtualSize: GiB, minDisk: 1 });
    await rig.volumeStatus(v.id, 'in-use');
    const downloaded = join(dir, 'forced.raw');
    await downloadTo(rig.member, up.imageId, downloaded);
    expectPattern(downloaded, 'raw', GiB);
    rmSync(downloaded, { force: true });
  }, 300_000);

  it('refuses an image that is not active, another project\'s private image, a size below min_disk, and an upload of a volume in error', async () => {
    const queued = (await rig.member.call('CreateImage', { image: { name: 'queued', diskFormat: 'qcow2', containerFormat: 'bare' } })).image;
    const notActive = await errorOf(rig.member.call('CreateVolume', { imageId: queued.id, sizeGb: 1 }));
    expect(notActive).toMatchObject({ code: FAILED_PRECONDITION, state: 'queued' });
    expect(notActive.details).toContain('queued');

    const other = await rig.newMember();
    const tiny = join(dir, 'tiny.raw');
    writeFileSync(tiny, block(0));
    const hidden = await uploadImage(other.client, tiny, { name: 'private', visibility: 'private', diskFormat: 'raw', containerFormat: 'bare', minDisk: 3 });
    expect(await errorOf(rig.member.call('CreateVolume', { imageId: hidden.id, sizeGb: 5 }))).toMatchObject({ code: NOT_FOUND });

    const small = await errorOf(other.client.call('CreateVolume', { imageId: hidden.id, sizeGb: 2 }));
    expect(small).toMatchObject({ code: INVALID_ARGUMENT, field: 'size_gb' });
    expect(small.details).toMatch(/min_disk 3 GiB.*size 2 GiB/);
    // Its min_disk is what it takes: 3 GiB is enough, and the volume holds the image's data.
    const fits = (await other.client.call('CreateVolume', { imageId: hidden.id })).volume;
    expect(fits.sizeGb).toBe(3);
    await rig.volumeStatus(fits.id, 'available');
    const f = await volumeFile(fits.id);
    const raw = join(dir, 'fits.raw');
    execFileSync('qemu-img', ['convert', '-f', f.format, '-O', 'raw', f.path, raw]);
    expect(readAt(raw, 0, MiB).equals(block(0))).toBe(true);
    rmSync(raw, { force: true });

    // An id the image service does not know goes to the host's image directory (none here): error, named.
    const broken = (await rig.member.call('CreateVolume', { imageId: 'no-such-image', sizeGb: 1 })).volume;
    const failed = await rig.volumeStatus(broken.id, 'error');
    expect(failed.statusReason).toContain('image no-such-image was not found');
    const wrong = await errorOf(rig.member.call('UploadVolumeToImage', { volumeId: broken.id, imageName: 'from-error' }));
    expect(wrong).toMatchObject({ code: FAILED_PRECONDITION, state: 'error' });
    expect(wrong.details).toContain('but it is error');
    expect(await errorOf(rig.member.call('UploadVolumeToImage', { volumeId: broken.id, imageName: 'x', diskFormat: 'vmdk' }))).toMatchObject({ code: INVALID_ARGUMENT, field: 'disk_format' });
    // No image was left behind by the refusals.
    const names = (await rig.member.call('ListImages', {})).images.map((i: { name: string }) => i.name);
    expect(names).not.toContain('from-error');
  }, 180_000);
});
