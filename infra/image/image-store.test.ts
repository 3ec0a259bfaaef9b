// ImageStore against real object servers (three, on loopback) and the object deciders on an
// embedded log: a write streams the data with its md5, sha512, size and virtual size and records
// the object; a read gives the bytes back and fails when they are not the image's; a remove
// records the delete and leaves the object unreadable.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedLog } from '../log/embedded/embedded-log.js';
import { ObjectNotFoundError } from '../object/object-proxy.js';
import { startObjectRig, type ObjectRig } from '../../test/support/image-object-rig.js';
import { IMAGE_ACCOUNT, IMAGE_CONTAINER, ImageDataMismatchError, ImageStore, imageLocation, virtualSizeOf } from './image-store.js';

const topology = { partitions: 4, replicationFactor: 1, replyPartitions: 4 };

async function* chunks(data: Buffer, size = 100_000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const readAll = async (body: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
};

/** A qcow2 header with the given virtual size, and some bytes after it. */
const qcow2 = (virtualSize: bigint) => {
  const b = Buffer.alloc(4096, 7);
  b.writeUInt32BE(0x514649fb, 0);
  b.writeUInt32BE(3, 4);
  b.writeBigUInt64BE(virtualSize, 24);
  return b;
};

describe('ImageStore', () => {
  let log: EmbeddedLog;
  let rig: ObjectRig;
  let store: ImageStore;

  beforeAll(async () => {
    log = new EmbeddedLog({ path: join(mkdtempSync(join(tmpdir(), 'strata-imgstore-')), 'log.db'), sessionTimeoutMs: 1500 });
    rig = await startObjectRig(log, topology);
    store = new ImageStore({ proxy: rig.proxy, objects: rig.writer });
  }, 60_000);
  afterAll(async () => {
    await rig?.close();
    await log?.close();
  });

  it('ensureContainer is idempotent (a second store on the same log meets ALREADY_EXISTS and is fine)', async () => {
    await store.ensureContainer();
    await new ImageStore({ proxy: rig.proxy, objects: rig.writer }).ensureContainer();
  });

  it('writes 3 MiB with md5, sha512, size and raw virtual size, records it, and reads it back', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const id = randomUUID();
    const stored = await store.write(id, chunks(data), 'raw');
    expect(stored).toEqual({
      location: imageLocation(id),
      size: data.length,
      checksum: createHash('md5').update(data).digest('hex'),
      osHashAlgo: 'sha512',
      osHashValue: createHash('sha512').update(data).digest('hex'),
      virtualSize: data.length,
    });
    expect(stored.location).toBe(`${IMAGE_ACCOUNT}/${IMAGE_CONTAINER}/${id}`);
    const read = await store.read(stored.location, { size: stored.size, checksum: stored.checksum });
    expect(read.size).toBe(data.length);
    expect((await readAll(read.body)).equals(data)).toBe(true);
  });

  it('takes a qcow2 virtual size from its header (bytes 24..31); other formats 0', async () => {
    const head = qcow2(10n * 1024n ** 3n);
    expect((await store.write(randomUUID(), chunks(head, 10), 'qcow2')).virtualSize).toBe(10 * 1024 ** 3);
    // Without a format the header's magic says qcow2.
    expect((await store.write(randomUUID(), chunks(head, 5))).virtualSize).toBe(10 * 1024 ** 3);
    expect((await store.write(randomUUID(), chunks(head), 'iso')).virtualSize).toBe(0);
    expect(virtualSizeOf(Buffer.from('not a disk'), 10, 'qcow2')).toBe(0);
  });

  it('a read that is not the image (another md5, another size) fails', async () => {
    const data = randomBytes(200_000);
    const stored = await store.write(randomUUID(), chunks(data));
    const wrong = await store.read(stored.location, { checksum: 'f'.repeat(32) });
    await expect(readAll(wrong.body)).rejects.toThrow(/md5/);
    await expect(store.read(stored.location, { size: data.length + 1 })).rejects.toBeInstanceOf(ImageDataMismatchError);
  });

  it('remove makes the data unreadable; removing again is fine', async () => {
    const stored = await store.write(randomUUID(), chunks(randomBytes(1000)));
    await store.remove(stored.location);
    await expect(store.read(stored.location)).rejects.toBeInstanceOf(ObjectNotFoundError);
    expect(await rig.proxy.head(IMAGE_ACCOUNT, IMAGE_CONTAINER, stored.location.split('/')[2])).toBeUndefined();
    await store.remove(stored.location);
  });
});
