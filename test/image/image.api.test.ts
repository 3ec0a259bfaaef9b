// ImageService end to end through the gRPC client: the image and object deciders on the embedded
// log, the read models, object servers on loopback holding the data.
//   - create -> queued; upload 5 MiB -> active with Glance's size, checksum (md5), os_hash_value
//     (sha512) and virtual size; download gives the same bytes,
//   - a failed upload (content_length wrong) leaves it queued with nothing stored; a queued image
//     has nothing to download; an active one takes no second upload,
//   - deactivate (admins only) -> members may not download, admins may; reactivate,
//   - sharing: another project cannot see a shared image until added (then by id) and accepted
//     (then listed); only the member answers; private images have no members; public is admins',
//   - protected images are not deleted; a delete removes the data from object storage.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataClient } from '../../cli/client.js';
import { IMAGE_ACCOUNT, IMAGE_CONTAINER } from '../../infra/image/image-store.js';
import { errorOf } from '../identity/cloud.js';
import { startImageRig, type ImageRig } from '../support/image-rig.js';

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;

async function* chunks(data: Buffer, size = 64 * 1024): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

const download = async (client: StrataClient, id: string) => {
  const { header, body } = await client.download('DownloadImage', { id });
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(Buffer.from(c));
  return { header, data: Buffer.concat(parts) };
};

describe('ImageService (embedded log, object servers on loopback)', () => {
  let rig: ImageRig;
  let a: Awaited<ReturnType<ImageRig['newMember']>>;
  let b: Awaited<ReturnType<ImageRig['newMember']>>;
  const data = randomBytes(5 * 1024 * 1024);
  let imageId = '';

  const create = async (client: StrataClient, image: Record<string, unknown> = {}) =>
    (await client.call('CreateImage', { image: { name: 'cirros', diskFormat: 'raw', containerFormat: 'bare', ...image } })).image;
  const upload = (client: StrataClient, id: string, body: Buffer, contentLength = body.length) => client.upload('UploadImage', { imageId: id, contentLength }, chunks(body));

  beforeAll(async () => {
    rig = await startImageRig();
    a = await rig.newMember();
    b = await rig.newMember();
  }, 120_000);
  afterAll(async () => rig?.close(), 60_000);

  it('create -> queued; upload 5 MiB -> active with size, md5 and sha512; download gives the same bytes', async () => {
    const created = await create(a.images);
    imageId = created.id;
    expect(created).toMatchObject({ status: 'queued', owner: a.projectId, visibility: 'shared', size: 0, checksum: '', name: 'cirros' });
    expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const nothing = await errorOf(download(a.images, imageId));
    expect(nothing.code).toBe(FAILED_PRECONDITION);
    expect(nothing.details).toMatch(/queued/);

    const uploaded = (await upload(a.images, imageId, data)).image;
    const expected = {
      status: 'active',
      size: data.length,
      virtualSize: data.length,
      checksum: createHash('md5').update(data).digest('hex'),
      osHashAlgo: 'sha512',
      osHashValue: createHash('sha512').update(data).digest('hex'),
    };
    expect(uploaded).toMatchObject(expected);
    // Members never see where the data lives; admins do.
    expect(uploaded.location).toBe('');
    expect((await rig.adminImages.call('GetImage', { id: imageId })).image.location).toBe(`${IMAGE_ACCOUNT}/${IMAGE_CONTAINER}/${imageId}`);
    expect((await a.images.call('GetImage', { id: imageId })).image).toMatchObject(expected);

    const got = await download(a.images, imageId);
    expect(got.header).toMatchObject({ contentLength: data.length, image: { id: imageId, status: 'active' } });
    expect(got.data.equals(data)).toBe(true);

    // Glance's 409: only a queued image takes data.
    const again = await errorOf(upload(a.images, imageId, randomBytes(10)));
    expect(again.code).toBe(FAILED_PRECONDITION);
    expect(again.details).toMatch(/active/);
    expect(again.state).toBe('active');
  });

  it('a failed upload leaves the image queued with the reason and no data; a good one after it works', async () => {
    const img = await create(a.images);
    const short = await errorOf(upload(a.images, img.id, randomBytes(1000), 2000));
    expect(short.code).toBe(INVALID_ARGUMENT);
    expect(short.details).toMatch(/content_length/);
    expect((await a.images.call('GetImage', { id: img.id })).image).toMatchObject({ status: 'queued', size: 0, checksum: '', location: '' });
    expect(await rig.cloud.object.proxy.head(IMAGE_ACCOUNT, IMAGE_CONTAINER, img.id)).toBeUndefined();
    // No formats: the upload is refused naming them, before any data moves.
    const bare = (await a.images.call('CreateImage', { image: { name: 'no-formats' } })).image;
    const noFormats = await errorOf(upload(a.images, bare.id, randomBytes(10)));
    expect(noFormats.code).toBe(FAILED_PRECONDITION);
    expect(noFormats.details).toMatch(/disk_format/);
    const small = randomBytes(70_000);
    expect((await upload(a.images, img.id, small)).image).toMatchObject({ status: 'active', size: small.length });
    expect((await download(a.images, img.id)).data.equals(small)).toBe(true);
  });

  it('deactivate is the admins\'; a deactivated image is not downloaded but by admins; reactivate', async () => {
    expect((await errorOf(a.images.call('DeactivateImage', { id: imageId }))).code).toBe(PERMISSION_DENIED);
    expect((await rig.adminImages.call('DeactivateImage', { id: imageId })).image.status).toBe('deactivated');
    const refused = await errorOf(download(a.images, imageId));
    expect(refused.code).toBe(FAILED_PRECONDITION);
    expect(refused.details).toMatch(/deactivated/);
    expect((await download(rig.adminImages, imageId)).data.equals(data)).toBe(true);
    expect((await errorOf(a.images.call('ReactivateImage', { id: imageId }))).code).toBe(PERMISSION_DENIED);
    expect((await rig.adminImages.call('ReactivateImage', { id: imageId })).image.status).toBe('active');
    expect((await download(a.images, imageId)).data.length).toBe(data.length);
  });

  it('another project sees a shared image only once added (by id) and accepted (listed); only it answers', async () => {
    const listed = async (client: StrataClient, extra: Record<string, unknown> = {}) => (await client.call('ListImages', { pageSize: 1000, ...extra })).images.map((i: { id: string }) => i.id);
    expect(await listed(a.images)).toContain(imageId);
    expect((await errorOf(b.images.call('GetImage', { id: imageId }))).code).toBe(NOT_FOUND);
    expect((await errorOf(download(b.images, imageId))).code).toBe(NOT_FOUND);
    expect(await listed(b.images)).not.toContain(imageId);
    // B may not share A's image, nor add itself.
    expect((await errorOf(b.images.call('AddImageMember', { imageId, memberProjectId: b.projectId }))).code).toBe(NOT_FOUND);

    const added = (await a.images.call('AddImageMember', { imageId, memberProjectId: b.projectId })).member;
    expect(added).toMatchObject({ memberProjectId: b.projectId, status: 'pending' });
    // Pending: usable by id, not listed (but for member_status=pending).
    expect((await b.images.call('GetImage', { id: imageId })).image.id).toBe(imageId);
    expect(await listed(b.images)).not.toContain(imageId);
    expect(await listed(b.images, { memberStatus: 'pending' })).toContain(imageId);
    // The owner cannot accept for the member.
    expect((await errorOf(a.images.call('UpdateImageMember', { imageId, memberProjectId: b.projectId, status: 'accepted' }))).code).toBe(PERMISSION_DENIED);
    expect((await b.images.call('UpdateImageMember', { imageId, memberProjectId: b.projectId, status: 'accepted' })).member.status).toBe('accepted');
    expect(await listed(b.images)).toContain(imageId);
    expect((await download(b.images, imageId)).data.equals(data)).toBe(true);
    // The member sees its own membership only; it cannot change or delete the image.
    expect((await b.images.call('ListImageMembers', { imageId })).members.map((m: { memberProjectId: string }) => m.memberProjectId)).toEqual([b.projectId]);
    expect((await errorOf(b.images.call('DeleteImage', { id: imageId }))).code).toBe(PERMISSION_DENIED);
    expect((await errorOf(b.images.call('UpdateImage', { image: { id: imageId, name: 'mine' }, updateMask: { paths: ['name'] } }))).code).toBe(PERMISSION_DENIED);

    // Removed: gone again.
    await a.images.call('RemoveImageMember', { imageId, memberProjectId: b.projectId });
    expect((await errorOf(b.images.call('GetImage', { id: imageId }))).code).toBe(NOT_FOUND);

    // A private image has no members, and is nobody else's.
    const secret = await create(a.images, { visibility: 'private' });
    const noMembers = await errorOf(a.images.call('AddImageMember', { imageId: secret.id, memberProjectId: b.projectId }));
    expect(noMembers.code).toBe(FAILED_PRECONDITION);
    expect(noMembers.details).toMatch(/private/);
    expect((await errorOf(b.images.call('GetImage', { id: secret.id }))).code).toBe(NOT_FOUND);
  });

  it('making an image public is the admins\' (publicize_image); a public image is everyone\'s', async () => {
    const denied = await errorOf(create(a.images, { visibility: 'public' }));
    expect(denied.code).toBe(PERMISSION_DENIED);
    expect(denied.details).toMatch(/public/);
    const denied2 = await errorOf(a.images.call('UpdateImage', { image: { id: imageId, visibility: 'public' }, updateMask: { paths: ['visibility'] } }));
    expect(denied2.code).toBe(PERMISSION_DENIED);
    const pub = (await rig.adminImages.call('UpdateImage', { image: { id: imageId, visibility: 'public' }, updateMask: { paths: ['visibility'] } })).image;
    expect(pub.visibility).toBe('public');
    expect((await b.images.call('ListImages', { visibility: 'public', pageSize: 1000 })).images.map((i: { id: string }) => i.id)).toContain(imageId);
    expect((await download(b.images, imageId)).data.length).toBe(data.length);
    // Formats are fixed once the image has data.
    const fixed = await errorOf(a.images.call('UpdateImage', { image: { id: imageId, diskFormat: 'qcow2' }, updateMask: { paths: ['disk_format'] } }));
    expect(fixed.code).toBe(FAILED_PRECONDITION);
  });

  it('a protected image is not deleted; a delete removes its data from object storage', async () => {
    await a.images.call('UpdateImage', { image: { id: imageId, protected: true, tags: ['t1'] }, updateMask: { paths: ['protected', 'tags'] } });
    const refused = await errorOf(a.images.call('DeleteImage', { id: imageId }));
    expect(refused.code).toBe(FAILED_PRECONDITION);
    expect(refused.details).toMatch(/protected/);
    expect((await a.images.call('GetImage', { id: imageId })).image).toMatchObject({ status: 'active', protected: true, tags: ['t1'] });
    expect(await rig.cloud.object.proxy.head(IMAGE_ACCOUNT, IMAGE_CONTAINER, imageId)).toMatchObject({ size: data.length });

    await a.images.call('UpdateImage', { image: { id: imageId, protected: false }, updateMask: { paths: ['protected'] } });
    await a.images.call('DeleteImage', { id: imageId });
    expect((await errorOf(a.images.call('GetImage', { id: imageId }))).code).toBe(NOT_FOUND);
    expect((await a.images.call('ListImages', { pageSize: 1000 })).images.map((i: { id: string }) => i.id)).not.toContain(imageId);
    expect(await rig.cloud.object.proxy.head(IMAGE_ACCOUNT, IMAGE_CONTAINER, imageId)).toBeUndefined();
    await expect(rig.imageStore.read(`${IMAGE_ACCOUNT}/${IMAGE_CONTAINER}/${imageId}`)).rejects.toThrow(/not found/);
  });
});
